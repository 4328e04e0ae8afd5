/* Error log (level + time) and access log (combined + request time, or JSON). */
#ifndef TT_LOG_H
#define TT_LOG_H

#include <stdarg.h>
#include <stdint.h>
#include <tutti/log.h>
#include "config/config.h"

/* Before a config exists everything goes to stderr at info. */
int  tt_log_open(const tt_config *cf, tt_errbuf *err);  /* open files of cf */
void tt_log_reopen(void);                                /* USR1 */
void tt_log_close(void);
void tt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tt_vlog(int level, const char *fmt, va_list ap);
/* the text of the last error logged in this process, or NULL */
const char *tt_log_last_error(void);
int  tt_log_level_from(const char *s);                   /* -1 if unknown */
void tt_log_set_ident(const char *ident);                /* "master", "worker 2" */

/* A module's field of the access line (the proxy's upstream_addr). */
typedef struct tt_log_field {
    struct tt_log_field *next;
    const char          *key;       /* [a-z0-9_]+ */
    const char          *value;
} tt_log_field;

typedef struct {
    const char *remote_addr;
    const char *method;
    const char *target;
    int         version;
    int         status;
    uint64_t    bytes_sent;         /* body bytes */
    const char *referer;            /* or NULL */
    const char *user_agent;         /* or NULL */
    const char *host;
    uint64_t    duration_usec;
    uint64_t    time_usec;          /* wall clock at the end */
    const tt_log_field *fields;     /* modules' fields, in the order set, or NULL */
} tt_access_entry;

void tt_access_log(const tt_access_entry *e);
int  tt_access_log_on(void);            /* an access log is open in this process */
/* format into buf; returns length (unit-tested) */
size_t tt_access_format(const tt_access_entry *e, int format, char *buf, size_t len);

#endif
