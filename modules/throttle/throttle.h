/* throttle — what the module's files share. Private to modules/throttle. */
#ifndef TT_THROTTLE_H
#define TT_THROTTLE_H

#include <stddef.h>
#include <stdint.h>
#include <tutti/tutti.h>
#include "addr.h"
#include "bucket.h"
#include "table.h"

#define TT_THROTTLE_DEFAULT_CLIENTS 10000
#define TT_THROTTLE_MAX_CLIENTS     1000000
#define TT_THROTTLE_MAX_CONNECTIONS 1000000

extern const tt_api *tt_throttle_api;

typedef struct tt_throttle_worker tt_throttle_worker;

/* One route's `throttle:` key. Allocated with conf_alloc: lives as long as
 * the config. */
typedef struct {
    /* speed, bytes per second; 0 = unlimited */
    uint64_t       download;
    uint64_t       download_after;
    uint64_t       upload;

    /* per client key */
    double         requests;        /* per second; 0 = no request rate */
    unsigned long  burst;           /* requests; the default already applied */
    unsigned long  connections;     /* in flight; 0 = no limit */
    unsigned long  clients;         /* table size */
    const char    *key_header;      /* NULL: the peer address is the key */
    tt_cidr       *trusted;         /* who may set key_header */
    size_t         ntrusted;
    const char    *requests_text;   /* as written ("20/s"), for the log */

    tt_throttle_worker *worker;     /* this worker's state, made at its first request */
} tt_throttle_conf;

/* A route's state in this worker, made at its first request there. */
struct tt_throttle_worker {
    tt_throttle_conf *conf;
    tt_clients       *clients;      /* NULL: no requests/connections limit */
    tt_bucket_cfg     bucket;       /* requests, shared out between workers */
    unsigned          workers;

    /* refuse.c's log budget */
    uint64_t          log_window_ms;    /* start of the current second */
    unsigned          log_lines;        /* lines written in it */
    uint64_t          log_left_out;     /* lines not written for the budget */
    uint64_t          untracked;        /* requests let through with no entry */
    uint64_t          untracked_logged_ms;
    int               untracked_logged;
};

/* conf.c: the `throttle:` key of one route */
int tt_throttle_configure(const tt_conf_node *node, void *main_conf,
                          void **route_conf, tt_errbuf *err);

/* refuse.c: answer r with 429 or 503 (and Retry-After), and note it in
 * the error log without letting a flood flood the log */
int  tt_throttle_refuse(tt_request *r, tt_throttle_worker *w, tt_client *e,
                        int status, uint64_t retry_after, uint64_t now_ms);
/* a request of e goes through: sum up its refusals not logged yet */
void tt_throttle_note_passed(const tt_request *r, tt_throttle_worker *w,
                             tt_client *e, uint64_t now_ms);
/* a request went through untracked: the table is full of busy entries */
void tt_throttle_note_untracked(const tt_request *r, tt_throttle_worker *w,
                                uint64_t now_ms);

#endif
