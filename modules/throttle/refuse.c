/* throttle — refusing a request, and saying so in the error log.
 *
 * A refused client usually comes back at once, and a flood is thousands of
 * refusals a second: logging each would bury everything else in the log
 * and cost more than the refusal. So:
 *
 *   - a client's first refusal is logged with the limit it hit;
 *   - its next ones are counted, and summed up in one line at most once a
 *     second (on a later refusal, or when one of its requests passes again);
 *   - and a route writes at most TT_THROTTLE_LOG_LINES such lines a second
 *     in a worker whatever the number of clients, then says how many it
 *     left out, so a flood from many addresses cannot flood the log either.
 */
#include <stdio.h>
#include <string.h>
#include "throttle.h"

#define TT_THROTTLE_LOG_EVERY_MS     1000     /* per client */
#define TT_THROTTLE_LOG_LINES        20       /* per route and worker, each second */
#define TT_THROTTLE_UNTRACKED_LOG_MS 60000

/* When the current second is over, say what it left out, and open a new
 * one. Cheap enough to run for every request of a limited client. */
static void log_window(tt_throttle_worker *w, const tt_request *r, uint64_t now)
{
    if (now - w->log_window_ms < 1000)
        return;
    if (w->log_left_out > 0)
        tt_throttle_api->log(TT_LOG_WARN, "throttle: %llu more line(s) about refused "
                             "clients on %s were left out (at most %d a second)",
                             (unsigned long long)w->log_left_out, r->route_prefix,
                             TT_THROTTLE_LOG_LINES);
    w->log_window_ms = now;
    w->log_lines = 0;
    w->log_left_out = 0;
}

/* May one more line be written in this second? */
static int log_budget(tt_throttle_worker *w)
{
    if (w->log_lines >= TT_THROTTLE_LOG_LINES) {
        w->log_left_out++;
        return 0;
    }
    w->log_lines++;
    return 1;
}

static void logged(tt_client *e, uint64_t now)
{
    e->unlogged_429 = e->unlogged_503 = 0;
    e->logged_ms = now;
    e->logged = 1;
}

/* "429 for 203.0.113.7 on /api/ (/api/x): over requests: 20/s (burst 40)" */
static void log_first(const tt_request *r, const tt_throttle_worker *w,
                      tt_client *e, int status)
{
    const tt_throttle_conf *conf = w->conf;
    char who[TT_ADDR_TEXT_MAX], why[96];

    if (status == 429)
        snprintf(why, sizeof(why), "over requests: %s (burst %lu)", conf->requests_text,
                 conf->burst);
    else
        snprintf(why, sizeof(why), "over connections: %lu in flight", conf->connections);
    tt_throttle_api->log(TT_LOG_WARN, "throttle: %d for %s on %s (%s): %s; its further "
                         "refusals are summed up at most once a second", status,
                         tt_addr_format(&e->key, who, sizeof(who)), r->route_prefix,
                         r->target, why);
}

static void log_sum(const tt_request *r, tt_client *e, uint64_t now)
{
    char who[TT_ADDR_TEXT_MAX];

    tt_throttle_api->log(TT_LOG_WARN, "throttle: refused %u more request(s) from %s on "
                         "%s in the %.1f s since the last line (429: %u, 503: %u)",
                         e->unlogged_429 + e->unlogged_503,
                         tt_addr_format(&e->key, who, sizeof(who)), r->route_prefix,
                         (double)(now - e->logged_ms) / 1000.0, e->unlogged_429,
                         e->unlogged_503);
}

static void note_refusal(const tt_request *r, tt_throttle_worker *w, tt_client *e,
                         int status, uint64_t now)
{
    /* nothing pending: this refusal starts a new episode, told with its why */
    int first = !e->logged || e->unlogged_429 + e->unlogged_503 == 0;

    if (status == 429)
        e->unlogged_429++;
    else
        e->unlogged_503++;
    log_window(w, r, now);
    if (e->logged && now - e->logged_ms < TT_THROTTLE_LOG_EVERY_MS)
        return;
    if (!log_budget(w))
        return;                 /* the counts wait for a later line */
    if (first)
        log_first(r, w, e, status);
    else
        log_sum(r, e, now);
    logged(e, now);
}

int tt_throttle_refuse(tt_request *r, tt_throttle_worker *w, tt_client *e,
                       int status, uint64_t retry_after, uint64_t now_ms)
{
    const tt_api *api = tt_throttle_api;
    char retry[24];
    const char *body = status == 429 ? "429 Too Many Requests\n"
                                     : "503 Service Unavailable\n";
    size_t blen = strlen(body);
    int rlen = snprintf(retry, sizeof(retry), "%llu", (unsigned long long)retry_after);
    tt_header h[2] = {
        { "Content-Type", 12, "text/plain; charset=utf-8", 25 },
        { "Retry-After", 11, retry, (size_t)rlen },
    };

    note_refusal(r, w, e, status, now_ms);
    if (api->start(r, status, h, 2, (int64_t)blen) != 0)
        return TT_ERROR;
    if (api->write(r, body, blen) != 0)
        return TT_OK;           /* the connection failed: the core ends r */
    api->finish(r);
    return TT_OK;
}

void tt_throttle_note_passed(const tt_request *r, tt_throttle_worker *w,
                             tt_client *e, uint64_t now_ms)
{
    /* the tail of a flood that stopped: its count, still at most once a second */
    log_window(w, r, now_ms);
    if (e->unlogged_429 + e->unlogged_503 == 0)
        return;
    if (!e->logged)
        return;                 /* left out for the budget: its next refusal tells */
    if (now_ms - e->logged_ms < TT_THROTTLE_LOG_EVERY_MS || !log_budget(w))
        return;
    log_sum(r, e, now_ms);
    logged(e, now_ms);
}

void tt_throttle_note_untracked(const tt_request *r, tt_throttle_worker *w,
                                uint64_t now_ms)
{
    w->untracked++;
    if (w->untracked_logged && now_ms - w->untracked_logged_ms < TT_THROTTLE_UNTRACKED_LOG_MS)
        return;
    tt_throttle_api->log(TT_LOG_WARN, "throttle: on %s, all %zu entries of this worker's "
                         "client table have requests in flight; letting new clients "
                         "through without a limit (%llu request(s) so far); raise "
                         "clients: above %zu", r->route_prefix, tt_clients_max(w->clients),
                         (unsigned long long)w->untracked, tt_clients_max(w->clients));
    w->untracked_logged = 1;
    w->untracked_logged_ms = now_ms;
}
