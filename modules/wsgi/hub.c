/* The meeting point of the I/O thread and the Python threads.
 *
 * One lock per worker guards the queues and the jobs' shared fields. The
 * I/O thread never takes the GIL here, and nobody waits for the GIL while
 * holding the lock, so the two can never deadlock.
 *
 *   I/O -> Python   a job into its route's pool queue; an idle thread is
 *                   woken only when there is one.
 *   Python -> I/O   messages (head, data, file, end, ...) onto one list;
 *                   the eventfd is written only when the list was empty
 *                   and unseen, so one wake-up carries every message the
 *                   threads produced meanwhile.
 *
 * With threads: 0 the "messages" are calls into the core, made at once. */
#include "wsgi.h"      /* first: Python.h before the system headers */
#include <sched.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>

#define api wsgi_api

/* message flags: WSGI_OUT_END, _ABORT, _FAIL, and these */
#define M_RESUME  0x100         /* the app wants (more of) the body */
#define M_RELEASE 0x200         /* Python is done with the job */

typedef struct wsgi_msg {
    struct wsgi_msg *next;
    wsgi_job        *job;
    int              flags;
    int              has_head;
    wsgi_head        head;      /* its headers and reason live in mem */
    int              fd;        /* a file after the data, or -1 */
    int64_t          off, flen;
    size_t           len;
    char            *data;
    char             mem[];     /* headers, their strings, then data */
} wsgi_msg;

/* One Python thread of a pool, as the stall check sees it. */
typedef struct {
    wsgi_pool      *pool;
    pid_t           tid;        /* for /proc/self/task/TID/stat */
    int             busy;       /* inside the app (hub lock) */
} wsgi_slot;

struct wsgi_pool {
    wsgi_pool      *next;
    wsgi_route     *route;
    pthread_cond_t  cond;
    wsgi_job       *head, *tail;
    int             idle;       /* threads waiting for a job */
    int             tokens;     /* wake-ups given, not yet taken */
    int             starting;   /* woken threads not yet holding the GIL */
    int             running;    /* threads inside the app */
    unsigned long   pops;       /* jobs taken, ever */
    unsigned long   seen_pops;  /* pops at the last stall check (I/O thread) */
    int             nthreads;
    pthread_t      *threads;
    wsgi_slot      *slots;      /* one per thread */
    int             stopping;
};

static struct {
    pthread_mutex_t lock;
    wsgi_msg       *head, *tail;
    int             notified;   /* the eventfd holds a wake-up not yet seen */
    int             efd;
    struct event   *ev;
    struct event   *stall;      /* the stall check's timer */
    int             stall_armed;
    wsgi_pool      *pools;
} hub = { .lock = PTHREAD_MUTEX_INITIALIZER, .efd = -1 };

#define WSGI_STALL_US 1000       /* the stall check's tick */

static const char fail_body[] = "500 Internal Server Error\n";

void wsgi_hub_lock(void)
{
    pthread_mutex_lock(&hub.lock);
}

void wsgi_hub_unlock(void)
{
    pthread_mutex_unlock(&hub.lock);
}

void wsgi_job_free(wsgi_job *j)
{
    wsgi_chunk *c = j->body_head;
    while (c != NULL) {
        wsgi_chunk *next = c->next;
        free(c);
        c = next;
    }
    if (j->threaded)
        pthread_cond_destroy(&j->cond);
    if (j->spool_fd >= 0)
        close(j->spool_fd);
    free(j->copy);
    free(j);
}

/* ---------------------------------------------------------------- the I/O thread's side */

/* One piece of the response into the core: the head, the bytes, a file
 * (fd is the core's, or closed, whatever happens), then the end, a cut or
 * a 500. The same for a message (threads) and for the app's own call
 * (threads: 0). Returns 0, or -2 when the core refused (the request is
 * going away). */
