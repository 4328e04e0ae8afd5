/* An upstream connection's bytes: a socket, two events, two buffers.
 *
 * Why not a libevent bufferevent: it asks the kernel how much is readable
 * (ioctl FIONREAD) before every read, arms and disarms a write event for
 * every write, and takes a lock and a reference around each callback. An
 * upstream exchange is a write of the request and a read or two of the
 * answer, so those were a third of the proxy's system calls per request.
 * Here a write goes straight to the socket and a write event is armed only
 * when the kernel does not take everything; a read goes into space reserved
 * in the input buffer, sized from the previous reads.
 *
 * The callbacks may free the connection: nothing here touches io after one.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include "proxy.h"

#define PX_READ_MIN  (16 * 1024)
#define PX_READ_MAX  (256 * 1024)

static struct timeval tv_of(uint64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    return tv;
}

static void arm(struct event *ev, uint64_t ms)
{
    struct timeval tv = tv_of(ms);
    event_add(ev, ms ? &tv : NULL);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    px_io *io = arg;

    if (what & EV_TIMEOUT) {
        io->eventcb(io, PX_IO_READING | PX_IO_TIMEOUT, io->arg);
        return;
    }
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(io->in, (ev_ssize_t)io->rsize, &v, 1) < 1) {
        io->err = ENOMEM;
        io->eventcb(io, PX_IO_READING | PX_IO_ERROR, io->arg);
        return;
    }
    ssize_t n = recv(fd, v.iov_base, v.iov_len, 0);
    if (n > 0) {
        /* a full read says more is coming: read more at once next time */
        if ((size_t)n == v.iov_len && io->rsize < PX_READ_MAX)
            io->rsize *= 2;
        else if ((size_t)n < PX_READ_MIN / 2)
            io->rsize = PX_READ_MIN;
        v.iov_len = (size_t)n;
        evbuffer_commit_space(io->in, &v, 1);
        io->readcb(io, io->arg);
        return;
    }
    v.iov_len = 0;
    evbuffer_commit_space(io->in, &v, 1);
    if (n == 0) {
        io->eventcb(io, PX_IO_READING | PX_IO_EOF, io->arg);
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        io->err = errno;
        io->eventcb(io, PX_IO_READING | PX_IO_ERROR, io->arg);
    }
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    px_io *io = arg;

    if (what & EV_TIMEOUT) {
        io->eventcb(io, PX_IO_WRITING | PX_IO_TIMEOUT, io->arg);
        return;
    }
    if (io->connecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            io->err = err;
            io->eventcb(io, PX_IO_ERROR, io->arg);
            return;
        }
        io->connecting = 0;
        if (evbuffer_get_length(io->out) == 0) {
            event_del(&io->wev);
            io->writing = 0;
        }
        io->eventcb(io, PX_IO_CONNECTED, io->arg);
        return;
    }
    int n = evbuffer_write(io->out, fd);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        io->err = errno;
        io->eventcb(io, PX_IO_WRITING | PX_IO_ERROR, io->arg);
        return;
    }
    if (evbuffer_get_length(io->out) == 0) {
        event_del(&io->wev);
        io->writing = 0;
        if (io->writecb != NULL)
            io->writecb(io, io->arg);
    }
}

int px_io_connect(px_io *io, const struct sockaddr *sa, socklen_t len, uint64_t connect_ms)
{
    struct event_base *base = px_api->event_base();

    memset(io, 0, sizeof(*io));
    io->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (io->fd < 0)
        return -1;
    if (sa->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(io->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    io->in = evbuffer_new();
    io->out = evbuffer_new();
    if (io->in == NULL || io->out == NULL) {
        px_io_close(io);
        errno = ENOMEM;
        return -1;
    }
    io->rsize = PX_READ_MIN;
    event_assign(&io->rev, base, io->fd, EV_READ | EV_PERSIST, on_read, io);
    event_assign(&io->wev, base, io->fd, EV_WRITE | EV_PERSIST, on_write, io);
    io->assigned = 1;
    if (connect(io->fd, sa, len) != 0 && errno != EINPROGRESS) {
        int e = errno;
        px_io_close(io);
        errno = e;
        return -1;
    }
    /* done or under way: the write event says which (SO_ERROR) */
    io->connecting = 1;
    io->writing = 1;
    arm(&io->wev, connect_ms);
    return 0;
}

void px_io_close(px_io *io)
{
    if (io->assigned) {
        event_del(&io->rev);
        event_del(&io->wev);
        io->assigned = 0;
    }
    if (io->in != NULL)
        evbuffer_free(io->in);
    if (io->out != NULL)
        evbuffer_free(io->out);
    io->in = io->out = NULL;
    if (io->fd >= 0)
        close(io->fd);
    io->fd = -1;
}

void px_io_setcb(px_io *io, px_io_cb readcb, px_io_cb writecb, px_io_event_cb eventcb,
                 void *arg)
{
    io->readcb = readcb;
    io->writecb = writecb;
    io->eventcb = eventcb;
    io->arg = arg;
}

void px_io_read(px_io *io, int on)
{
    if (on && !io->reading) {
        io->reading = 1;
        arm(&io->rev, io->read_ms);
    } else if (!on && io->reading) {
        io->reading = 0;
        event_del(&io->rev);
    }
}

void px_io_timeouts(px_io *io, uint64_t read_ms, uint64_t write_ms)
{
    int rchange = read_ms != io->read_ms, wchange = write_ms != io->write_ms;
    io->read_ms = read_ms;
    io->write_ms = write_ms;
    if (rchange && io->reading)
        arm(&io->rev, read_ms);
    if (wchange && io->writing && !io->connecting)
        arm(&io->wev, write_ms);
}

/* Write what the output holds, straight away; what the kernel does not
 * take waits for the write event. Errors show there too, so a caller is
 * never called back from inside this. */
void px_io_flush(px_io *io)
{
    if (io->connecting || io->writing || evbuffer_get_length(io->out) == 0)
        return;
    evbuffer_write(io->out, io->fd);
    if (evbuffer_get_length(io->out) > 0) {
        io->writing = 1;
        arm(&io->wev, io->write_ms);
    }
}
