/* static — opening files safely, and the open-file cache.
 *
 * Every file is opened relative to the route's directory with openat2() and
 * RESOLVE_BENEATH, so the kernel itself refuses any path (a "..", an absolute
 * symlink, a relative one climbing out) that would leave the directory. On a
 * kernel without openat2 the file is opened normally and its real path is
 * checked against the directory's instead.
 *
 * The cache keeps, per worker and route, what a lookup found: an open
 * descriptor with its size and validators, a directory, or a miss. A hot file
 * then costs no open() and no fstat() per request, only a hash lookup, and a
 * small one is sent straight from memory. Entries are compared with the disk
 * again once they are older than `valid` (a changed file is reloaded, a
 * deleted one becomes a miss), and the least recently used go beyond `max`.
 * The directory itself is reopened as often, so a deploy that swaps a symlink
 * (root: /srv/site/current) is picked up too.
 *
 * Entries are handed out for the length of one handle() call only: nothing
 * keeps a pointer to one after the response is queued (large files leave by
 * sendfile on a dup() of the descriptor), so an entry may be replaced or
 * freed by the next request without reference counts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "static.h"

#define TT_FCACHE_MIN_BUCKETS 64

struct tt_fcache {
    const tt_static_conf *conf;
    int          dirfd;             /* -1 when the directory is gone */
    dev_t        dir_dev;
    ino_t        dir_ino;
    char        *dir_real;          /* its real path, for kernels without openat2 */
    size_t       dir_real_len;
    uint64_t     dir_checked_ms;
    uint64_t     now_ms;            /* of the request being served */
    uint64_t     gen;               /* which request that is */
    tt_sfile   **buckets;
    size_t       mask;              /* buckets - 1 */
    tt_sfile    *head, *tail;       /* LRU */
    size_t       count;
    size_t       inline_bytes;
};

typedef struct {                    /* entries a request owns (cache off) */
    tt_sfile *files[8];
    size_t    n;
} tt_sfile_owned;

static int have_openat2 = 1;

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t hash_path(const char *s, size_t len)
{
    uint32_t h = 2166136261u;                   /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* ---- opening beneath the directory ---- */

/* Without openat2: is the file we opened really inside the directory? */
static int inside_dir(const tt_fcache *fc, int fd)
{
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof(real) - 1);
    if (n < 0 || fc->dir_real == NULL)
        return 0;
    real[n] = '\0';
    if ((size_t)n < fc->dir_real_len || memcmp(real, fc->dir_real, fc->dir_real_len) != 0)
        return 0;
    return (size_t)n == fc->dir_real_len || real[fc->dir_real_len] == '/' ||
           strcmp(fc->dir_real, "/") == 0;
}

static int open_beneath(tt_fcache *fc, const char *path, int extra_flags)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer */
    int flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | extra_flags;

    if (fc->dirfd < 0) {
        errno = ENOENT;
        return -1;
    }
    if (fc->conf->follow_symlinks)
        return openat(fc->dirfd, path, flags);
    if (have_openat2) {
        struct open_how how = {
            .flags = (uint64_t)flags,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int)syscall(SYS_openat2, fc->dirfd, path, &how, sizeof(how));
        if (fd >= 0 || errno != ENOSYS)
            return fd;
        have_openat2 = 0;
        tt_static_api->log(TT_LOG_WARN, "static: this kernel has no openat2(); "
                           "checking each file's real path instead");
    }
    int fd = openat(fc->dirfd, path, flags);
    if (fd < 0)
        return -1;
    if (!inside_dir(fc, fd)) {
        close(fd);
        errno = EXDEV;
        return -1;
    }
    return fd;
}

static enum tt_sfile_kind kind_of_errno(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return TT_SFILE_MISSING;
    case EACCES:
    case EPERM:
    case EXDEV:                     /* RESOLVE_BENEATH: the path leads out */
    case ELOOP:
    case ENXIO:                     /* a socket */
        return TT_SFILE_FORBIDDEN;
    default:
        return TT_SFILE_ERROR;
    }
}

/* Read a small file whole; 0 when it did not stay the size fstat saw. */
static int read_whole(int fd, char *buf, size_t size)
{
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        got += (size_t)n;
    }
    return 1;
}

