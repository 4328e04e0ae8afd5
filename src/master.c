/* The master: binds the listeners, forks the workers, restarts a worker that
 * dies, and turns signals into reloads and stops.
 *
 * It runs no event library: signals are blocked and read from a signalfd,
 * which one poll() watches together with the workers' ready pipes, so nothing
 * runs in a signal handler and nothing of the master's loop survives into a
 * forked worker. Every worker belongs to a generation (one per config):
 *
 *   STARTING --"OK\n" on its ready pipe--> READY --QUIT on reload--> RETIRING
 *
 * A generation counts as started once all its workers are READY. The first
 * one is start-up (a failure ends the master with status 2); later ones are
 * reloads (a failure keeps the old generation serving). A READY worker of the
 * serving generation that dies is restarted, with back-off when it dies young;
 * RETIRING workers are only reaped.
 */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "log.h"
#include "master.h"
#include "process.h"
#include "worker.h"

#define TT_LISTEN_BACKLOG   511
#define TT_READY_TIMEOUT_MS 60000   /* a worker's start-up (Python imports included) */
#define TT_FAST_STOP_MS     5000    /* TERM, then KILL after this */
#define TT_STOP_GRACE_MS    2000    /* past shutdown_timeout: the worker's own clean-up */
#define TT_YOUNG_DEATH_MS   1000    /* a worker dying younger than this backs off */
#define TT_BACKOFF_MIN_MS   500
#define TT_BACKOFF_MAX_MS   10000
#define TT_POLL_MAX_MS      1000
#define TT_ERRLINE_MAX      1024    /* as tt_errbuf */

typedef enum { TT_W_STARTING, TT_W_READY, TT_W_RETIRING } tt_wstate;

typedef struct {
    pid_t     pid;          /* 0: not running (free, or waiting to respawn) */
    int       id;           /* 1..workers, kept across restarts */
    unsigned  gen;
    tt_wstate state;
    int       ready_fd;     /* read end while STARTING, else -1 */
    char      line[TT_ERRLINE_MAX];
    size_t    linelen;
    int       failed;       /* its start-up failure was already counted */
    uint64_t  started_ms;
    uint64_t  deadline_ms;  /* STARTING: ready by; RETIRING: KILL at */
    uint64_t  respawn_ms;   /* pid 0: start again at this time; 0: free slot */
    uint64_t  backoff_ms;
} tt_child;

static struct {
    tt_config  *cf;         /* the config being served */
    tt_config  *next;       /* a reload's config while its workers start */
    const char *file;
    unsigned    gen, next_gen, last_gen;
    int         started;    /* start-up done (reported) */
    tt_child   *kids;
    size_t      nkids, cap;
    int         sigfd;
    int         status_fd;
    int         detached;   /* stderr was pointed at the error log */
    int         stopping;   /* 0, SIGQUIT (graceful) or SIGTERM (fast) */
    uint64_t    stop_deadline_ms;
    int         reload_pending;
    char        failure[TT_ERRLINE_MAX]; /* first failure of the starting generation */
    int         exit_code;
    pid_t       pid;
} tt_m = { .sigfd = -1, .status_fd = -1 };

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int log_is_stderr(const tt_config *cf)
{
    return cf->error_log == NULL || strcmp(cf->error_log, "stderr") == 0;
}

/* ---------------------------------------------------------------- listeners */

static const tt_listen *find_listen(const tt_config *cf, const tt_listen *l)
{
    for (size_t i = 0; cf != NULL && i < cf->nlistens; i++) {
        const tt_listen *o = &cf->listens[i];
        if (o->addrlen == l->addrlen && memcmp(&o->addr, &l->addr, l->addrlen) == 0)
            return o;
    }
    return NULL;
}

static int fd_in(const tt_config *cf, int fd)
{
    for (size_t i = 0; cf != NULL && i < cf->nlistens; i++) {
        if (cf->listens[i].fd == fd)
            return 1;
    }
    return 0;
}

/* Close the listening sockets of `a` that `b` does not use, and forget all
 * of them in `a`, so freeing `a` can never close a socket `b` serves on. */
static void release_listens(tt_config *a, const tt_config *b)
{
    for (size_t i = 0; a != NULL && i < a->nlistens; i++) {
        tt_listen *l = &a->listens[i];
        if (l->fd >= 0 && !fd_in(b, l->fd))
            close(l->fd);
        l->fd = -1;
    }
}

