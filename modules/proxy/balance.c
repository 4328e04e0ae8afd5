/* Which upstream gets a request, and which ones are left out for a while.
 *
 * round_robin is the smooth weighted kind (each pick adds every peer's
 * weight to its running score and takes the highest, which then pays the
 * total): weights 5,1,1 interleave as a a b a c a a instead of a burst of
 * five. least_conn compares requests in flight per unit of weight and breaks
 * ties in turn, so equal peers still alternate. ip_hash hashes
 * the client's whole address and probes onward from there when that peer
 * is out or already tried.
 *
 * Everything is per worker: the peers live in config memory each worker
 * got its own copy of at fork.
 */
#include <time.h>
#include "proxy.h"

uint64_t px_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int is_tried(const unsigned char *tried, size_t i)
{
    return tried != NULL && (tried[i / 8] >> (i % 8)) & 1;
}

static int is_up(const px_peer *p, uint64_t now)
{
    return p->max_fails == 0 || p->down_until <= now;
}

/* FNV-1a of the address text: stable across workers and restarts. */
static uint32_t addr_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static px_peer *pick_in(px_group *g, size_t from, size_t to, const tt_request *r,
                        const unsigned char *tried, uint64_t now, int ignore_down)
{
    px_peer *best = NULL;
    int total = 0;

    if (g->balance == PX_BALANCE_HASH) {
        size_t n = to - from;
        size_t start = addr_hash(r->remote_addr) % n;
        for (size_t k = 0; k < n; k++) {
            size_t i = from + (start + k) % n;
            if (!is_tried(tried, i) && (ignore_down || is_up(&g->peers[i], now)))
                return &g->peers[i];
        }
        return NULL;
    }

    if (g->balance == PX_BALANCE_LEAST) {
        /* fewest in flight per weight (a*wb < b*wa); ties go round in
         * turn from where the last pick left off */
        size_t n = to - from;
        size_t start = g->rr_next % n;
        for (size_t k = 0; k < n; k++) {
            size_t i = from + (start + k) % n;
            px_peer *p = &g->peers[i];
            if (is_tried(tried, i) || (!ignore_down && !is_up(p, now)))
                continue;
            if (best == NULL ||
                (uint64_t)p->active * (uint64_t)best->weight <
                (uint64_t)best->active * (uint64_t)p->weight)
                best = p;
        }
        if (best != NULL)
            g->rr_next = (unsigned)(best - g->peers - from + 1);
        return best;
    }

    for (size_t i = from; i < to; i++) {
        px_peer *p = &g->peers[i];
        if (is_tried(tried, i) || (!ignore_down && !is_up(p, now)))
            continue;
        p->current += p->weight;
        total += p->weight;
        if (best == NULL || p->current > best->current)
            best = p;
    }
    if (best != NULL)
        best->current -= total;
    return best;
}

px_peer *px_pick(px_group *g, const tt_request *r, const unsigned char *tried, int first)
{
    uint64_t now = px_now_ms();
    px_peer *p = pick_in(g, 0, g->nprimary, r, tried, now, 0);

    if (p == NULL && g->npeers > g->nprimary)
        p = pick_in(g, g->nprimary, g->npeers, r, tried, now, 0);
    if (p == NULL && first) {
        /* everything is out: better to try than to refuse (one upstream
         * that restarted is used at once) */
        p = pick_in(g, 0, g->nprimary, r, tried, now, 1);
    }
    return p;
}

int px_any_left(px_group *g, const unsigned char *tried)
{
    uint64_t now = px_now_ms();
    for (size_t i = 0; i < g->npeers; i++)
        if (!is_tried(tried, i) && is_up(&g->peers[i], now))
            return 1;
    return 0;
}

/* A failure: max_fails of them within fail_timeout leave it out for
 * fail_timeout. */
void px_peer_failed(px_peer *p)
{
    uint64_t now = px_now_ms();

    if (p->max_fails == 0)
        return;
    if (p->fails == 0 || now - p->fail_since > p->fail_ms) {
        p->fails = 0;
        p->fail_since = now;
    }
    if (++p->fails >= (unsigned)p->max_fails) {
        p->down_until = now + p->fail_ms;
        p->fails = 0;
        px_api->log(TT_LOG_WARN, "proxy %s: left out for %llu ms after %d failure%s",
                    p->name, (unsigned long long)p->fail_ms, p->max_fails,
                    p->max_fails == 1 ? "" : "s");
    }
}

void px_peer_ok(px_peer *p)
{
    p->fails = 0;
    p->down_until = 0;
}