/* Look at the disk: a new entry for the relative path key. */
static tt_sfile *load(tt_fcache *fc, const char *key, size_t key_len, int want_inline)
{
    tt_sfile *f = calloc(1, sizeof(*f) + key_len + 1);
    if (f == NULL)
        return NULL;
    f->key = (char *)(f + 1);
    memcpy(f->key, key, key_len);
    f->key_len = key_len;
    f->hash = hash_path(key, key_len);
    f->fd = -1;
    f->checked_ms = fc->now_ms;
    f->used_gen = fc->gen;

    int fd = open_beneath(fc, key_len == 0 ? "." : f->key, 0);   /* f->key has the NUL */
    if (fd < 0) {
        f->err = errno;
        f->kind = kind_of_errno(errno);
        return f;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        f->err = errno;
        f->kind = TT_SFILE_ERROR;
        close(fd);
        return f;
    }
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->mtime = st.st_mtim.tv_sec;
    f->mtime_nsec = st.st_mtim.tv_nsec;
    if (S_ISDIR(st.st_mode)) {
        f->kind = TT_SFILE_DIR;
        close(fd);
        return f;
    }
    if (!S_ISREG(st.st_mode)) {     /* FIFO, device, socket: never sent */
        f->kind = TT_SFILE_FORBIDDEN;
        f->err = EPERM;
        close(fd);
        return f;
    }
    f->kind = TT_SFILE_FILE;
    f->fd = fd;
    f->size = (uint64_t)st.st_size;
    f->etag_len = tt_etag_format(f->etag, sizeof(f->etag), f->size, f->mtime,
                                 f->mtime_nsec, (uint64_t)f->ino, NULL);
    tt_http_date_format(f->mtime, f->last_modified);

    if (want_inline && f->size <= TT_STATIC_INLINE_MAX &&
        fc->inline_bytes + f->size <= TT_STATIC_INLINE_BUDGET) {
        f->data = malloc(f->size ? f->size : 1);
        if (f->data != NULL && !read_whole(fd, f->data, f->size)) {
            free(f->data);          /* changing under us: send it from the fd */
            f->data = NULL;
        }
    }
    return f;
}

static void sfile_free(tt_sfile *f)
{
    if (f->fd >= 0)
        close(f->fd);
    free(f->data);
    free(f);
}

static tt_sfile *error_entry(void)
{
    static tt_sfile oom = { .kind = TT_SFILE_ERROR, .err = ENOMEM, .fd = -1 };
    return &oom;
}

/* Still the same thing on disk? */
static int same_file(const tt_sfile *a, const tt_sfile *b)
{
    if (a->kind != b->kind)
        return 0;
    if (a->kind != TT_SFILE_FILE && a->kind != TT_SFILE_DIR)
        return a->err == b->err;
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime == b->mtime && a->mtime_nsec == b->mtime_nsec;
}

/* ---- the table ---- */

static void lru_unlink(tt_fcache *fc, tt_sfile *f)
{
    if (f->prev) f->prev->next = f->next; else fc->head = f->next;
    if (f->next) f->next->prev = f->prev; else fc->tail = f->prev;
    f->prev = f->next = NULL;
}

static void lru_push(tt_fcache *fc, tt_sfile *f)
{
    f->prev = NULL;
    f->next = fc->head;
    if (fc->head) fc->head->prev = f; else fc->tail = f;
    fc->head = f;
}

static void remove_entry(tt_fcache *fc, tt_sfile *f)
{
    tt_sfile **pp = &fc->buckets[f->hash & fc->mask];
    while (*pp != f)
        pp = &(*pp)->hnext;
    *pp = f->hnext;
    lru_unlink(fc, f);
    fc->count--;
    if (f->data)
        fc->inline_bytes -= f->size;
    sfile_free(f);
}

static void insert_entry(tt_fcache *fc, tt_sfile *f)
{
    f->cached = 1;
    f->hnext = fc->buckets[f->hash & fc->mask];
    fc->buckets[f->hash & fc->mask] = f;
    lru_push(fc, f);
    fc->count++;
    if (f->data)
        fc->inline_bytes += f->size;
}

/* Beyond max, the least recently used go; but never one this request has
 * already been handed (used in this generation), so a request's earlier
 * lookups stay valid while it makes more. */
static void evict(tt_fcache *fc)
{
    while (fc->count > fc->conf->cache_max && fc->tail != NULL &&
           fc->tail->used_gen != fc->gen)
        remove_entry(fc, fc->tail);
}

static void flush(tt_fcache *fc)
{
    while (fc->tail != NULL)
        remove_entry(fc, fc->tail);
}

