/* tutti — configuration nodes as modules see them.
 *
 * The core parses tutti.yaml into a tree of these nodes, each carrying the
 * file, line and column it came from, so every error can point at the exact
 * place and say what to write instead. Scalars have ${ENV} already expanded.
 */
#ifndef TUTTI_CONF_H
#define TUTTI_CONF_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    TT_CONF_SCALAR = 1,
    TT_CONF_MAP,
    TT_CONF_SEQ
} tt_conf_type;

typedef struct tt_conf_node tt_conf_node;

struct tt_conf_node {
    tt_conf_type    type;
    const char     *file;       /* config file, as given on the command line */
    unsigned        line;       /* 1-based */
    unsigned        col;        /* 1-based */
    const char     *value;      /* scalar: NUL-terminated text; NULL otherwise */
    size_t          len;        /* scalar: strlen(value) */
    int             quoted;     /* scalar was quoted ('x' or "x") */
    size_t          n;          /* map: pairs; seq: items */
    tt_conf_node  **keys;       /* map only: the key scalars */
    tt_conf_node  **items;      /* map: the values; seq: the items */
};

/* Where a module writes its error: the whole "file:line:col: message". */
typedef struct {
    char msg[1024];
} tt_errbuf;

/* A rate: "512KB/s" is bytes, "20/s" and "600/m" are requests. */
typedef struct {
    double  per_sec;            /* units per second */
    int     bytes;              /* 1: bytes per second, 0: requests per second */
} tt_rate;

#endif