static void listen_error(tt_errbuf *err, const tt_listen *l, int e)
{
    if (l->node != NULL)
        tt_conf_error(err, l->node, "cannot listen on %s: %s", l->text, strerror(e));
    else
        snprintf(err->msg, sizeof(err->msg), "cannot listen on %s: %s", l->text, strerror(e));
}

static int open_listener(tt_listen *l, tt_errbuf *err)
{
    int one = 1;
    int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        listen_error(err, l, errno);
        return -1;
    }
    /* a restarted master must not wait for TIME_WAIT to pass */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* "[::]:8080" and "0.0.0.0:8080" may both be listed */
    if (l->addr.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&l->addr, l->addrlen) != 0 ||
        listen(fd, TT_LISTEN_BACKLOG) != 0) {
        int e = errno;
        close(fd);
        listen_error(err, l, e);
        return -1;
    }
    l->fd = fd;
    return 0;
}

int tt_master_bind(tt_config *cf, const tt_config *old, tt_errbuf *err)
{
    for (size_t i = 0; i < cf->nlistens; i++)
        cf->listens[i].fd = -1;
    for (size_t i = 0; i < cf->nlistens; i++) {
        tt_listen *l = &cf->listens[i];
        const tt_listen *same = find_listen(old, l);
        if (same != NULL && same->fd >= 0) {
            l->fd = same->fd;       /* the same socket: no gap, no lost connection */
            continue;
        }
        if (open_listener(l, err) != 0) {
            release_listens(cf, old);
            return -1;
        }
    }
    return 0;
}

static void listen_list(const tt_config *cf, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cf->nlistens && n < len; i++) {
        int w = snprintf(buf + n, len - n, "%s%s", i ? ", " : "", cf->listens[i].text);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

/* ---------------------------------------------------------------- workers */

static tt_config *gen_config(unsigned gen)
{
    if (gen == tt_m.gen)
        return tt_m.cf;
    if (tt_m.next != NULL && gen == tt_m.next_gen)
        return tt_m.next;
    return NULL;
}

/* the generation whose start-up is being waited for, or 0 */
static unsigned starting_gen(void)
{
    if (!tt_m.started)
        return tt_m.gen;
    return tt_m.next != NULL ? tt_m.next_gen : 0;
}

static tt_child *child_slot(void)
{
    for (size_t i = 0; i < tt_m.nkids; i++) {
        if (tt_m.kids[i].pid == 0 && tt_m.kids[i].respawn_ms == 0)
            return &tt_m.kids[i];
    }
    if (tt_m.nkids == tt_m.cap) {
        size_t cap = tt_m.cap ? tt_m.cap * 2 : 8;
        tt_child *k = realloc(tt_m.kids, cap * sizeof(*k));
        if (k == NULL)
            return NULL;
        tt_m.kids = k;
        tt_m.cap = cap;
    }
    tt_child *k = &tt_m.kids[tt_m.nkids++];
    memset(k, 0, sizeof(*k));
    k->ready_fd = -1;
    return k;
}

static void free_slot(tt_child *k)
{
    if (k->ready_fd >= 0)
        close(k->ready_fd);
    memset(k, 0, sizeof(*k));
    k->ready_fd = -1;
}

/* In the new worker: let go of everything that belongs to the master, so a
 * worker never keeps a removed port, a pipe or the daemon's status fd open;
 * then become `user:`. */
static void child_detach(const tt_child *self, const tt_config *cf, int ready_fd)
{
    close(tt_m.sigfd);
    if (tt_m.status_fd >= 0)
        close(tt_m.status_fd);
    for (size_t i = 0; i < tt_m.nkids; i++) {
        if (&tt_m.kids[i] != self && tt_m.kids[i].ready_fd >= 0)
            close(tt_m.kids[i].ready_fd);
    }
    tt_config *other = cf == tt_m.cf ? tt_m.next : tt_m.cf;
    for (size_t i = 0; other != NULL && i < other->nlistens; i++) {
        if (other->listens[i].fd >= 0 && !fd_in(cf, other->listens[i].fd))
            close(other->listens[i].fd);
    }
    /* a worker outlives no master: the kernel sends TERM when it goes */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != tt_m.pid)
        _exit(0);
    tt_errbuf err = {{0}};
    if (tt_drop_privileges(cf->user, &err) != 0) {
        char line[sizeof(err.msg) + 8];
        int n = snprintf(line, sizeof(line), "ERR %s\n", err.msg);
        if (write(ready_fd, line, (size_t)n) < 0) {
            /* the master is gone */
        }
        _exit(2);
    }
}

