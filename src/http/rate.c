/* Speed limits per connection (module throttle's download/upload), on
 * libevent's token buckets.
 *
 * A bufferevent keeps a pointer to its bucket config, so a config must
 * outlive every connection that uses it. Configs are few (one per distinct
 * pair of rates in the config file), so each worker keeps the ones it made
 * until it exits, and reuses them.
 *
 * The bucket refills every 100 ms, so a limited response flows instead of
 * leaving in one-second lumps, and holds at most one second's worth: a
 * connection that was idle may burst that much, never more.
 */
#include <stdlib.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include "http/conn.h"
#include "http/request_impl.h"
#include "log.h"

#define TT_RATE_TICK_MS 100

typedef struct tt_rate_cfg {
    struct tt_rate_cfg         *next;
    uint64_t                    download, upload;
    struct ev_token_bucket_cfg *cfg;
} tt_rate_cfg;

static tt_rate_cfg *rate_cfgs;

static void bucket(uint64_t per_sec, size_t *per_tick, size_t *burst)
{
    if (per_sec == 0 || per_sec >= EV_RATE_LIMIT_MAX) {
        *per_tick = *burst = EV_RATE_LIMIT_MAX;
        return;
    }
    uint64_t tick = per_sec * TT_RATE_TICK_MS / 1000;
    *per_tick = tick > 0 ? (size_t)tick : 1;
    *burst = per_sec > *per_tick ? (size_t)per_sec : *per_tick;
}

static struct ev_token_bucket_cfg *cfg_for(uint64_t download, uint64_t upload)
{
    for (tt_rate_cfg *rc = rate_cfgs; rc != NULL; rc = rc->next)
        if (rc->download == download && rc->upload == upload)
            return rc->cfg;

    tt_rate_cfg *rc = calloc(1, sizeof(*rc));
    if (rc == NULL)
        return NULL;
    size_t read_tick, read_burst, write_tick, write_burst;
    bucket(upload, &read_tick, &read_burst);
    bucket(download, &write_tick, &write_burst);
    struct timeval tick = { 0, TT_RATE_TICK_MS * 1000 };
    rc->cfg = ev_token_bucket_cfg_new(read_tick, read_burst, write_tick, write_burst, &tick);
    if (rc->cfg == NULL) {
        free(rc);
        return NULL;
    }
    rc->download = download;
    rc->upload = upload;
    rc->next = rate_cfgs;
    rate_cfgs = rc;
    return rc->cfg;
}

int tt_req_set_rate(tt_request *r, uint64_t download, uint64_t upload,
                    uint64_t download_after)
{
    tt_req *q = (tt_req *)r;
    tt_conn *c = q->c;

    if (c == NULL || c->compact)
        return -1;
    if (download == 0 && upload == 0) {
        if (c->rate_limited)
            bufferevent_set_rate_limit(c->bev, NULL);
        c->rate_limited = 0;
        return 0;
    }
    struct ev_token_bucket_cfg *cfg = cfg_for(download, upload);
    if (cfg == NULL || bufferevent_set_rate_limit(c->bev, cfg) != 0) {
        tt_log(TT_LOG_ERROR, "cannot limit the speed of \"%s\": out of memory", r->target);
        return -1;
    }
    c->rate_limited = 1;
    if (download > 0 && download_after > 0) {
        /* nginx's limit_rate_after: that much more in the bucket, once */
        ev_ssize_t extra = download_after > (uint64_t)EV_RATE_LIMIT_MAX / 2
                         ? EV_RATE_LIMIT_MAX / 2 : (ev_ssize_t)download_after;
        bufferevent_decrement_write_limit(c->bev, -extra);
    }
    return 0;
}

void tt_rate_free_all(void)
{
    while (rate_cfgs != NULL) {
        tt_rate_cfg *rc = rate_cfgs;
        rate_cfgs = rc->next;
        ev_token_bucket_cfg_free(rc->cfg);
        free(rc);
    }
}
