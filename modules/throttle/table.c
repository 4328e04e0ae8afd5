/* throttle — the client table (see table.h). */
#include <stdlib.h>
#include <string.h>
#include "table.h"

#define TT_CLIENTS_MIN_BUCKETS 16

struct tt_clients {
    size_t      max;
    size_t      count;
    uint64_t    seed;
    tt_client **buckets;
    size_t      mask;           /* buckets - 1; a power of two */
    tt_client  *head, *tail;    /* idle entries, most recently used first */
};

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static uint32_t hash_key(const tt_clients *t, const tt_addr *k)
{
    uint64_t lo, hi;
    memcpy(&lo, k->bytes, 8);
    memcpy(&hi, k->bytes + 8, 8);
    uint64_t h = mix(t->seed ^ k->family);
    h = mix(h ^ lo);
    h = mix(h ^ hi);
    return (uint32_t)(h ^ (h >> 32));
}

tt_clients *tt_clients_new(size_t max, uint64_t seed)
{
    tt_clients *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->max = max > 0 ? max : 1;
    t->seed = seed;
    t->buckets = calloc(TT_CLIENTS_MIN_BUCKETS, sizeof(*t->buckets));
    if (t->buckets == NULL) {
        free(t);
        return NULL;
    }
    t->mask = TT_CLIENTS_MIN_BUCKETS - 1;
    return t;
}

void tt_clients_free(tt_clients *t)
{
    if (t == NULL)
        return;
    /* busy entries are off the LRU list, so walk the chains: they hold all */
    for (size_t i = 0; i <= t->mask; i++) {
        tt_client *e = t->buckets[i];
        while (e != NULL) {
            tt_client *next = e->hnext;
            free(e);
            e = next;
        }
    }
    free(t->buckets);
    free(t);
}

/* ---- the LRU list of idle entries ---- */

static void lru_unlink(tt_clients *t, tt_client *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        t->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        t->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(tt_clients *t, tt_client *e)
{
    e->prev = NULL;
    e->next = t->head;
    if (t->head != NULL)
        t->head->prev = e;
    else
        t->tail = e;
    t->head = e;
}

/* ---- the hash ---- */

static void chain_remove(tt_clients *t, tt_client *e)
{
    tt_client **p = &t->buckets[e->hash & t->mask];
    while (*p != NULL && *p != e)
        p = &(*p)->hnext;
    if (*p == e)
        *p = e->hnext;
    e->hnext = NULL;
}

static void chain_insert(tt_clients *t, tt_client *e)
{
    tt_client **b = &t->buckets[e->hash & t->mask];
    e->hnext = *b;
    *b = e;
}

/* Double the buckets while there are more entries than buckets and fewer
 * buckets than `max`; if memory is short the chains just get longer. */
static void maybe_grow(tt_clients *t)
{
    size_t n = t->mask + 1;
    if (t->count <= n || n >= t->max)
        return;
    tt_client **nb = calloc(n * 2, sizeof(*nb));
    if (nb == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        tt_client *e = t->buckets[i];
        while (e != NULL) {
            tt_client *next = e->hnext;
            tt_client **b = &nb[e->hash & (n * 2 - 1)];
            e->hnext = *b;
            *b = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = nb;
    t->mask = n * 2 - 1;
}

static tt_client *lookup(const tt_clients *t, const tt_addr *key, uint32_t hash)
{
    for (tt_client *e = t->buckets[hash & t->mask]; e != NULL; e = e->hnext)
        if (e->hash == hash && memcmp(&e->key, key, sizeof(*key)) == 0)
            return e;
    return NULL;
}

tt_client *tt_clients_find(const tt_clients *t, const tt_addr *key)
{
    return lookup(t, key, hash_key(t, key));
}

/* A fresh entry, or the least recently used idle one taken out of the
 * table; NULL when neither can be had. */
static tt_client *new_entry(tt_clients *t)
{
    if (t->count < t->max) {
        tt_client *e = malloc(sizeof(*e));
        if (e != NULL) {
            t->count++;
            return e;
        }
    }
    tt_client *e = t->tail;
    if (e == NULL)
        return NULL;            /* every entry is busy */
    lru_unlink(t, e);
    chain_remove(t, e);
    return e;
}

tt_client *tt_clients_get(tt_clients *t, const tt_addr *key, int *made)
{
    uint32_t hash = hash_key(t, key);
    tt_client *e = lookup(t, key, hash);

    *made = 0;
    if (e != NULL) {
        if (e->inflight == 0) {     /* busy entries are off the list */
            lru_unlink(t, e);
            lru_push_front(t, e);
        }
        return e;
    }
    if ((e = new_entry(t)) == NULL)
        return NULL;
    memset(e, 0, sizeof(*e));
    e->key = *key;
    e->hash = hash;
    chain_insert(t, e);
    lru_push_front(t, e);
    maybe_grow(t);
    *made = 1;
    return e;
}

void tt_clients_hold(tt_clients *t, tt_client *e)
{
    if (e->inflight++ == 0)
        lru_unlink(t, e);
}

void tt_clients_release(tt_clients *t, tt_client *e)
{
    if (e->inflight == 0)
        return;                 /* unbalanced: never let the count wrap */
    if (--e->inflight == 0)
        lru_push_front(t, e);
}

size_t tt_clients_count(const tt_clients *t)
{
    return t->count;
}

size_t tt_clients_max(const tt_clients *t)
{
    return t->max;
}
