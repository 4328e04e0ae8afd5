/* static — what the module's files share. Private to modules/static. */
#ifndef TT_STATIC_H
#define TT_STATIC_H

#include <stdint.h>
#include <sys/types.h>
#include <tutti/tutti.h>
#include "cond.h"
#include "mime.h"

/* Files up to this size are read once into the open-file cache and leave
 * with their headers in one write; bigger ones go by sendfile. */
#define TT_STATIC_INLINE_MAX    (16 * 1024)
/* Inline bytes one cache may hold, whatever `max` says. */
#define TT_STATIC_INLINE_BUDGET (8 * 1024 * 1024)

extern const tt_api *tt_static_api;
extern const tt_mime *tt_static_mime;

typedef struct tt_fcache tt_fcache;

typedef struct {
    const char   *dir;              /* root or alias, absolute */
    int           alias;            /* 1: strip the route prefix first */
    const char  **index;            /* NULL-terminated */
    int           autoindex;
    const char   *cache_control;    /* "max-age=N", or NULL (expires: off) */
    int           precompressed;
    const char   *fallback;         /* relative to dir, no leading '/'; or NULL */
    size_t        fallback_len;
    int           follow_symlinks;
    int           dotfiles;         /* 1: allow */
    tt_mime      *types;            /* the route's own `types:`, or NULL */
    const char   *default_type;
    unsigned      cache_max;        /* 0: open_file_cache off */
    uint64_t      cache_valid_ms;

    tt_fcache    *cache;            /* the worker's, made at its first request */
} tt_static_conf;

enum tt_sfile_kind {
    TT_SFILE_FILE,
    TT_SFILE_DIR,
    TT_SFILE_MISSING,               /* ENOENT, ENOTDIR */
    TT_SFILE_FORBIDDEN,             /* EACCES, a link leading out, not a file or dir */
    TT_SFILE_ERROR                  /* anything else (EMFILE, EIO): 500 */
};

/* One looked-up path: what it is, and for a file everything a response
 * needs, computed once. */
typedef struct tt_sfile tt_sfile;
struct tt_sfile {
    enum tt_sfile_kind kind;
    int          err;               /* errno behind MISSING/FORBIDDEN/ERROR */
    int          fd;                /* FILE: open for reading; -1 otherwise */
    uint64_t     size;
    int64_t      mtime;             /* seconds */
    long         mtime_nsec;
    dev_t        dev;
    ino_t        ino;
    char         etag[TT_ETAG_MAX];
    size_t       etag_len;
    char         last_modified[TT_HTTP_DATE_LEN + 1];
    char        *data;              /* the contents when size <= INLINE_MAX, or NULL */

    /* cache bookkeeping (cache.c) */
    char        *key;               /* the relative path */
    size_t       key_len;
    uint32_t     hash;
    uint64_t     checked_ms;        /* last compared with the disk */
    uint64_t     used_gen;          /* the request it was last handed to */
    tt_sfile    *hnext;             /* hash chain */
    tt_sfile    *prev, *next;       /* LRU, most recent first */
    unsigned     cached:1;          /* owned by the cache, not by a request */
};

/* cache.c: the worker's open-file cache of one route. */
tt_fcache *tt_fcache_new(const tt_static_conf *conf);
void       tt_fcache_free(tt_fcache *fc);
/* Open (or find) path, relative to the route's directory, without a
 * leading '/'; "" is the directory itself. Never NULL: an allocation failure
 * comes back as TT_SFILE_ERROR. The result belongs to r (released when r is
 * freed) or to the cache; it is valid until r ends either way. */
/* Once at the start of each request: the clock, and the directory re-checked. */
void       tt_fcache_begin(tt_fcache *fc);
tt_sfile  *tt_fcache_get(tt_fcache *fc, tt_request *r, const char *path, size_t len);
/* The route's directory, open, for the listing (a new descriptor), -1 on error. */
int        tt_fcache_open_dir(tt_fcache *fc, const char *path, size_t len);

/* send.c: answer r with f (a FILE), honouring conditional and Range
 * headers. name is the path the client asked for (its extension picks the
 * type); encoding "br", "gzip" or NULL when f is the file itself. */
int tt_static_send(tt_request *r, const tt_static_conf *conf, const tt_sfile *f,
                   const char *name, size_t name_len, const char *encoding);
/* A short error page with one extra header (Allow, Location, Content-Range)
 * or none, and Vary on a precompressed route. */
int tt_static_error(tt_request *r, const tt_static_conf *conf, int status,
                    const char *hname, const char *hvalue);

/* autoindex.c: the HTML listing of the directory `path` (relative, may be
 * ""), for the URL path url. */
int tt_static_autoindex(tt_request *r, const tt_static_conf *conf, const char *path,
                        size_t len);

#endif