/* Start worker k (its id and gen set); 0, or -1 with the reason logged. */
static int spawn(tt_child *k)
{
    tt_config *cf = gen_config(k->gen);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(k->line, sizeof(k->line), "cannot start worker %d: pipe: %s", k->id,
                 strerror(errno));
        return -1;
    }
    fflush(NULL);               /* or the worker writes our buffered output again */
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(k->line, sizeof(k->line), "cannot start worker %d: fork: %s", k->id,
                 strerror(errno));
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        child_detach(k, cf, p[1]);
        tt_worker_run(cf, k->id, p[1]);
    }
    close(p[1]);
    uint64_t now = now_ms();
    k->pid = pid;
    k->state = TT_W_STARTING;
    k->ready_fd = p[0];
    k->linelen = 0;
    k->line[0] = '\0';
    k->failed = 0;
    k->started_ms = now;
    k->deadline_ms = now + TT_READY_TIMEOUT_MS;
    k->respawn_ms = 0;
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    tt_log(TT_LOG_DEBUG, "worker %d started (pid %ld)", k->id, (long)pid);
    return 0;
}

static int spawn_generation(tt_config *cf, unsigned gen)
{
    for (int id = 1; id <= cf->workers; id++) {
        tt_child *k = child_slot();
        if (k == NULL) {
            snprintf(tt_m.failure, sizeof(tt_m.failure), "cannot start workers: out of memory");
            return -1;
        }
        k->id = id;
        k->gen = gen;
        if (spawn(k) != 0) {
            if (tt_m.failure[0] == '\0')
                snprintf(tt_m.failure, sizeof(tt_m.failure), "%s", k->line);
            free_slot(k);
            return -1;
        }
    }
    return 0;
}

static void signal_gen(unsigned gen, int sig)
{
    for (size_t i = 0; i < tt_m.nkids; i++) {
        if (tt_m.kids[i].pid > 0 && tt_m.kids[i].gen == gen)
            kill(tt_m.kids[i].pid, sig);
    }
}

static void signal_all(int sig)
{
    for (size_t i = 0; i < tt_m.nkids; i++) {
        if (tt_m.kids[i].pid > 0)
            kill(tt_m.kids[i].pid, sig);
    }
}

static size_t live_kids(void)
{
    size_t n = 0;
    for (size_t i = 0; i < tt_m.nkids; i++)
        n += tt_m.kids[i].pid > 0;
    return n;
}

/* Retire every worker of gen: the READY ones finish their requests (QUIT),
 * the ones still starting have none and are killed. */
static void retire_gen(unsigned gen, uint64_t grace_ms)
{
    uint64_t now = now_ms();
    for (size_t i = 0; i < tt_m.nkids; i++) {
        tt_child *k = &tt_m.kids[i];
        if (k->gen != gen)
            continue;
        if (k->pid == 0) {
            free_slot(k);       /* a pending restart */
            continue;
        }
        if (k->state == TT_W_RETIRING)
            continue;
        kill(k->pid, k->state == TT_W_READY ? SIGQUIT : SIGKILL);
        if (k->ready_fd >= 0) {
            close(k->ready_fd);
            k->ready_fd = -1;
        }
        k->state = TT_W_RETIRING;
        k->deadline_ms = now + grace_ms;
    }
}

static void describe_exit(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status))
        snprintf(buf, len, "exited on signal %d%s", WTERMSIG(status),
                 WCOREDUMP(status) ? " (core dumped)" : "");
    else
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
}

/* ---------------------------------------------------------------- start-up */

static void report(int ok, const char *msg)
{
    if (tt_m.status_fd >= 0) {
        char line[TT_ERRLINE_MAX + 8];
        int n = ok ? snprintf(line, sizeof(line), "OK\n")
                   : snprintf(line, sizeof(line), "ERR %s\n", msg);
        if (n > (int)sizeof(line) - 1)
            n = (int)sizeof(line) - 1;
        if (write(tt_m.status_fd, line, (size_t)n) < 0) {
            /* the waiting parent is gone; nobody left to tell */
        }
        close(tt_m.status_fd);
        tt_m.status_fd = -1;
    } else if (!ok) {
        fprintf(stderr, "tutti: %s\n", msg);
    }
}

