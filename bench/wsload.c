/* wsload — a WebSocket echo load generator for bench/run (scenario ws).
 *
 *   wsload HOST PORT PATH CONNECTIONS SECONDS [SIZE]
 *
 * Opens CONNECTIONS WebSocket sessions (no extension offered), then on each
 * keeps one masked text message of SIZE bytes (default 32) in flight: send,
 * wait for the echo, check it byte for byte, send the next. Every message is
 * different (it carries its session and sequence number), so a stale or
 * misrouted echo cannot pass. Prints
 *   msgs=N seconds=S rate=R p50_ms=X p99_ms=Y cpu=C%
 * (rate: round trips per second; p50/p99: round-trip times; cpu: the CPU
 * time wsload itself used over the run, near 100% meaning that the client,
 * not the server, set the rate) and fails loudly
 * (exit 1, a message on stderr) on anything but a 101 with the right
 * Sec-WebSocket-Accept, a wrong echo (other bytes, opcode, a masked or
 * fragmented frame), a close frame or a closed connection: a fast wrong
 * answer must never count. The server's pings are answered with pongs.
 * One thread, plain sockets and epoll, no libraries: a Python client tops
 * out near 27k round trips/s, this one is not the ceiling.
 *
 * Build: gcc -O2 -o wsload wsload.c */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_US 1000000          /* latency histogram: 1 us buckets up to 1 s */
#define MAX_SIZE 65535

/* RFC 6455 1.3's example: this key must be answered with that accept */
#define WS_KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

typedef struct {
    int      fd;
    int      id;
    uint64_t seq;                   /* messages sent on this session */
    uint8_t  want[MAX_SIZE];        /* the message in flight */
    uint8_t  in[MAX_SIZE + 16];
    size_t   have;
    uint64_t sent_at;
    int      closing;   /* 0 running, 1 last echo awaited, 2 close sent, 3 closed */
} conn;

static uint32_t hist[MAX_US + 1];
static size_t   size = 32;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void die(const char *what)
{
    fprintf(stderr, "wsload: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
    exit(1);
}

static void fail(const conn *c, const char *what)
{
    fprintf(stderr, "wsload: session %d, message %llu: %s\n", c->id,
            (unsigned long long)c->seq, what);
    exit(1);
}

static void write_all(int fd, const uint8_t *p, size_t len, const char *what)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die(what);
        p += w;
        len -= (size_t)w;
    }
}

/* the value of header NAME in the answer HEAD (NUL-terminated), trimmed */
static int header_is(const char *head, const char *name, const char *want)
{
    size_t nlen = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l != NULL; l = strstr(l, "\r\n")) {
        l += 2;
        if (strncasecmp(l, name, nlen) != 0 || l[nlen] != ':')
            continue;
        const char *v = l + nlen + 1, *e = strstr(v, "\r\n");
        while (*v == ' ' || *v == '\t')
            v++;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        return (size_t)(e - v) == strlen(want) && strncasecmp(v, want, (size_t)(e - v)) == 0;
    }
    return 0;
}