static int to_core(tt_request *r, const wsgi_head *h, const struct iovec *iov, int niov,
                   int fd, int64_t off, int64_t flen, int flags)
{
    int rc = 0;

    if (flags & WSGI_OUT_FAIL) {
        rc = api->respond(r, 500, "text/plain; charset=utf-8", fail_body,
                          sizeof(fail_body) - 1);
        goto done;
    }
    if (h != NULL) {
        /* the app's reason phrase; an unprintable one leaves the standard */
        if (h->reason_len > 0)
            api->reason(r, h->reason, h->reason_len);
        if ((rc = api->start(r, h->status, h->headers, h->n, h->length)) != 0)
            goto done;
    }
    for (int i = 0; i < niov; i++)
        if (iov[i].iov_len > 0 && (rc = api->write(r, iov[i].iov_base, iov[i].iov_len)) != 0)
            goto done;
    if (fd >= 0) {
        rc = api->sendfile(r, fd, off, flen, 1);
        fd = -1;
        if (rc != 0)
            goto done;
    }
    if (flags & WSGI_OUT_END)
        rc = api->finish(r);
    else if (flags & WSGI_OUT_ABORT)
        api->abort(r);          /* job_closed runs when the output is out */
done:
    if (fd >= 0)
        close(fd);
    return rc == 0 ? 0 : -2;
}

static void ack(wsgi_job *j, size_t n)
{
    pthread_mutex_lock(&hub.lock);
    j->unacked -= n < j->unacked ? n : j->unacked;
    if (j->waiting)
        pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&hub.lock);
}

/* The client took what was queued: the thread may produce more. */
static void drained(tt_request *r, void *arg)
{
    wsgi_job *j = arg;
    size_t n = j->owed;
    j->owed = 0;
    ack(j, n);
}

static void apply(wsgi_msg *m)
{
    wsgi_job *j = m->job;

    if (j->r != NULL) {
        struct iovec v = { m->data, m->len };
        to_core(j->r, m->has_head ? &m->head : NULL, &v, 1, m->fd, m->off, m->flen, m->flags);
        m->fd = -1;
        if ((m->flags & M_RESUME) && j->r != NULL)
            wsgi_body_resume(j);
    }
    if (m->fd >= 0)
        close(m->fd);

    if (!(m->flags & M_RELEASE)) {
        if (m->len > 0) {
            /* backpressure: the bytes count until the client has them */
            if (j->r != NULL && api->pending(j->r) > WSGI_OUT_HIGH) {
                j->owed += m->len;
                api->on_drain(j->r, drained, j);
            } else {
                ack(j, m->len);
            }
        }
        return;
    }
    j->py_done = 1;
    if (j->io_done)
        wsgi_job_free(j);
}