/* A worker of a starting generation failed: remember the first reason. A
 * restarted worker of the serving generation only logs it. */
static void fail_start(tt_child *k, const char *msg)
{
    if (k->failed)
        return;
    k->failed = 1;
    if (k->gen == starting_gen()) {
        if (tt_m.failure[0] == '\0')
            snprintf(tt_m.failure, sizeof(tt_m.failure), "%s", msg);
        return;
    }
    tt_log(TT_LOG_ERROR, "worker %d failed to start: %s", k->id, msg);
}

static void startup_done(void)
{
    char addrs[1024];
    listen_list(tt_m.cf, addrs, sizeof(addrs));
    tt_m.started = 1;
    tt_log(TT_LOG_INFO, "tutti started: %d worker%s, listening on %s",
           tt_m.cf->workers, tt_m.cf->workers == 1 ? "" : "s", addrs);
    report(1, NULL);
}

static void startup_failed(void)
{
    if (!log_is_stderr(tt_m.cf))
        tt_log(TT_LOG_ERROR, "start-up failed: %s", tt_m.failure);
    report(0, tt_m.failure);
    tt_m.exit_code = 2;
    tt_m.started = 1;       /* nothing more to wait for */
    tt_m.stopping = SIGTERM;
    tt_m.stop_deadline_ms = now_ms() + TT_FAST_STOP_MS;
    retire_gen(tt_m.gen, TT_FAST_STOP_MS);
    signal_gen(tt_m.gen, SIGTERM);
}

/* ---------------------------------------------------------------- reload */

static void reload_start(void)
{
    tt_errbuf err = {{0}};
    tt_log(TT_LOG_INFO, "reloading %s", tt_m.file);
    tt_config *cf = tt_config_load(tt_m.file, &err);
    if (cf == NULL) {
        tt_log(TT_LOG_ERROR, "reload refused: %s", err.msg);
        return;
    }
    if (tt_master_bind(cf, tt_m.cf, &err) != 0) {
        tt_log(TT_LOG_ERROR, "reload refused: %s", err.msg);
        tt_config_free(cf);
        return;
    }
    if (tt_log_open(cf, &err) != 0) {
        tt_log(TT_LOG_ERROR, "reload refused: %s", err.msg);
        release_listens(cf, tt_m.cf);
        tt_config_free(cf);
        return;
    }
    tt_chown_logs(cf);
    tt_m.next = cf;
    tt_m.next_gen = ++tt_m.last_gen;
    tt_m.failure[0] = '\0';
    spawn_generation(cf, tt_m.next_gen);   /* a failure is in tt_m.failure */
}

static void reload_refused(void)
{
    tt_errbuf err = {{0}};
    retire_gen(tt_m.next_gen, tt_m.next->shutdown_timeout_ms + TT_STOP_GRACE_MS);
    if (tt_log_open(tt_m.cf, &err) != 0)
        tt_log(TT_LOG_ERROR, "%s", err.msg);
    tt_log(TT_LOG_ERROR, "reload refused: %s", tt_m.failure);
    release_listens(tt_m.next, tt_m.cf);
    tt_config_free(tt_m.next);
    tt_m.next = NULL;
    tt_m.failure[0] = '\0';
}

