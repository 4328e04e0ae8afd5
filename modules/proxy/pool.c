/* Upstream connections: made, kept idle between requests, checked, reused.
 *
 * Each route's group keeps at most `keepalive` idle connections per worker,
 * oldest first on a list. While idle, a connection is read: the upstream
 * closing it (or sending anything, which it must not) drops it at once, so
 * the pool rarely hands out a dead one. The window that remains (the close
 * is in flight when the request goes out) is closed by a last look with
 * MSG_PEEK before reusing a connection idle for a second or more, and by
 * the relay's retry on a fresh connection.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include "proxy.h"

static px_group *used_groups;       /* this worker's groups with connections */

static void idle_unlink(px_conn *c)
{
    px_group *g = c->group;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        g->idle_head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        g->idle_tail = c->prev;
    c->prev = c->next = NULL;
    g->nidle--;
}

void px_conn_close(px_conn *c)
{
    if (c == NULL)
        return;
    if (c->prev != NULL || c->next != NULL || c->group->idle_head == c)
        idle_unlink(c);
    px_io_close(&c->io);
    free(c);
}

/* An idle connection spoke: the upstream closed it, timed it out on our
 * side, or sent bytes nobody asked for. Either way it is done. */
static void idle_read(px_io *io, void *arg)
{
    (void)io;
    px_conn_close(arg);
}

static void idle_event(px_io *io, short what, void *arg)
{
    (void)io;
    (void)what;
    px_conn_close(arg);
}

/* Still open, with nothing unread? A closed peer reads 0, a reset one an
 * error; EAGAIN is the good answer. */
static int alive(px_conn *c)
{
    char b;
    ssize_t n = recv(c->io.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static void group_used(px_group *g)
{
    if (g->used)
        return;
    g->used = 1;
    g->next_used = used_groups;
    used_groups = g;
}

px_conn *px_conn_get(px_group *g, px_peer *p, uint64_t connect_ms, int allow_idle,
                     int *fresh)
{
    group_used(g);
    /* the most recently used first: it is the likeliest to be warm */
    for (px_conn *c = allow_idle ? g->idle_tail : NULL; c != NULL;) {
        px_conn *prev = c->prev;
        if (c->peer == p) {
            idle_unlink(c);
            /* Under load a connection is idle for microseconds, and a close
             * in that time is caught by the relay's retry; a syscall per
             * request to look is worth it only after a real pause. EV_READ
             * stays on: the relay takes the callbacks over at once. */
            if ((px_now_ms() - c->idle_since < 1000 || alive(c)) &&
                evbuffer_get_length(c->io.in) == 0) {
                c->reused = 1;
                *fresh = 0;
                return c;
            }
            px_conn_close(c);
        }
        c = prev;
    }

    px_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->peer = p;
    c->group = g;
    if (px_io_connect(&c->io, &p->addr.sa, p->addr_len, connect_ms) != 0) {
        int e = errno;
        free(c);
        errno = e ? e : ECONNREFUSED;
        return NULL;
    }
    *fresh = 1;
    return c;
}

void px_conn_release(px_conn *c, int reusable)
{
    px_group *g = c->group;

    if (!reusable || g->keepalive == 0 || c->requests >= g->keepalive_requests ||
        evbuffer_get_length(c->io.in) != 0 || evbuffer_get_length(c->io.out) != 0) {
        px_conn_close(c);
        return;
    }
    if (g->nidle >= g->keepalive)
        px_conn_close(g->idle_head);            /* the oldest goes */
    px_io_setcb(&c->io, idle_read, NULL, idle_event, c);
    px_io_timeouts(&c->io, g->keepalive_ms, 0);
    px_io_read(&c->io, 1);
    c->prev = g->idle_tail;
    c->next = NULL;
    if (g->idle_tail != NULL)
        g->idle_tail->next = c;
    else
        g->idle_head = c;
    g->idle_tail = c;
    g->nidle++;
    c->idle_since = px_now_ms();
}

void px_group_close_idle(px_group *g)
{
    while (g->idle_head != NULL)
        px_conn_close(g->idle_head);
}

void px_groups_close_all(void)
{
    for (px_group *g = used_groups; g != NULL; g = g->next_used)
        px_group_close_idle(g);
    used_groups = NULL;
}
