/* throttle — a route filter that limits speed, request rate and requests in
 * flight, as nginx's limit_rate, limit_req and limit_conn do.
 *
 *   - match: /api/
 *     wsgi: {app: api.wsgi:application}
 *     throttle: {download: 512KB/s, requests: 20/s, burst: 40, connections: 10}
 *
 * This file is the module: its descriptor, the per-worker state of each
 * throttled route, and handle(), which finds the client's key and lets the
 * request go on (TT_DECLINED) or refuses it. The config is read in conf.c,
 * refusals are answered and logged in refuse.c, the bucket arithmetic is in
 * bucket.c, addresses in addr.c and the client table in table.c.
 * doc/throttle.md is the user's side of it.
 *
 * Nothing is shared between workers: each keeps its own buckets and counts
 * (see doc/throttle.md for how a limit is split between them).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include "throttle.h"

const tt_api *tt_throttle_api;

/* One held request, for its on_close hook. */
typedef struct {
    tt_throttle_worker *w;
    tt_client          *e;
} tt_throttle_hold;

/* What this worker made, freed when it exits. */
static tt_throttle_worker **worker_states;
static size_t               worker_nstates;

static int throttle_load(const tt_api *api)
{
    if (api->size < sizeof(tt_api))
        return -1;
    tt_throttle_api = api;
    return 0;
}

/* ---- this worker's state of a route ---- */

static uint64_t hash_seed(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
        return seed;
    /* no entropy yet (early boot): still differs per worker and start */
    return (tt_monotonic_ms() * 0x9e3779b97f4a7c15ull) ^ (uint64_t)getpid();
}

static tt_throttle_worker *worker_state(tt_throttle_conf *conf)
{
    const tt_api *api = tt_throttle_api;

    if (conf->worker != NULL)
        return conf->worker;

    tt_throttle_worker **grown = realloc(worker_states,
                                         (worker_nstates + 1) * sizeof(*grown));
    if (grown == NULL)
        return NULL;
    worker_states = grown;
    tt_throttle_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->conf = conf;
    /* worker_count() is only true in a worker, hence here and not in the
     * config: the config is also loaded by `tutti -t` and by the master */
    int n = api->worker_count();
    w->workers = n > 0 ? (unsigned)n : 1;
    if (conf->requests > 0)
        tt_bucket_cfg_set(&w->bucket, conf->requests, conf->burst, w->workers);
    if (conf->requests > 0 || conf->connections > 0) {
        w->clients = tt_clients_new(conf->clients, hash_seed());
        if (w->clients == NULL) {
            free(w);
            return NULL;
        }
    }
    worker_states[worker_nstates++] = w;
    conf->worker = w;
    return w;
}

static void throttle_exit_worker(void *main_conf)
{
    (void)main_conf;
    for (size_t i = 0; i < worker_nstates; i++) {
        tt_throttle_worker *w = worker_states[i];
        w->conf->worker = NULL;
        tt_clients_free(w->clients);
        free(w);
    }
    free(worker_states);
    worker_states = NULL;
    worker_nstates = 0;
}

/* ---- the client's key ---- */

static int trusted_peer(const tt_throttle_conf *conf, const tt_addr *peer)
{
    for (size_t i = 0; i < conf->ntrusted; i++)
        if (tt_cidr_match(&conf->trusted[i], peer))
            return 1;
    return 0;
}

/* The peer's address, or, when the peer is a trusted proxy, the address in
 * the key header. A header that holds no address counts for nothing: the
 * peer is then the key, and no header can make the table hold strings. */
static void client_key(const tt_request *r, const tt_throttle_conf *conf, tt_addr *key)
{
    const tt_api *api = tt_throttle_api;

    /* not an address (a UNIX socket): all such clients share one key */
    tt_addr_parse(r->remote_addr, strlen(r->remote_addr), key);
    if (conf->key_header == NULL || !trusted_peer(conf, key))
        return;

    size_t len;
    const char *v = api->header(r, conf->key_header, &len);
    if (v == NULL)
        return;
    /* X-Forwarded-For: "client, proxy1, proxy2": the last one is what the
     * trusted proxy itself appended; anything before it the client wrote */
    for (size_t i = len; i-- > 0;) {
        if (v[i] == ',') {
            v += i + 1;
            len -= i + 1;
            break;
        }
    }
    while (len > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    tt_addr from;
    if (tt_addr_parse(v, len, &from) == 0)
        *key = from;
}

/* ---- in flight ---- */

static void release_hold(tt_request *r, void *arg)
{
    tt_throttle_hold *h = arg;
    (void)r;
    tt_clients_release(h->w->clients, h->e);
}

static int hold(tt_request *r, tt_throttle_worker *w, tt_client *e)
{
    tt_throttle_hold *h = tt_throttle_api->palloc(r, sizeof(*h));
    if (h == NULL)
        return -1;
    h->w = w;
    h->e = e;
    tt_clients_hold(w->clients, e);
    tt_throttle_api->on_close(r, release_hold, h);
    return 0;
}

/* requests: and connections:. TT_DECLINED lets r go on. */
static int limit_client(tt_request *r, tt_throttle_conf *conf, tt_throttle_worker *w)
{
    uint64_t now = tt_monotonic_ms();
    tt_addr key;
    int made;

    client_key(r, conf, &key);
    tt_client *e = tt_clients_get(w->clients, &key, &made);
    if (e == NULL) {
        /* every entry has a request in flight: let this one through
         * uncounted rather than refuse a client for others' load */
        tt_throttle_note_untracked(r, w, now);
        return TT_DECLINED;
    }
    if (made && conf->requests > 0)
        tt_bucket_fill(&e->bucket, &w->bucket, now);

    /* connections first: a 503 must not also spend a token */
    if (conf->connections > 0 && e->inflight >= conf->connections)
        return tt_throttle_refuse(r, w, e, 503, 1, now);
    if (conf->requests > 0 && !tt_bucket_take(&e->bucket, &w->bucket, now))
        return tt_throttle_refuse(r, w, e, 429,
                                  tt_bucket_retry_after(&e->bucket, &w->bucket, now), now);
    tt_throttle_note_passed(r, w, e, now);

    if (conf->connections > 0 && hold(r, w, e) != 0)
        return TT_ERROR;
    return TT_DECLINED;
}

static int throttle_handle(tt_request *r, void *route_conf)
{
    tt_throttle_conf *conf = route_conf;
    tt_throttle_worker *w = worker_state(conf);

    if (w == NULL) {
        tt_throttle_api->log(TT_LOG_ERROR, "throttle: out of memory for the client "
                             "table of %s", r->route_prefix);
        return TT_ERROR;
    }
    if (w->clients != NULL) {
        int rc = limit_client(r, conf, w);
        if (rc != TT_DECLINED)
            return rc;
    }
    /* the core logs its own failure; the request still goes on, unlimited */
    if (conf->download > 0 || conf->upload > 0)
        tt_throttle_api->set_rate(r, conf->download, conf->upload, conf->download_after);
    return TT_DECLINED;
}

TT_MODULE_DEFINE = {
    .abi = TT_MODULE_ABI,
    .signature = TT_MODULE_SIGNATURE,
    .name = "throttle",
    .version = "0.1.0",
    .route_key = "throttle",
    .route_kind = TT_MODULE_FILTER,
    .load = throttle_load,
    .configure_route = tt_throttle_configure,
    .handle = throttle_handle,
    .exit_worker = throttle_exit_worker,
};
