/* A worker process: one libevent loop that accepts on every listener and
 * serves connections until the master tells it to stop.
 *
 * Signals arrive blocked (the master's mask survives fork), so none is lost
 * and none acts with its default disposition while the worker starts: the
 * loop's signal events are in place before they are unblocked, and a QUIT
 * sent while a module's init_worker runs is handled as soon as the loop runs.
 *
 *   QUIT       graceful: stop accepting, let busy connections finish, exit
 *              when none is left or after shutdown_timeout
 *   TERM, INT  fast: close every connection, exit
 *   USR1       reopen the log files
 *   HUP        nothing (the master reloads by starting new workers)
 */
#include "config.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/listener.h>
#include "http/conn.h"
#include "log.h"
#include "module.h"
#include "worker.h"

#define TT_ACCEPT_PAUSE_MS 1000     /* out of descriptors: stop accepting this long */

struct event_base *tt_worker_base;

static const int tt_worker_signals[] = { SIGQUIT, SIGTERM, SIGINT, SIGUSR1, SIGHUP };
#define TT_NSIGNALS (sizeof(tt_worker_signals) / sizeof(tt_worker_signals[0]))

static struct {
    tt_config              *cf;
    int                     id;
    struct evconnlistener **lev;        /* [i] for cf->listens[i] */
    size_t                  nlev;
    struct event           *sig[TT_NSIGNALS];
    struct event           *stop_timer; /* shutdown_timeout of a graceful stop */
    struct event           *resume;     /* accepting again after EMFILE */
    struct event           *check;      /* "is every connection gone?" */
    size_t                  ninit;      /* modules whose init_worker succeeded */
    int                     stopping;   /* 0, SIGQUIT or SIGTERM */
    int                     paused;     /* out of descriptors: accept later */
    int                     full;       /* at keepalive max_connections */
} tt_w;

const tt_config *tt_worker_config(void)
{
    return tt_w.cf;
}

int tt_worker_count(void)
{
    return tt_w.cf != NULL && tt_w.cf->workers > 0 ? tt_w.cf->workers : 1;
}

static void ms_to_tv(uint64_t ms, struct timeval *tv)
{
    tv->tv_sec = (time_t)(ms / 1000);
    tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

/* ---------------------------------------------------------------- accepting */

static void listeners_enable(int on)
{
    for (size_t i = 0; i < tt_w.nlev; i++) {
        if (tt_w.lev[i] == NULL)
            continue;
        if (on)
            evconnlistener_enable(tt_w.lev[i]);
        else
            evconnlistener_disable(tt_w.lev[i]);
    }
}

/* keepalive max_connections: at the limit the worker stops accepting, and
 * new connections wait in the kernel's listen backlog (or go to another
 * worker) until one of ours closes. */
static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
    tt_conn_accept(tt_worker_base, tt_w.cf, arg, fd, sa, salen);
    uint32_t max = tt_w.cf->max_connections;
    if (max > 0 && !tt_w.full && tt_conn_active() >= max) {
        tt_w.full = 1;
        listeners_enable(0);
    }
}

static void room_again(void)
{
    uint32_t max = tt_w.cf->max_connections;
    if (!tt_w.full || tt_conn_active() >= max)
        return;
    tt_w.full = 0;
    if (!tt_w.paused && !tt_w.stopping)
        listeners_enable(1);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    tt_w.paused = 0;
    if (!tt_w.stopping && !tt_w.full)
        listeners_enable(1);
}

/* libevent retries EAGAIN, EINTR and ECONNABORTED itself; anything else
 * comes here. Out of descriptors, the socket stays readable and accept()
 * would spin: pause all listeners for a second, which also lets connections
 * finish and give descriptors back. */
static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
    const tt_listen *l = arg;
    int e = EVUTIL_SOCKET_ERROR();
    if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
        tt_log(TT_LOG_ERROR, "accept() on %s: %s", l->text, strerror(e));
        return;
    }
    if (tt_w.paused)
        return;
    tt_log(TT_LOG_ERROR, "accept() on %s: %s; not accepting for %ds (%zu connections open)",
           l->text, strerror(e), TT_ACCEPT_PAUSE_MS / 1000, tt_conn_active());
    tt_w.paused = 1;
    listeners_enable(0);
    struct timeval tv;
    ms_to_tv(TT_ACCEPT_PAUSE_MS, &tv);
    evtimer_add(tt_w.resume, &tv);
}