static int same_path(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void reload_done(void)
{
    tt_config *old = tt_m.cf, *cf = tt_m.next;
    retire_gen(tt_m.gen, old->shutdown_timeout_ms + TT_STOP_GRACE_MS);
    if (!same_path(old->pid_file, cf->pid_file)) {
        tt_errbuf err = {{0}};
        if (cf->pid_file != NULL && tt_pidfile_write(cf->pid_file, &err) != 0)
            tt_log(TT_LOG_ERROR, "%s", err.msg);
        tt_pidfile_remove(old->pid_file);
    }
    release_listens(old, cf);
    tt_config_free(old);
    tt_m.cf = cf;
    tt_m.gen = tt_m.next_gen;
    tt_m.next = NULL;

    char addrs[1024];
    listen_list(cf, addrs, sizeof(addrs));
    tt_log(TT_LOG_INFO, "reloaded: %d worker%s, listening on %s",
           cf->workers, cf->workers == 1 ? "" : "s", addrs);
}

/* ---------------------------------------------------------------- stop */

static void stop(int sig)
{
    if (tt_m.stopping == SIGTERM || tt_m.stopping == sig)
        return;
    if (!tt_m.started) {
        snprintf(tt_m.failure, sizeof(tt_m.failure), "stopped by signal during start-up");
        report(0, tt_m.failure);
        tt_m.started = 1;
    }
    tt_m.stopping = sig;
    uint64_t ms = sig == SIGQUIT ? tt_m.cf->shutdown_timeout_ms + TT_STOP_GRACE_MS
                                 : TT_FAST_STOP_MS;
    tt_m.stop_deadline_ms = now_ms() + ms;
    tt_log(TT_LOG_INFO, sig == SIGQUIT ? "graceful stop" : "fast stop");
    for (size_t i = 0; i < tt_m.nkids; i++) {
        tt_child *k = &tt_m.kids[i];
        if (k->pid == 0) {
            free_slot(k);       /* no restart any more */
            continue;
        }
        /* the stop's deadline, not the one a worker got when it was
         * spawned (ready by) or retired by a reload, if that is later: a
         * worker up for more than a minute was otherwise killed at once */
        if (k->state != TT_W_RETIRING || k->deadline_ms > tt_m.stop_deadline_ms)
            k->deadline_ms = tt_m.stop_deadline_ms;
        k->state = TT_W_RETIRING;
    }
    signal_all(sig);
    /* the port closes as soon as the workers let go of it too: a client
     * then gets "connection refused" instead of waiting in a backlog that
     * nobody will accept from */
    if (tt_m.next != NULL)
        release_listens(tt_m.next, tt_m.cf);
    release_listens(tt_m.cf, NULL);
}

/* ---------------------------------------------------------------- events */

/* Read what a starting worker wrote on its ready pipe. */
static void read_ready(tt_child *k)
{
    while (k->ready_fd >= 0) {
        char buf[256];
        ssize_t n = read(k->ready_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {           /* it closed the pipe without a word: it died */
            close(k->ready_fd);
            k->ready_fd = -1;
            return;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                if (k->linelen < sizeof(k->line) - 1)
                    k->line[k->linelen++] = buf[i];
                continue;
            }
            k->line[k->linelen] = '\0';
            close(k->ready_fd);
            k->ready_fd = -1;
            if (strcmp(k->line, "OK") == 0) {
                if (k->state == TT_W_STARTING)
                    k->state = TT_W_READY;
            } else {
                const char *msg = strncmp(k->line, "ERR ", 4) == 0 ? k->line + 4 : k->line;
                fail_start(k, msg);
            }
            return;
        }
    }
}

static void worker_exited(tt_child *k, int status)
{
    char how[64], msg[TT_ERRLINE_MAX];
    read_ready(k);              /* an "ERR ..." may still sit in the pipe */
    if (k->ready_fd >= 0) {
        close(k->ready_fd);
        k->ready_fd = -1;
    }
    describe_exit(status, how, sizeof(how));
    snprintf(msg, sizeof(msg), "worker %d (pid %ld) %s during start-up", k->id,
             (long)k->pid, how);

    if (k->state == TT_W_RETIRING || tt_m.stopping) {
        tt_log(TT_LOG_DEBUG, "worker %d (pid %ld) %s", k->id, (long)k->pid, how);
        free_slot(k);
        return;
    }
    if (k->gen == starting_gen() || gen_config(k->gen) == NULL) {
        /* start-up or a reload waits for this generation: it failed */
        fail_start(k, msg);
        free_slot(k);
        return;
    }

    /* a worker of the serving generation: restart it, later if it died young */
    int young = k->state == TT_W_STARTING || now_ms() - k->started_ms < TT_YOUNG_DEATH_MS;
    k->backoff_ms = young ? (k->backoff_ms ? k->backoff_ms * 2 : TT_BACKOFF_MIN_MS) : 0;
    if (k->backoff_ms > TT_BACKOFF_MAX_MS)
        k->backoff_ms = TT_BACKOFF_MAX_MS;
    if (k->state == TT_W_STARTING)
        fail_start(k, msg);     /* logs the reason once */
    else
        tt_log(TT_LOG_WARN, "worker %d (pid %ld) %s; restarting", k->id, (long)k->pid, how);
    if (k->backoff_ms)
        tt_log(TT_LOG_WARN, "worker %d died young; restarting it in %.1fs", k->id,
               (double)k->backoff_ms / 1000.0);
    k->pid = 0;
    k->respawn_ms = now_ms() + k->backoff_ms + 1;   /* nonzero: a pending restart */
}

static void reap(void)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        for (size_t i = 0; i < tt_m.nkids; i++) {
            if (tt_m.kids[i].pid == pid) {
                worker_exited(&tt_m.kids[i], status);
                break;
            }
        }
    }
}