static void open_dir(tt_fcache *fc)
{
    int fd = open(fc->conf->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;

    if (fd >= 0 && fstat(fd, &st) != 0) {
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        if (fc->dirfd >= 0)
            tt_static_api->log(TT_LOG_ERROR, "static: cannot open %s: %s",
                               fc->conf->dir, strerror(errno));
        if (fc->dirfd >= 0)
            close(fc->dirfd);
        fc->dirfd = -1;
        flush(fc);
        return;
    }
    if (fc->dirfd >= 0 && st.st_dev == fc->dir_dev && st.st_ino == fc->dir_ino) {
        close(fd);                  /* the same directory: keep what we know */
        return;
    }
    if (fc->dirfd >= 0)
        close(fc->dirfd);
    flush(fc);
    fc->dirfd = fd;
    fc->dir_dev = st.st_dev;
    fc->dir_ino = st.st_ino;
    free(fc->dir_real);
    fc->dir_real = realpath(fc->conf->dir, NULL);
    fc->dir_real_len = fc->dir_real ? strlen(fc->dir_real) : 0;
}

tt_fcache *tt_fcache_new(const tt_static_conf *conf)
{
    tt_fcache *fc = calloc(1, sizeof(*fc));
    if (fc == NULL)
        return NULL;
    size_t n = TT_FCACHE_MIN_BUCKETS;
    while (n < (size_t)conf->cache_max * 2 && n < ((size_t)1 << 24))
        n <<= 1;
    fc->buckets = calloc(n, sizeof(*fc->buckets));
    if (fc->buckets == NULL) {
        free(fc);
        return NULL;
    }
    fc->mask = n - 1;
    fc->conf = conf;
    fc->dirfd = -1;
    fc->now_ms = monotonic_ms();
    open_dir(fc);
    fc->dir_checked_ms = fc->now_ms;
    return fc;
}

void tt_fcache_free(tt_fcache *fc)
{
    if (fc == NULL)
        return;
    flush(fc);
    if (fc->dirfd >= 0)
        close(fc->dirfd);
    free(fc->dir_real);
    free(fc->buckets);
    free(fc);
}

static void release_owned(tt_request *r, void *arg)
{
    (void)r;
    tt_sfile_owned *owned = arg;
    for (size_t i = 0; i < owned->n; i++)
        sfile_free(owned->files[i]);
    owned->n = 0;
}

void tt_fcache_begin(tt_fcache *fc)
{
    uint64_t now = monotonic_ms();

    fc->now_ms = now;
    fc->gen++;
    if (fc->conf->cache_max == 0 || fc->dirfd < 0 ||
        fc->now_ms - fc->dir_checked_ms >= fc->conf->cache_valid_ms) {
        open_dir(fc);
        fc->dir_checked_ms = fc->now_ms;
    }
}

/* Hand f to r: freed when r ends. For the cache off, and for entries that
 * must not be kept. */
static tt_sfile *own(tt_request *r, tt_sfile *f)
{
    tt_sfile_owned *owned = r->ctx;
    if (owned == NULL) {
        owned = tt_static_api->palloc(r, sizeof(*owned));
        if (owned == NULL) {
            sfile_free(f);
            return error_entry();
        }
        r->ctx = owned;
        tt_static_api->on_close(r, release_owned, owned);
    }
    if (owned->n == sizeof(owned->files) / sizeof(owned->files[0])) {
        sfile_free(f);
        return error_entry();
    }
    owned->files[owned->n++] = f;
    return f;
}

tt_sfile *tt_fcache_get(tt_fcache *fc, tt_request *r, const char *key, size_t len)
{
    if (len >= PATH_MAX) {
        static tt_sfile too_long = { .kind = TT_SFILE_MISSING, .err = ENAMETOOLONG, .fd = -1 };
        return &too_long;
    }

    if (fc->conf->cache_max == 0) {
        tt_sfile *f = load(fc, key, len, 0);
        return f != NULL ? own(r, f) : error_entry();
    }

    uint32_t h = hash_path(key, len);
    tt_sfile *f = fc->buckets[h & fc->mask];
    while (f != NULL && !(f->hash == h && f->key_len == len && memcmp(f->key, key, len) == 0))
        f = f->hnext;

    if (f != NULL && fc->now_ms - f->checked_ms < fc->conf->cache_valid_ms) {
        lru_unlink(fc, f);
        lru_push(fc, f);
        f->used_gen = fc->gen;          /* protected for this request, see evict() */
        return f;
    }
    tt_sfile *fresh = load(fc, key, len, 1);
    if (fresh == NULL)
        return f != NULL ? f : error_entry();
    if (f != NULL) {
        if (same_file(f, fresh) && (f->data != NULL) == (fresh->data != NULL)) {
            sfile_free(fresh);
            f->checked_ms = fc->now_ms;
            f->used_gen = fc->gen;
            lru_unlink(fc, f);
            lru_push(fc, f);
            return f;
        }
        remove_entry(fc, f);
    }
    if (fresh->kind == TT_SFILE_ERROR)
        return own(r, fresh);       /* EMFILE is no fact about the file: not kept */
    insert_entry(fc, fresh);
    evict(fc);
    return fresh;
}

int tt_fcache_open_dir(tt_fcache *fc, const char *path, size_t len)
{
    char key[PATH_MAX];
    if (len >= sizeof(key)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(key, path, len);
    key[len] = '\0';
    return open_beneath(fc, len == 0 ? "." : key, O_DIRECTORY);
}
