/* wsload — a WebSocket echo load generator for bench/run (scenario ws).
 *
 *   wsload HOST PORT PATH CONNECTIONS SECONDS [SIZE]
 *
 * Opens CONNECTIONS WebSocket sessions (no compression offered), then on
 * each keeps one masked text message of SIZE bytes (default 32) in flight:
 * send, wait for the echo, check it byte for byte, send the next. Prints
 *   msgs=N seconds=S rate=R p50_ms=X p99_ms=Y
 * and fails loudly (exit 1) on a refused handshake, a wrong echo or a
 * closed connection: a fast wrong answer must never count. One thread and
 * epoll, so that a Python client's ~27k round trips/s is not the ceiling. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_US 1000000          /* latency histogram: 1 us buckets up to 1 s */

typedef struct {
    int      fd;
    uint8_t  in[65536 + 16];
    size_t   have;
    uint64_t sent_at;
} conn;

static uint32_t hist[MAX_US + 1];
static uint8_t  payload[65536];
static size_t   size = 32;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void die(const char *what)
{
    fprintf(stderr, "wsload: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
    exit(1);
}

static int open_session(const char *host, int port, const char *path)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        die("HOST must be an IPv4 address");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n", path, host, port);
    if (write(fd, req, (size_t)n) != n)
        die("sending the handshake");
    char head[4096];
    size_t got = 0;
    while (got < sizeof(head) - 1) {
        ssize_t r = read(fd, head + got, 1);    /* byte by byte: no frame is read early */
        if (r <= 0)
            die("reading the handshake answer");
        got += (size_t)r;
        if (got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    head[got] = '\0';
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
        errno = 0;
        fprintf(stderr, "wsload: no 101: %.*s\n", (int)(strchr(head, '\r') ? strchr(head, '\r') - head : 40), head);
        exit(1);
    }
    return fd;
}

static void send_message(conn *c)
{
    uint8_t frame[65536 + 14];
    size_t h = 0;
    frame[h++] = 0x81;
    if (size < 126) {
        frame[h++] = 0x80 | (uint8_t)size;
    } else {
        frame[h++] = 0x80 | 126;
        frame[h++] = (uint8_t)(size >> 8);
        frame[h++] = (uint8_t)size;
    }
    uint8_t key[4] = { 0x12, 0x34, 0x56, 0x78 };
    memcpy(frame + h, key, 4);
    h += 4;
    for (size_t i = 0; i < size; i++)
        frame[h + i] = payload[i] ^ key[i & 3];
    c->sent_at = now_us();
    size_t len = h + size, off = 0;
    while (off < len) {
        ssize_t w = write(c->fd, frame + off, len - off);
        if (w < 0 && errno == EAGAIN)
            continue;           /* 64 small messages never fill a socket */
        if (w <= 0)
            die("sending a message");
        off += (size_t)w;
    }
}

/* 1 when a whole echo is in c->in (checked, removed), 0 when more is needed */
static int take_echo(conn *c)
{
    if (c->have < 2)
        return 0;
    size_t h = 2, n = c->in[1] & 0x7f;
    if (n == 126) {
        if (c->have < 4)
            return 0;
        n = (size_t)c->in[2] << 8 | c->in[3];
        h = 4;
    } else if (n == 127) {
        errno = 0;
        die("an echo longer than sent");
    }
    if (c->have < h + n)
        return 0;
    if ((c->in[0] & 0x0f) != 0x1 || n != size || memcmp(c->in + h, payload, size) != 0) {
        errno = 0;
        die((c->in[0] & 0x0f) == 0x8 ? "the server closed the session" : "a wrong echo");
    }
    memmove(c->in, c->in + h + n, c->have - h - n);
    c->have -= h + n;
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: wsload HOST PORT PATH CONNECTIONS SECONDS [SIZE]\n");
        return 2;
    }
    int nconn = atoi(argv[4]);
    double seconds = atof(argv[5]);
    if (argc > 6)
        size = (size_t)atoi(argv[6]);
    if (nconn < 1 || seconds <= 0 || size < 1 || size > 65535)
        die("bad arguments");
    for (size_t i = 0; i < size; i++)
        payload[i] = (uint8_t)('a' + i % 26);

    conn *cs = calloc((size_t)nconn, sizeof(*cs));
    int ep = epoll_create1(0);
    if (cs == NULL || ep < 0)
        die("setting up");
    for (int i = 0; i < nconn; i++) {
        cs[i].fd = open_session(argv[1], atoi(argv[2]), argv[3]);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &cs[i] };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) != 0)
            die("epoll_ctl");
    }
    for (int i = 0; i < nconn; i++)
        send_message(&cs[i]);

    uint64_t start = now_us(), end = start + (uint64_t)(seconds * 1e6), count = 0;
    struct epoll_event evs[256];
    while (now_us() < end) {
        int n = epoll_wait(ep, evs, 256, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int k = 0; k < n; k++) {
            conn *c = evs[k].data.ptr;
            ssize_t r = read(c->fd, c->in + c->have, sizeof(c->in) - c->have);
            if (r == 0) {
                errno = 0;
                die("the server closed a connection");
            }
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    continue;
                die("read");
            }
            c->have += (size_t)r;
            while (take_echo(c)) {
                uint64_t us = now_us() - c->sent_at;
                hist[us > MAX_US ? MAX_US : us]++;
                count++;
                send_message(c);
            }
        }
    }
    double took = (double)(now_us() - start) / 1e6;
    uint64_t seen = 0, p50 = 0, p99 = 0;
    for (uint64_t us = 0; us <= MAX_US; us++) {
        seen += hist[us];
        if (!p50 && seen * 2 >= count)
            p50 = us ? us : 1;
        if (!p99 && seen * 100 >= count * 99) {
            p99 = us ? us : 1;
            break;
        }
    }
    printf("msgs=%llu seconds=%.2f rate=%.0f p50_ms=%.3f p99_ms=%.3f\n",
           (unsigned long long)count, took, (double)count / took, p50 / 1000.0, p99 / 1000.0);
    return count > 0 ? 0 : 1;
}