static void hub_wake(evutil_socket_t fd, short what, void *arg)
{
    uint64_t v;
    if (read(hub.efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        api->log(TT_LOG_WARN, "wsgi: reading the wake-up eventfd: %m");

    pthread_mutex_lock(&hub.lock);
    wsgi_msg *m = hub.head;
    hub.head = hub.tail = NULL;
    hub.notified = 0;
    pthread_mutex_unlock(&hub.lock);

    while (m != NULL) {
        wsgi_msg *next = m->next;
        apply(m);
        free(m);
        m = next;
    }
}

/* ---------------------------------------------------------------- the Python threads' side */

static void push(wsgi_msg *m)
{
    m->next = NULL;
    pthread_mutex_lock(&hub.lock);
    if (hub.tail)
        hub.tail->next = m;
    else
        hub.head = m;
    hub.tail = m;
    int wake = !hub.notified;
    hub.notified = 1;
    pthread_mutex_unlock(&hub.lock);
    if (wake) {
        uint64_t one = 1;
        while (write(hub.efd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
    }
}

static wsgi_msg *msg_new(wsgi_job *j, const wsgi_head *h, const struct iovec *iov, int niov)
{
    size_t room = 0, data = 0;
    if (h != NULL) {
        room = h->n * sizeof(tt_header) + h->reason_len;
        for (size_t i = 0; i < h->n; i++)
            room += h->headers[i].name_len + h->headers[i].value_len;
    }
    for (int i = 0; i < niov; i++)
        data += iov[i].iov_len;

    wsgi_msg *m = malloc(sizeof(*m) + room + data);
    if (m == NULL)
        return NULL;
    memset(m, 0, sizeof(*m));
    m->job = j;
    m->fd = -1;
    char *p = m->mem;
    if (h != NULL) {
        tt_header *hs = (tt_header *)(void *)p;
        p += h->n * sizeof(tt_header);
        for (size_t i = 0; i < h->n; i++) {
            hs[i] = h->headers[i];
            memcpy(p, h->headers[i].name, hs[i].name_len);
            hs[i].name = p;
            p += hs[i].name_len;
            memcpy(p, h->headers[i].value, hs[i].value_len);
            hs[i].value = p;
            p += hs[i].value_len;
        }
        memcpy(p, h->reason, h->reason_len);
        m->has_head = 1;
        m->head = *h;
        m->head.headers = hs;
        m->head.reason = p;
        p += h->reason_len;
    }
    m->data = p;
    for (int i = 0; i < niov; i++) {
        memcpy(p, iov[i].iov_base, iov[i].iov_len);
        p += iov[i].iov_len;
    }
    m->len = data;
    return m;
}

/* Wait, GIL released, until the client has taken enough of what this
 * request queued. Returns -2 when it left. */
static int wait_room(wsgi_job *j)
{
    pthread_mutex_lock(&hub.lock);
    int full = j->unacked > WSGI_OUT_HIGH && !j->gone;
    int gone = j->gone;
    pthread_mutex_unlock(&hub.lock);
    if (full) {
        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(&hub.lock);
        while (j->unacked > WSGI_OUT_HIGH && !j->gone) {
            j->waiting = 1;
            pthread_cond_wait(&j->cond, &hub.lock);
            j->waiting = 0;
        }
        gone = j->gone;
        pthread_mutex_unlock(&hub.lock);
        Py_END_ALLOW_THREADS
    }
    return gone ? -2 : 0;
}

/* threads: 0, for write(), which cannot pause the app: block until the
 * client has taken most of it (GIL released), or -2 when it will not. */
int wsgi_out_wait(wsgi_job *j)
{
    int rc;
    if (j->r == NULL)
        return -2;
    Py_BEGIN_ALLOW_THREADS
    rc = api->wait_drain(j->r, WSGI_OUT_HIGH / 2, 0);
    Py_END_ALLOW_THREADS
    return rc == 0 ? 0 : -2;
}

/* A piece of the response on its way: into the core at once (threads: 0;
 * 1 when over the high-water mark), or as a message to the I/O thread,
 * waiting for room in the client's output. -2 when the client is gone.
 * The last piece (end, cut, 500) gives the job back to the I/O thread. */
static int deliver(wsgi_job *j, const wsgi_head *h, const struct iovec *iov, int niov,
                   int fd, int64_t off, int64_t flen, int flags)
{
    int last = flags & (WSGI_OUT_END | WSGI_OUT_ABORT | WSGI_OUT_FAIL);

    if (!j->threaded) {
        if (j->r == NULL) {
            if (fd >= 0)
                close(fd);
            return -2;
        }
        int rc = to_core(j->r, h, iov, niov, fd, off, flen, flags);
        if (rc != 0 || last)
            return rc;
        return api->pending(j->r) > WSGI_OUT_HIGH ? 1 : 0;
    }

    if (!last) {
        pthread_mutex_lock(&hub.lock);
        int gone = j->gone;
        pthread_mutex_unlock(&hub.lock);
        if (gone) {
            if (fd >= 0)
                close(fd);
            return -2;
        }
    }
    wsgi_msg *m = msg_new(j, h, iov, niov);
    if (m == NULL) {
        if (fd >= 0)
            close(fd);
        if (!last)
            return -2;
        /* the job must go back: wait for a bare release to fit */
        m = calloc(1, sizeof(*m));
        while (m == NULL) {
            struct timespec ts = { 0, 10 * 1000 * 1000 };
            nanosleep(&ts, NULL);
            m = calloc(1, sizeof(*m));
        }
        m->job = j;
        m->fd = -1;
        flags = WSGI_OUT_ABORT;
    } else {
        m->fd = fd;
        m->off = off;
        m->flen = flen;
    }
    m->flags = flags | (last ? M_RELEASE : 0);
    size_t len = m->len;
    if (!last && len > 0) {
        pthread_mutex_lock(&hub.lock);
        j->unacked += len;
        pthread_mutex_unlock(&hub.lock);
    }
    push(m);
    if (last || len == 0)
        return 0;
    return wait_room(j);
}

int wsgi_out(wsgi_job *j, const wsgi_head *h, const struct iovec *iov, int niov, int flags)
{
    return deliver(j, h, iov, niov, -1, 0, 0, flags);
}

int wsgi_out_file(wsgi_job *j, const wsgi_head *h, int fd, int64_t off, int64_t len)
{
    /* a file in the output is no memory: never "over the high-water mark" */
    int rc = deliver(j, h, NULL, 0, fd, off, len, 0);
    return rc == 1 ? 0 : rc;
}

/* ---------------------------------------------------------------- wsgi.input's feed */

static void ask_body(wsgi_job *j)
{
    wsgi_msg *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return;                 /* the body timeout ends it */
    m->job = j;
    m->fd = -1;
    m->flags = M_RESUME;
    push(m);
}

/* threads: 0, a body in a file: the next bytes of it */
static size_t spool_take(wsgi_job *j, char *buf, size_t n, int line, int *err)
{
    uint64_t left = j->spool_size - j->spool_read;
    if (n > left)
        n = (size_t)left;
    ssize_t got = n > 0 ? pread(j->spool_fd, buf, n, (off_t)j->spool_read) : 0;
    if (got < 0) {
        *err = 1;
        return 0;
    }
    if (line) {
        const char *nl = memchr(buf, '\n', (size_t)got);
        if (nl != NULL)
            got = nl - buf + 1;
    }
    j->spool_read += (uint64_t)got;
    return (size_t)got;
}

/* Called without the GIL. Blocks until at least one byte or the end. */
size_t wsgi_body_take(wsgi_job *j, char *buf, size_t n, int line, int *err)
{
    size_t got = 0;
    int ask = 0;

    if (j->spool_fd >= 0)
        return spool_take(j, buf, n, line, err);

    pthread_mutex_lock(&hub.lock);
    for (;;) {
        if (j->body_head != NULL || j->body_done || j->gone)
            break;
        if (!j->body_asked && (j->body_paused || !j->body_reading)) {
            j->body_asked = 1;
            pthread_mutex_unlock(&hub.lock);
            ask_body(j);
            pthread_mutex_lock(&hub.lock);
            continue;
        }
        j->waiting = 1;
        pthread_cond_wait(&j->cond, &hub.lock);
        j->waiting = 0;
    }
    while (got < n && j->body_head != NULL) {
        wsgi_chunk *c = j->body_head;
        size_t avail = c->len - c->off, k = n - got < avail ? n - got : avail;
        const char *src = c->data + c->off;
        if (line) {
            const char *nl = memchr(src, '\n', k);
            if (nl != NULL)
                k = (size_t)(nl - src) + 1;
        }
        memcpy(buf + got, src, k);
        got += k;
        c->off += k;
        j->body_bytes -= k;
        if (c->off == c->len) {
            j->body_head = c->next;
            if (j->body_head == NULL)
                j->body_tail = NULL;
            free(c);
        }
        if (line && buf[got - 1] == '\n')
            break;
    }
    if (j->body_paused && !j->body_asked && j->body_bytes < WSGI_BODY_LOW) {
        j->body_asked = 1;
        ask = 1;
    }
    if (got == 0 && (j->gone || j->body_error))
        *err = 1;
    pthread_mutex_unlock(&hub.lock);
    if (ask)
        ask_body(j);
    return got;
}

/* ---------------------------------------------------------------- the pools */

/* Give an idle thread a wake-up token, unless one is already on its way
 * to the GIL. Called with the lock held. */
static void pool_wake(wsgi_pool *p)
{
    if (p->head != NULL && p->idle > p->tokens && p->starting == 0) {
        p->tokens++;
        p->starting++;
        pthread_cond_signal(&p->cond);
    }
}

static wsgi_job *pool_next(wsgi_pool *p, wsgi_slot *slot)
{
    wsgi_job *j;
    int contender = 0;

    /* A job is taken only while holding the GIL: a thread that took one
     * and then waited for the GIL would sit on it while the running thread
     * serves later ones. */
    for (;;) {
        pthread_mutex_lock(&hub.lock);
        if (contender) {
            p->starting--;
            contender = 0;
        }
        if ((j = p->head) != NULL || p->stopping) {
            if (j != NULL) {
                if ((p->head = j->next) == NULL)
                    p->tail = NULL;
                p->pops++;
                p->running++;
                slot->busy = 1;
            }
            pthread_mutex_unlock(&hub.lock);
            return j;
        }
        pthread_mutex_unlock(&hub.lock);

        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(&hub.lock);
        for (;;) {
            if (p->stopping)
                break;
            if (p->tokens > 0) {
                p->tokens--;
                contender = 1;  /* counted in starting until it has the GIL */
                break;
            }
            p->idle++;
            pthread_cond_wait(&p->cond, &hub.lock);
            p->idle--;
        }
        pthread_mutex_unlock(&hub.lock);
        Py_END_ALLOW_THREADS
    }
}

static void *pool_thread(void *arg)
{
    wsgi_slot *slot = arg;
    wsgi_pool *p = slot->pool;
    slot->tid = (pid_t)syscall(SYS_gettid);
    /* Waking a Python thread must not preempt the I/O thread in the
     * middle of its batch (wakeup preemption), nor the reverse: as
     * SCHED_BATCH it runs when the I/O thread blocks, with all that was
     * queued (measured on hello, one core: 5-17x fewer context switches,
     * 50% more requests) */
    struct sched_param sp = { 0 };
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    PyGILState_STATE g = PyGILState_Ensure();
    wsgi_job *j;

    while ((j = pool_next(p, slot)) != NULL) {
        j->next = NULL;
        wsgi_run(j);
        if (PyErr_Occurred())           /* never leak one into the next request */
            tt_py_log_exception("wsgi app '%s'", p->route->app_spec);
        pthread_mutex_lock(&hub.lock);
        p->running--;
        slot->busy = 0;
        pthread_mutex_unlock(&hub.lock);
    }
    PyGILState_Release(g);
    return NULL;
}

/* How many threads run at once. A thread in the app holds the GIL or
 * waits on something (I/O, a lock, sleep); only in the second case does
 * another thread help. A second thread waking while the first computes
 * would force a GIL switch in mid-request after CPython's 5 ms switch
 * interval, and requests would take turns in 5 ms slices (Flask's p99 went
 * from 14 to 30 ms with 4 threads). So a job waits for the threads already
 * in the app as long as they make progress; when none has taken a job for
 * one tick while jobs wait, and none of them is computing (runnable in
 * /proc, see pool_computing), one more thread is woken, and so on each
 * tick: slow views still get every thread, a CPU-bound app runs on one at
 * a time without switches. */
/* Is this thread running or waiting only for a CPU ('R' in /proc)? A
 * thread blocked on I/O, a sleep or the GIL is 'S' or 'D'. */
static int thread_runnable(pid_t tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');      /* the name may hold spaces */
    return paren != NULL && paren[1] == ' ' && paren[2] == 'R';
}

/* Does a thread of the pool, inside the app, still compute? Then it has
 * not stalled: it only did not get the CPU this tick (on a busy core the
 * I/O thread may hold it longer than a tick), and another thread would
 * only contend for its GIL. */
static int pool_computing(wsgi_pool *p)
{
    pid_t tids[64];
    int n = 0;

    pthread_mutex_lock(&hub.lock);
    for (int i = 0; i < p->nthreads && n < 64; i++)
        if (p->slots[i].busy && p->slots[i].tid > 0)
            tids[n++] = p->slots[i].tid;
    pthread_mutex_unlock(&hub.lock);
    for (int i = 0; i < n; i++)
        if (thread_runnable(tids[i]))
            return 1;
    return 0;
}

static void stall_check(evutil_socket_t fd, short what, void *arg)
{
    int waiting = 0;

    hub.stall_armed = 0;
    for (wsgi_pool *p = hub.pools; p != NULL; p = p->next) {
        pthread_mutex_lock(&hub.lock);
        int stalled = p->head != NULL && p->pops == p->seen_pops;
        waiting |= p->head != NULL;
        p->seen_pops = p->pops;
        pthread_mutex_unlock(&hub.lock);
        if (!stalled || pool_computing(p))
            continue;
        pthread_mutex_lock(&hub.lock);
        pool_wake(p);
        pthread_mutex_unlock(&hub.lock);
    }
    if (waiting) {
        static const struct timeval tick = { 0, WSGI_STALL_US };
        hub.stall_armed = 1;
        evtimer_add(hub.stall, &tick);
    }
}

void wsgi_pool_dispatch(wsgi_pool *p, wsgi_job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&hub.lock);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    /* with a thread in a job, the stall check decides (see stall_check) */
    if (p->running == 0)
        pool_wake(p);
    pthread_mutex_unlock(&hub.lock);
    if (!hub.stall_armed) {
        static const struct timeval tick = { 0, WSGI_STALL_US };
        hub.stall_armed = 1;
        evtimer_add(hub.stall, &tick);
    }
}

int wsgi_pool_start(wsgi_route *rt)
{
    wsgi_pool *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->threads = calloc((size_t)rt->threads, sizeof(pthread_t))) == NULL ||
        (p->slots = calloc((size_t)rt->threads, sizeof(wsgi_slot))) == NULL) {
        if (p != NULL)
            free(p->threads);
        free(p);
        api->log(TT_LOG_ERROR, "wsgi: out of memory starting threads");
        return -1;
    }
    pthread_cond_init(&p->cond, NULL);
    p->route = rt;
    rt->pool = p;
    p->next = hub.pools;
    hub.pools = p;

    /* the threads leave every signal to the I/O thread's loop */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (long i = 0; i < rt->threads; i++) {
        p->slots[i].pool = p;
        int e = pthread_create(&p->threads[i], NULL, pool_thread, &p->slots[i]);
        if (e != 0) {
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            api->log(TT_LOG_ERROR, "wsgi app '%s': cannot start thread %ld of %ld: %s",
                     rt->app_spec, i + 1, rt->threads, strerror(e));
            return -1;
        }
        p->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return 0;
}

/* ---------------------------------------------------------------- start, stop */

int wsgi_hub_start(void)
{
    hub.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (hub.efd < 0) {
        api->log(TT_LOG_ERROR, "wsgi: eventfd: %m");
        return -1;
    }
    hub.ev = event_new(api->event_base(), hub.efd, EV_READ | EV_PERSIST, hub_wake, NULL);
    hub.stall = evtimer_new(api->event_base(), stall_check, NULL);
    if (hub.ev == NULL || hub.stall == NULL || event_add(hub.ev, NULL) != 0) {
        api->log(TT_LOG_ERROR, "wsgi: cannot watch the eventfd");
        return -1;
    }
    return 0;
}

/* Threads still in the app after this long are left to the process exit. */
#define WSGI_JOIN_MS 2000

void wsgi_hub_stop(void)
{
    pthread_mutex_lock(&hub.lock);
    for (wsgi_pool *p = hub.pools; p != NULL; p = p->next) {
        p->stopping = 1;
        pthread_cond_broadcast(&p->cond);
    }
    pthread_mutex_unlock(&hub.lock);

    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WSGI_JOIN_MS / 1000;
    int stuck = 0;
    for (wsgi_pool *p = hub.pools; p != NULL; p = p->next)
        for (int i = 0; i < p->nthreads; i++)
            if (pthread_timedjoin_np(p->threads[i], NULL, &until) != 0)
                stuck++;
    if (stuck > 0) {
        api->log(TT_LOG_WARN, "wsgi: %d Python thread%s still in the app at exit", stuck,
                 stuck == 1 ? "" : "s");
        tt_py_keep();
        return;
    }
    while (hub.pools != NULL) {
        wsgi_pool *p = hub.pools;
        hub.pools = p->next;
        pthread_cond_destroy(&p->cond);
        free(p->threads);
        free(p->slots);
        free(p);
    }
    if (hub.ev != NULL)
        event_free(hub.ev);
    if (hub.stall != NULL)
        event_free(hub.stall);
    hub.ev = hub.stall = NULL;
    if (hub.efd >= 0)
        close(hub.efd);
    hub.efd = -1;
}