static int listeners_open(tt_errbuf *err)
{
    tt_config *cf = tt_w.cf;
    tt_w.lev = calloc(cf->nlistens ? cf->nlistens : 1, sizeof(*tt_w.lev));
    if (tt_w.lev == NULL) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return -1;
    }
    tt_w.nlev = cf->nlistens;
    for (size_t i = 0; i < cf->nlistens; i++) {
        tt_listen *l = &cf->listens[i];
        /* backlog 0: the master's socket listens already. Not CLOSE_ON_FREE:
         * listeners_close() closes our copy of it, once. */
        tt_w.lev[i] = evconnlistener_new(tt_worker_base, accept_cb, l,
                                         LEV_OPT_CLOSE_ON_EXEC, 0, l->fd);
        if (tt_w.lev[i] == NULL) {
            snprintf(err->msg, sizeof(err->msg), "worker %d: cannot accept on %s: %s",
                     tt_w.id, l->text, strerror(errno));
            return -1;
        }
        evconnlistener_set_error_cb(tt_w.lev[i], accept_error_cb);
    }
    return 0;
}

/* Stop accepting for good: the master and the other workers still hold the
 * sockets, so closing our copies refuses no one. */
static void listeners_close(void)
{
    for (size_t i = 0; i < tt_w.nlev; i++) {
        if (tt_w.lev[i] != NULL)
            evconnlistener_free(tt_w.lev[i]);
    }
    free(tt_w.lev);
    tt_w.lev = NULL;
    tt_w.nlev = 0;
    for (size_t i = 0; tt_w.cf != NULL && i < tt_w.cf->nlistens; i++) {
        if (tt_w.cf->listens[i].fd >= 0)
            close(tt_w.cf->listens[i].fd);
        tt_w.cf->listens[i].fd = -1;
    }
    if (tt_w.resume != NULL)
        evtimer_del(tt_w.resume);
}

/* ---------------------------------------------------------------- stopping */

/* After a connection closed: the last one of a graceful stop ends the loop.
 * Deferred to its own event so the connection is fully gone by then. */
static void on_conn_closed(void)
{
    room_again();
    if (tt_w.stopping && tt_w.check != NULL)
        event_active(tt_w.check, EV_TIMEOUT, 0);
}

static void check_cb(evutil_socket_t fd, short what, void *arg)
{
    if (tt_w.stopping && tt_conn_active() == 0)
        event_base_loopbreak(tt_worker_base);
}

static void stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    size_t n = tt_conn_active();
    if (n > 0)
        tt_log(TT_LOG_WARN, "shutdown_timeout passed: closing %zu connection%s", n,
               n == 1 ? "" : "s");
    tt_conn_close_all();
    event_base_loopbreak(tt_worker_base);
}

static void graceful_stop(void)
{
    tt_w.stopping = SIGQUIT;
    listeners_close();
    tt_conn_graceful();
    struct timeval tv;
    ms_to_tv(tt_w.cf->shutdown_timeout_ms, &tv);
    evtimer_add(tt_w.stop_timer, &tv);
    event_active(tt_w.check, EV_TIMEOUT, 0);
}

static void fast_stop(void)
{
    tt_w.stopping = SIGTERM;
    listeners_close();
    tt_conn_close_all();
    event_base_loopbreak(tt_worker_base);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    switch (sig) {
    case SIGQUIT:
        if (!tt_w.stopping)
            graceful_stop();
        break;
    case SIGTERM:
    case SIGINT:
        if (tt_w.stopping != SIGTERM)
            fast_stop();
        break;
    case SIGUSR1:
        tt_log_reopen();
        break;
    default:
        break;
    }
}

/* ---------------------------------------------------------------- life */

static void worker_exit(int code) __attribute__((noreturn));