static int open_session(const char *host, int port, const char *path, int id)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        errno = 0;
        die("HOST must be an IPv4 address");
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = { .tv_sec = 10 };       /* a server that never answers */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n", path, host, port);
    write_all(fd, (const uint8_t *)req, (size_t)n, "sending the handshake");
    char head[8192];
    size_t got = 0;
    for (;;) {
        if (got == sizeof(head) - 1) {
            errno = 0;
            die("the handshake answer is too long");
        }
        ssize_t r = read(fd, head + got, 1);    /* byte by byte: no frame is read early */
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            head[got] = '\0';
            fprintf(stderr, "wsload: session %d: no 101 (%s)%s%.*s\n", id,
                    r == 0 ? "connection closed" : strerror(errno),
                    got ? ", got: " : "", (int)got, head);
            exit(1);
        }
        got += (size_t)r;
        if (got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    head[got] = '\0';
    const char *eol = strstr(head, "\r\n");
    if (strncmp(head, "HTTP/1.1 101 ", 13) != 0 && strncmp(head, "HTTP/1.1 101\r", 13) != 0) {
        fprintf(stderr, "wsload: session %d: no 101, got: %.*s\n", id, (int)(eol - head), head);
        exit(1);
    }
    if (!header_is(head, "Upgrade", "websocket") ||
        !header_is(head, "Sec-WebSocket-Accept", WS_ACCEPT)) {
        fprintf(stderr, "wsload: session %d: a 101 without Upgrade: websocket and "
                "Sec-WebSocket-Accept: " WS_ACCEPT ":\n%s", id, head);
        exit(1);
    }
    if (strcasestr(head, "\r\nSec-WebSocket-Extensions:") != NULL) {
        fprintf(stderr, "wsload: session %d: an extension none was offered:\n%s", id, head);
        exit(1);
    }
    tv.tv_sec = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* a masked frame of OPCODE carrying P[0..len) (client frames must be masked) */
static void send_frame(int fd, uint8_t opcode, const uint8_t *p, size_t len, uint32_t mask)
{
    uint8_t frame[MAX_SIZE + 14];
    size_t h = 0;
    frame[h++] = 0x80 | opcode;
    if (len < 126) {
        frame[h++] = 0x80 | (uint8_t)len;
    } else {
        frame[h++] = 0x80 | 126;
        frame[h++] = (uint8_t)(len >> 8);
        frame[h++] = (uint8_t)len;
    }
    uint8_t key[4] = { (uint8_t)(mask >> 24), (uint8_t)(mask >> 16), (uint8_t)(mask >> 8), (uint8_t)mask };
    memcpy(frame + h, key, 4);
    h += 4;
    for (size_t i = 0; i < len; i++)
        frame[h + i] = p[i] ^ key[i & 3];
    write_all(fd, frame, h + len, "sending a frame");
}

/* the next message: printable text naming the session and its number */
static void send_message(conn *c)
{
    char tag[48];
    int n = snprintf(tag, sizeof(tag), "s%d m%llu ", c->id, (unsigned long long)++c->seq);
    for (size_t i = 0; i < size; i++)
        c->want[i] = i < (size_t)n ? (uint8_t)tag[i] : (uint8_t)('a' + (i + c->seq) % 26);
    c->sent_at = now_us();
    send_frame(c->fd, 0x1, c->want, size, (uint32_t)(c->seq * 2654435761u) ^ (uint32_t)c->id);
}

/* 1 when the echo of the message in flight was in c->in (checked and
 * removed), 2 on the server's close frame once ours was sent, 0 when more
 * bytes are needed; answers pings on the way */
static int take_echo(conn *c)
{
    for (;;) {
        if (c->have < 2)
            return 0;
        uint8_t b0 = c->in[0], b1 = c->in[1];
        size_t h = 2, n = b1 & 0x7f;
        if (b1 & 0x80)
            fail(c, "a masked frame from the server");
        if (n == 126) {
            if (c->have < 4)
                return 0;
            n = (size_t)c->in[2] << 8 | c->in[3];
            h = 4;
        } else if (n == 127) {
            fail(c, "a frame longer than any message sent");
        }
        if (c->have < h + n)
            return 0;
        uint8_t op = b0 & 0x0f;
        if (!(b0 & 0x80) || (b0 & 0x70))
            fail(c, "a fragmented frame or one with RSV bits");
        if (op == 0x9) {                    /* ping: pong with its data */
            send_frame(c->fd, 0xA, c->in + h, n, 0x5a5a5a5a);
        } else if (op == 0x8 && c->closing == 2) {
            int code = n >= 2 ? c->in[h] << 8 | c->in[h + 1] : 1005;
            if (code != 1000 && code != 1005) {
                char why[80];
                snprintf(why, sizeof(why), "the server answered our close 1000 with %d", code);
                fail(c, why);
            }
            return 2;
        } else if (op == 0x8) {
            char why[160];
            snprintf(why, sizeof(why), "the server closed the session (code %d)",
                     n >= 2 ? c->in[h] << 8 | c->in[h + 1] : -1);
            fail(c, why);
        } else if (op != 0xA) {             /* a pong is ignored */
            if (op != 0x1)
                fail(c, "an echo that is not a text frame");
            if (n != size || memcmp(c->in + h, c->want, size) != 0) {
                fprintf(stderr, "wsload: session %d, message %llu: a wrong echo: sent \"%.*s\", got \"%.*s\"\n",
                        c->id, (unsigned long long)c->seq, (int)size, (const char *)c->want,
                        (int)(n < 200 ? n : 200), (const char *)c->in + h);
                exit(1);
            }
            /* what follows stays for the next call: a ping passes, a
             * second text frame fails as the next message's wrong echo */
            memmove(c->in, c->in + h + n, c->have - h - n);
            c->have -= h + n;
            return 1;
        }
        memmove(c->in, c->in + h + n, c->have - h - n);
        c->have -= h + n;
    }
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
    errno = 0;
    if (nconn < 1 || seconds <= 0 || size < 24 || size > MAX_SIZE)
        die("bad arguments (CONNECTIONS >= 1, SECONDS > 0, 24 <= SIZE <= 65535)");

    conn *cs = calloc((size_t)nconn, sizeof(*cs));
    int ep = epoll_create1(0);
    if (cs == NULL || ep < 0)
        die("setting up");
    for (int i = 0; i < nconn; i++) {
        cs[i].id = i;
        cs[i].fd = open_session(argv[1], atoi(argv[2]), argv[3], i);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &cs[i] };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) != 0)
            die("epoll_ctl");
    }
    for (int i = 0; i < nconn; i++)
        send_message(&cs[i]);

    double cpu0 = cpu_seconds();
    uint64_t start = now_us(), end = start + (uint64_t)(seconds * 1e6), count = 0;
    uint64_t last_answer = start;
    struct epoll_event evs[256];
    for (uint64_t t = start; t < end; t = now_us()) {
        int n = epoll_wait(ep, evs, 256, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        if (n <= 0 && now_us() - last_answer > 5000000) {
            errno = 0;
            die("no echo for 5 seconds");
        }
        for (int k = 0; k < n; k++) {
            conn *c = evs[k].data.ptr;
            ssize_t r = read(c->fd, c->in + c->have, sizeof(c->in) - c->have);
            if (r == 0)
                fail(c, "the server closed the connection");
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    continue;
                die("read");
            }
            c->have += (size_t)r;
            if (take_echo(c)) {
                uint64_t now = now_us(), us = now - c->sent_at;
                hist[us > MAX_US ? MAX_US : us]++;
                count++;
                last_answer = now;
                send_message(c);
            }
        }
    }
    uint64_t stop = now_us();
    double took = (double)(stop - start) / 1e6, cpu = cpu_seconds() - cpu0;
    for (int i = 0; i < nconn; i++)     /* a session left behind is no load */
        if (stop - cs[i].sent_at > 1000000)
            fail(&cs[i], "no echo for over a second at the end of the run");

    /* A clean end, not counted: each session takes the echo in flight, then
     * sends a close (1000) and waits for the server's, so that neither server
     * logs (or pays for) 64 connections dropped in mid-session. */
    int open = nconn;
    for (int i = 0; i < nconn; i++)
        cs[i].closing = 1;
    uint64_t deadline = now_us() + 5000000;
    while (open > 0) {
        if (now_us() > deadline)
            for (int i = 0; i < nconn; i++)
                if (cs[i].closing != 3)
                    fail(&cs[i], "no close handshake within 5 seconds of the end");
        int n = epoll_wait(ep, evs, 256, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int k = 0; k < n; k++) {
            conn *c = evs[k].data.ptr;
            ssize_t r = read(c->fd, c->in + c->have, sizeof(c->in) - c->have);
            if (r == 0)
                fail(c, "the server closed the connection without a close frame");
            if (r < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    continue;
                die("read");
            }
            c->have += (size_t)r;
            for (int rc; (rc = take_echo(c)) != 0;) {
                if (rc == 1 && c->closing == 1) {
                    static const uint8_t normal[2] = { 0x03, 0xe8 };     /* 1000 */
                    send_frame(c->fd, 0x8, normal, 2, 0x1234abcd);
                    c->closing = 2;
                } else if (rc == 1) {
                    fail(c, "an echo after our close frame");
                } else {
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    close(c->fd);
                    c->closing = 3;
                    open--;
                    break;
                }
            }
        }
    }

    uint64_t seen = 0, p50 = 0, p99 = 0;
    for (uint64_t us = 0; us <= MAX_US && count > 0; us++) {
        seen += hist[us];
        if (!p50 && seen * 2 >= count)
            p50 = us ? us : 1;
        if (!p99 && seen * 100 >= count * 99) {
            p99 = us ? us : 1;
            break;
        }
    }
    printf("msgs=%llu seconds=%.2f rate=%.0f p50_ms=%.3f p99_ms=%.3f cpu=%.0f%%\n",
           (unsigned long long)count, took, (double)count / took, p50 / 1000.0, p99 / 1000.0,
           100.0 * cpu / took);
    if (count == 0) {
        fprintf(stderr, "wsload: not one echo\n");
        return 1;
    }
    return 0;
}
