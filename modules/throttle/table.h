/* throttle — one route's clients in one worker: a hash table with an LRU.
 *
 * Memory is bounded by `clients`: entries are allocated one by one until
 * there are that many, then the least recently used one is reused for the
 * next new client. An entry with requests in flight is never reused, because
 * its count must survive until those requests end (the on_close hooks hold a
 * pointer to it): such entries leave the LRU list while busy, so finding
 * the one to reuse is always O(1). When every entry is busy there is none
 * to give, and the caller lets the request through untracked.
 *
 * The hash is keyed with a per-table secret, so a client choosing its
 * addresses (any IPv6 /64 holds 2^64 of them) cannot aim them all at one
 * chain.
 */
#ifndef TT_THROTTLE_TABLE_H
#define TT_THROTTLE_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include "addr.h"
#include "bucket.h"

typedef struct tt_client tt_client;
typedef struct tt_clients tt_clients;

struct tt_client {
    /* the table's */
    tt_addr     key;
    uint32_t    hash;
    uint32_t    inflight;       /* held requests; > 0 keeps the entry */
    tt_client  *hnext;          /* hash chain */
    tt_client  *prev, *next;    /* LRU of idle entries, most recent first */

    /* the module's: zeroed whenever the entry starts a new client */
    tt_bucket   bucket;
    uint32_t    unlogged_429;   /* refusals not yet summed up in the log */
    uint32_t    unlogged_503;
    uint64_t    logged_ms;      /* when its last log line was written */
    int         logged;         /* any line written yet */
};

/* max >= 1 entries at most; seed keys the hash. NULL when out of memory. */
tt_clients *tt_clients_new(size_t max, uint64_t seed);
void        tt_clients_free(tt_clients *t);

/* The entry for key, now the most recently used. A new one (*made = 1) is
 * allocated, or the least recently used idle entry is reused, with its
 * module fields zeroed. NULL when the table is full of busy entries or
 * memory ran out. */
tt_client  *tt_clients_get(tt_clients *t, const tt_addr *key, int *made);

/* The entry for key, or NULL; nothing moves (for tests and logs). */
tt_client  *tt_clients_find(const tt_clients *t, const tt_addr *key);

/* One more / one fewer request in flight for e. */
void        tt_clients_hold(tt_clients *t, tt_client *e);
void        tt_clients_release(tt_clients *t, tt_client *e);

size_t      tt_clients_count(const tt_clients *t);
size_t      tt_clients_max(const tt_clients *t);

#endif