static void reopen_logs(void)
{
    tt_log_reopen();
    tt_chown_logs(tt_m.cf);     /* before the workers open them again */
    if (tt_m.detached)
        tt_redirect_stderr(tt_m.cf->error_log);
    tt_log(TT_LOG_INFO, "logs reopened");
    signal_all(SIGUSR1);
}

static void on_signal(int sig)
{
    switch (sig) {
    case SIGCHLD:
        reap();
        break;
    case SIGHUP:
        if (tt_m.stopping)
            break;
        tt_m.reload_pending = 1;    /* run by the loop once nothing else starts */
        break;
    case SIGQUIT:
        stop(SIGQUIT);
        break;
    case SIGTERM:
    case SIGINT:
        stop(SIGTERM);
        break;
    case SIGUSR1:
        reopen_logs();
        break;
    }
}

static void read_signals(void)
{
    struct signalfd_siginfo si;
    while (read(tt_m.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        on_signal((int)si.ssi_signo);
}

/* Deadlines: workers that did not start in time, retiring workers that
 * overstay, pending restarts, the end of a stop. */
static void run_timers(void)
{
    uint64_t now = now_ms();
    tt_tickets_tick(now);
    for (size_t i = 0; i < tt_m.nkids; i++) {
        tt_child *k = &tt_m.kids[i];
        if (k->pid > 0 && k->state == TT_W_STARTING && now >= k->deadline_ms && !k->failed) {
            char msg[128];
            snprintf(msg, sizeof(msg), "worker %d (pid %ld) did not start within %ds",
                     k->id, (long)k->pid, TT_READY_TIMEOUT_MS / 1000);
            fail_start(k, msg);
            kill(k->pid, SIGKILL);
            k->deadline_ms = UINT64_MAX;
        } else if (k->pid > 0 && k->state == TT_W_RETIRING && now >= k->deadline_ms) {
            tt_log(TT_LOG_WARN, "worker %d (pid %ld) still running; killing it",
                   k->id, (long)k->pid);
            kill(k->pid, SIGKILL);
            k->deadline_ms = UINT64_MAX;
        } else if (k->pid == 0 && k->respawn_ms != 0 && now >= k->respawn_ms &&
                   !tt_m.stopping) {
            if (spawn(k) != 0) {
                tt_log(TT_LOG_ERROR, "%s", k->line);
                k->backoff_ms = TT_BACKOFF_MAX_MS;
                k->respawn_ms = now + k->backoff_ms;
            }
        }
    }
    if (tt_m.stopping && now >= tt_m.stop_deadline_ms) {
        for (size_t i = 0; i < tt_m.nkids; i++) {
            tt_child *k = &tt_m.kids[i];
            if (k->pid > 0 && k->deadline_ms != UINT64_MAX) {
                tt_log(TT_LOG_WARN, "worker %d (pid %ld) still running; killing it",
                       k->id, (long)k->pid);
                kill(k->pid, SIGKILL);
                k->deadline_ms = UINT64_MAX;
            }
        }
        tt_m.stop_deadline_ms = UINT64_MAX;
    }
}

static int gen_ready(unsigned gen)
{
    for (size_t i = 0; i < tt_m.nkids; i++) {
        const tt_child *k = &tt_m.kids[i];
        if (k->gen == gen && k->pid > 0 && k->state != TT_W_READY)
            return 0;
    }
    return 1;
}

static void advance(void)
{
    if (!tt_m.started) {
        if (tt_m.failure[0] != '\0')
            startup_failed();
        else if (gen_ready(tt_m.gen))
            startup_done();
    }
    if (tt_m.next != NULL) {
        if (tt_m.stopping) {
            /* its workers were told to stop with the rest */
        } else if (tt_m.failure[0] != '\0') {
            reload_refused();
        } else if (gen_ready(tt_m.next_gen)) {
            reload_done();
        }
    }
    if (tt_m.reload_pending && tt_m.started && tt_m.next == NULL && !tt_m.stopping) {
        tt_m.reload_pending = 0;
        reload_start();
        if (tt_m.failure[0] != '\0')
            reload_refused();
    }
}

static int poll_timeout(void)
{
    uint64_t now = now_ms(), next = now + TT_POLL_MAX_MS;
    for (size_t i = 0; i < tt_m.nkids; i++) {
        const tt_child *k = &tt_m.kids[i];
        uint64_t t = UINT64_MAX;
        if (k->pid > 0 && k->state != TT_W_READY)
            t = k->deadline_ms;
        else if (k->pid == 0 && k->respawn_ms != 0)
            t = k->respawn_ms;
        if (t < next)
            next = t;
    }
    if (tt_m.stopping && tt_m.stop_deadline_ms < next)
        next = tt_m.stop_deadline_ms;
    /* (both clocks are CLOCK_MONOTONIC milliseconds) */
    uint64_t rotate = tt_tickets_next_ms();
    if (rotate < next)
        next = rotate;
    return next <= now ? 0 : (int)(next - now);
}

/* ---------------------------------------------------------------- the loop */

void tt_master_block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
}

void tt_master_set_detached(int detached)
{
    tt_m.detached = detached;
}

static void master_cleanup(void)
{
    for (size_t i = 0; i < tt_m.nkids; i++)
        free_slot(&tt_m.kids[i]);
    free(tt_m.kids);
    tt_m.kids = NULL;
    tt_m.nkids = tt_m.cap = 0;
    if (tt_m.next != NULL) {
        release_listens(tt_m.next, tt_m.cf);
        tt_config_free(tt_m.next);
        tt_m.next = NULL;
    }
    tt_pidfile_remove(tt_m.cf->pid_file);
    release_listens(tt_m.cf, NULL);
    tt_config_free(tt_m.cf);
    tt_m.cf = NULL;
    if (tt_m.sigfd >= 0)
        close(tt_m.sigfd);
    tt_m.sigfd = -1;
}

int tt_master_run(tt_config *cf, const char *file, int status_fd)
{
    tt_m.cf = cf;
    tt_m.file = file;
    tt_m.status_fd = status_fd;
    tt_m.pid = getpid();
    tt_m.gen = tt_m.last_gen = 1;
    tt_log_set_ident("master");

    tt_master_block_signals();
    sigset_t set;
    sigprocmask(SIG_BLOCK, NULL, &set);
    tt_m.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (tt_m.sigfd < 0) {
        snprintf(tt_m.failure, sizeof(tt_m.failure), "signalfd: %s", strerror(errno));
        report(0, tt_m.failure);
        master_cleanup();
        return 2;
    }
    spawn_generation(cf, tt_m.gen);     /* a failure is in tt_m.failure */

    for (;;) {
        reap();
        run_timers();
        advance();
        if (tt_m.stopping && live_kids() == 0)
            break;

        struct pollfd *pfd = calloc(tt_m.nkids + 1, sizeof(*pfd));
        tt_child **who = calloc(tt_m.nkids + 1, sizeof(*who));
        nfds_t n = 0;
        if (pfd == NULL || who == NULL) {
            free(pfd);
            free(who);
            struct timespec ts = { 0, 100000000 };
            nanosleep(&ts, NULL);
            continue;
        }
        pfd[n].fd = tt_m.sigfd;
        pfd[n++].events = POLLIN;
        for (size_t i = 0; i < tt_m.nkids; i++) {
            if (tt_m.kids[i].ready_fd >= 0) {
                who[n] = &tt_m.kids[i];
                pfd[n].fd = tt_m.kids[i].ready_fd;
                pfd[n++].events = POLLIN;
            }
        }
        int rc = poll(pfd, n, poll_timeout());
        if (rc > 0) {
            for (nfds_t i = 1; i < n; i++) {
                if (pfd[i].revents)
                    read_ready(who[i]);
            }
            if (pfd[0].revents)
                read_signals();
        }
        free(pfd);
        free(who);
    }

    int code = tt_m.exit_code;
    if (code == 0)
        tt_log(TT_LOG_INFO, "tutti stopped");
    master_cleanup();
    return code;
}