static void worker_exit(int code)
{
    listeners_close();
    tt_conn_close_all();
    /* let libevent run what freeing the connections deferred */
    event_base_loop(tt_worker_base, EVLOOP_NONBLOCK);
    for (size_t i = tt_w.ninit; i-- > 0;) {
        const tt_module *m = tt_w.cf->modules[i]->mod;
        if (m->exit_worker != NULL)
            m->exit_worker(tt_w.cf->main_confs[i]);
    }
    tt_conn_on_closed(NULL);
    tt_rate_free_all();
    for (size_t i = 0; i < TT_NSIGNALS; i++) {
        if (tt_w.sig[i] != NULL)
            event_free(tt_w.sig[i]);
    }
    if (tt_w.stop_timer != NULL)
        event_free(tt_w.stop_timer);
    if (tt_w.resume != NULL)
        event_free(tt_w.resume);
    if (tt_w.check != NULL)
        event_free(tt_w.check);
    event_base_free(tt_worker_base);
    tt_worker_base = NULL;
    tt_config_free(tt_w.cf);
    tt_w.cf = NULL;
    tt_log(TT_LOG_DEBUG, "exiting");
    tt_log_close();
    exit(code);             /* exit(), not _exit(): LeakSanitizer checks at exit */
}

/* "ERR <msg>\n" on the ready pipe, as one line, then exit 2 */
static void start_failed(int ready_fd, const char *msg) __attribute__((noreturn));

static void start_failed(int ready_fd, const char *msg)
{
    char line[1100];
    int n = snprintf(line, sizeof(line), "ERR %s", msg);
    if (n < 0 || n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    for (int i = 4; i < n; i++) {
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    }
    line[n++] = '\n';
    if (write(ready_fd, line, (size_t)n) < 0) {
        /* the master is gone; it will not miss the message */
    }
    close(ready_fd);
    worker_exit(2);
}

void tt_worker_run(tt_config *cf, int id, int ready_fd)
{
    char ident[32];
    tt_errbuf err = {{0}};

    snprintf(ident, sizeof(ident), "worker %d", id);
    tt_log_set_ident(ident);
    memset(&tt_w, 0, sizeof(tt_w));
    tt_w.cf = cf;
    tt_w.id = id;

    tt_worker_base = event_base_new();
    if (tt_worker_base == NULL) {
        char msg[128];
        snprintf(msg, sizeof(msg), "worker %d: cannot create its event loop", id);
        if (write(ready_fd, "ERR ", 4) < 0 || write(ready_fd, msg, strlen(msg)) < 0 ||
            write(ready_fd, "\n", 1) < 0) {
            /* the master is gone */
        }
        exit(2);
    }
    for (size_t i = 0; i < TT_NSIGNALS; i++) {
        tt_w.sig[i] = evsignal_new(tt_worker_base, tt_worker_signals[i], signal_cb, NULL);
        if (tt_w.sig[i] == NULL || evsignal_add(tt_w.sig[i], NULL) != 0) {
            snprintf(err.msg, sizeof(err.msg), "worker %d: cannot handle signals", id);
            start_failed(ready_fd, err.msg);
        }
    }
    tt_w.stop_timer = evtimer_new(tt_worker_base, stop_timer_cb, NULL);
    tt_w.resume = evtimer_new(tt_worker_base, resume_cb, NULL);
    tt_w.check = event_new(tt_worker_base, -1, 0, check_cb, NULL);
    if (tt_w.stop_timer == NULL || tt_w.resume == NULL || tt_w.check == NULL) {
        snprintf(err.msg, sizeof(err.msg), "worker %d: out of memory", id);
        start_failed(ready_fd, err.msg);
    }
    /* the handlers are in place: now signals may come (libevent queues them
     * until the loop runs) */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    for (size_t i = 0; i < cf->nmodules; i++) {
        const tt_module *m = cf->modules[i]->mod;
        if (m->init_worker != NULL && m->init_worker(cf->main_confs[i]) != 0) {
            /* the module said why through api->log(TT_LOG_ERROR, ...) */
            const char *why = tt_log_last_error();
            if (why != NULL)
                snprintf(err.msg, sizeof(err.msg), "%s", why);
            else
                snprintf(err.msg, sizeof(err.msg),
                         "module '%s' failed to start in worker %d", m->name, id);
            start_failed(ready_fd, err.msg);
        }
        tt_w.ninit = i + 1;
    }
    if (listeners_open(&err) != 0)
        start_failed(ready_fd, err.msg);
    tt_conn_on_closed(on_conn_closed);

    if (write(ready_fd, "OK\n", 3) != 3) {
        /* the master died while we started; PDEATHSIG is on its way */
    }
    close(ready_fd);
    tt_log(TT_LOG_DEBUG, "started");

    event_base_dispatch(tt_worker_base);
    worker_exit(0);
}
