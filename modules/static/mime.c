/* static — file name extension -> Content-Type.
 *
 * An open-addressing hash table (linear probing, at most half full) keyed
 * by the lower-cased extension. Every value is the finished Content-Type,
 * charset included, built once when the entry goes in: a lookup, done for
 * every file served, hashes the extension and compares one or two keys,
 * without allocating or touching the locale.
 *
 * Memory comes from the caller's allocator and is never freed piece by
 * piece; when the table fills up a bigger one is allocated and the old one
 * is left to the allocator, which costs less than the final table again. */
#include "mime.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longer "extensions" are not in any table worth having (the longest in
 * Debian's file has 25 bytes), and refusing them keeps lookups short. */
#define MIME_EXT_MAX 63

#define MIME_FIRST_CAPACITY 256         /* slots; a power of two */

#define CHARSET_SUFFIX "; charset=utf-8"

typedef struct {
    uint32_t    hash;
    size_t      ext_len;
    const char *ext;            /* lower case, NUL-terminated */
    const char *type;           /* the Content-Type value, ready to send */
} mime_entry;

struct tt_mime {
    void       *(*alloc)(size_t);
    mime_entry **slots;
    size_t       cap;           /* a power of two */
    size_t       count;
};

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* FNV-1a over the lower-cased bytes: short keys, no seed needed, since the
 * keys come from the configuration, not from clients. */
static uint32_t hash_ext(const char *ext, size_t len)
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char)lower(ext[i]);
        h *= 16777619u;
    }
    return h;
}

/* The slot holding ext, or the empty slot where it would go. */
static mime_entry **find_slot(mime_entry **slots, size_t cap, const char *ext,
                              size_t len, uint32_t hash)
{
    size_t mask = cap - 1, i = hash & mask;

    for (;; i = (i + 1) & mask) {
        mime_entry *e = slots[i];
        size_t k;

        if (e == NULL)
            return &slots[i];
        if (e->hash != hash || e->ext_len != len)
            continue;
        for (k = 0; k < len && e->ext[k] == lower(ext[k]); k++)
            ;
        if (k == len)
            return &slots[i];
    }
}

/* Double the table once it would be more than half full. */
static int make_room(tt_mime *m)
{
    mime_entry **bigger;
    size_t cap, i;

    if ((m->count + 1) * 2 <= m->cap)
        return 0;
    if (m->cap > SIZE_MAX / 2 / sizeof *bigger)
        return -1;
    cap = m->cap * 2;
    bigger = m->alloc(cap * sizeof *bigger);
    if (bigger == NULL)
        return -1;
    for (i = 0; i < m->cap; i++) {
        mime_entry *e = m->slots[i];

        if (e != NULL)
            *find_slot(bigger, cap, e->ext, e->ext_len, e->hash) = e;
    }
    m->slots = bigger;
    m->cap = cap;
    return 0;
}

tt_mime *tt_mime_new(void *(*alloc)(size_t))
{
    tt_mime *m;

    if (alloc == NULL)
        return NULL;
    m = alloc(sizeof *m);
    if (m == NULL)
        return NULL;
    m->alloc = alloc;
    m->cap = MIME_FIRST_CAPACITY;
    m->slots = alloc(m->cap * sizeof *m->slots);
    if (m->slots == NULL)
        return NULL;
    return m;
}

/* ---- values ---- */

static int equals_nocase(const char *a, size_t alen, const char *b)
{
    size_t i;

    if (alen != strlen(b))
        return 0;
    for (i = 0; i < alen; i++)
        if (lower(a[i]) != b[i])
            return 0;
    return 1;
}

/* Types whose bodies are text in the encoding a site is written in: with
 * no charset, browsers guess, and may guess wrong. A type that already
 * carries parameters is left as it is. */
static int wants_charset(const char *type, size_t len)
{
    if (memchr(type, ';', len) != NULL)
        return 0;
    if (len > 5 && equals_nocase(type, 5, "text/"))
        return 1;
    return equals_nocase(type, len, "application/javascript") ||
           equals_nocase(type, len, "application/json") ||
           equals_nocase(type, len, "application/xml") ||
           equals_nocase(type, len, "image/svg+xml");
}

/* A type goes into a header: "major/minor", printable ASCII only, so no
 * configuration can slip a CR or LF into a response. */
static int type_is_valid(const char *type, size_t len)
{
    size_t i;

    if (len == 0 || memchr(type, '/', len) == NULL)
        return 0;
    for (i = 0; i < len; i++)
        if ((unsigned char)type[i] < 0x20 || (unsigned char)type[i] > 0x7e)
            return 0;
    return 1;
}

/* An extension as stored: a name's last dot is where lookups cut it, so an
 * extension holds no dot (nor slash, space or control character). */
static int ext_is_valid(const char *ext, size_t len)
{
    size_t i;

    if (len == 0 || len > MIME_EXT_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)ext[i];

        if (c <= 0x20 || c == 0x7f || c == '.' || c == '/')
            return 0;
    }
    return 1;
}

/* The Content-Type value for a media type, in the table's memory. */
static const char *make_content_type(tt_mime *m, const char *type, size_t len)
{
    size_t extra = wants_charset(type, len) ? sizeof CHARSET_SUFFIX - 1 : 0;
    char *v = m->alloc(len + extra + 1);

    if (v == NULL)
        return NULL;
    memcpy(v, type, len);
    memcpy(v + len, CHARSET_SUFFIX, extra);
    v[len + extra] = '\0';
    return v;
}

/* ---- inserting ---- */

typedef enum { PUT_KEEP, PUT_REPLACE } put_mode;

/* Insert ext -> content_type (already built). 1 when it went in, 0 when
 * ext was there and kept, -1 out of memory. */
static int put(tt_mime *m, const char *ext, size_t len, const char *content_type,
               put_mode mode)
{
    uint32_t hash = hash_ext(ext, len);
    mime_entry **slot = find_slot(m->slots, m->cap, ext, len, hash);
    mime_entry *e;
    char *key;
    size_t i;

    if (*slot != NULL) {
        if (mode == PUT_KEEP)
            return 0;
        (*slot)->type = content_type;
        return 1;
    }
    if (make_room(m) != 0)
        return -1;
    slot = find_slot(m->slots, m->cap, ext, len, hash);   /* the table may have moved */
    e = m->alloc(sizeof *e + len + 1);
    if (e == NULL)
        return -1;
    key = (char *)(e + 1);
    for (i = 0; i < len; i++)
        key[i] = lower(ext[i]);
    key[len] = '\0';
    e->hash = hash;
    e->ext_len = len;
    e->ext = key;
    e->type = content_type;
    *slot = e;
    m->count++;
    return 1;
}

int tt_mime_set(tt_mime *m, const char *ext, const char *type)
{
    size_t elen, tlen;
    const char *ct;

    if (m == NULL || ext == NULL || type == NULL) {
        errno = EINVAL;
        return -1;
    }
    elen = strlen(ext);
    tlen = strlen(type);
    if (!ext_is_valid(ext, elen) || !type_is_valid(type, tlen)) {
        errno = EINVAL;
        return -1;
    }
    ct = make_content_type(m, type, tlen);
    if (ct == NULL || put(m, ext, elen, ct, PUT_REPLACE) < 0) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* ---- the built-in table ---- */

/* Agrees with Debian's /etc/mime.types (media-types 10) wherever that file
 * has the extension; the rest (br, bz2, map, yaml, yml, toml) are the
 * registered or customary types. */
static const struct {
    const char *ext, *type;
} builtin[] = {
    { "html", "text/html" },            { "htm", "text/html" },
    { "xhtml", "application/xhtml+xml" },
    { "css", "text/css" },
    { "js", "text/javascript" },        { "mjs", "text/javascript" },   /* RFC 9239 */
    { "json", "application/json" },     { "map", "application/json" },  /* source maps */
    { "jsonld", "application/ld+json" },
    { "webmanifest", "application/manifest+json" },
    { "wasm", "application/wasm" },
    { "txt", "text/plain" },            { "csv", "text/csv" },
    { "md", "text/markdown" },          { "ics", "text/calendar" },
    { "xml", "application/xml" },       { "rss", "application/x-rss+xml" },
    { "atom", "application/atom+xml" },
    { "yaml", "application/yaml" },     { "yml", "application/yaml" },  /* RFC 9512 */
    { "toml", "application/toml" },
    { "pdf", "application/pdf" },
    { "svg", "image/svg+xml" },         { "png", "image/png" },
    { "apng", "image/apng" },           { "jpg", "image/jpeg" },
    { "jpeg", "image/jpeg" },           { "gif", "image/gif" },
    { "webp", "image/webp" },           { "avif", "image/avif" },
    { "jxl", "image/jxl" },             { "ico", "image/vnd.microsoft.icon" },
    { "bmp", "image/bmp" },             { "tif", "image/tiff" },
    { "tiff", "image/tiff" },
    { "woff", "font/woff" },            { "woff2", "font/woff2" },
    { "ttf", "font/ttf" },              { "otf", "font/otf" },
    { "eot", "application/vnd.ms-fontobject" },
    { "mp4", "video/mp4" },             { "m4v", "video/mp4" },
    { "webm", "video/webm" },           { "ogv", "video/ogg" },
    { "mov", "video/quicktime" },
    { "mp3", "audio/mpeg" },            { "ogg", "audio/ogg" },
    { "oga", "audio/ogg" },             { "opus", "audio/ogg" },
    { "wav", "audio/x-wav" },           { "flac", "audio/flac" },
    { "m4a", "audio/mp4" },             { "aac", "audio/aac" },
    { "zip", "application/zip" },       { "gz", "application/gzip" },
    { "tgz", "application/x-gtar-compressed" },
    { "br", "application/x-brotli" },   { "tar", "application/x-tar" },
    { "bz2", "application/x-bzip2" },   { "xz", "application/x-xz" },
    { "7z", "application/x-7z-compressed" },
};

int tt_mime_add_builtin(tt_mime *m)
{
    size_t i;

    for (i = 0; i < sizeof builtin / sizeof builtin[0]; i++) {
        const char *type = builtin[i].type;
        const char *ct;
        size_t elen = strlen(builtin[i].ext);
        uint32_t hash = hash_ext(builtin[i].ext, elen);

        /* look first: a kept entry should not cost a Content-Type string */
        if (*find_slot(m->slots, m->cap, builtin[i].ext, elen, hash) != NULL)
            continue;
        ct = make_content_type(m, type, strlen(type));
        if (ct == NULL || put(m, builtin[i].ext, elen, ct, PUT_KEEP) < 0) {
            errno = ENOMEM;
            return -1;
        }
    }
    return 0;
}

/* ---- mime.types ---- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* One line, without its newline: "type ext ext ..." with an optional
 * comment. A line without a usable type is skipped, as are extensions no
 * lookup could find (Debian lists some with dots, like "cwl.json"). */
static int load_line(tt_mime *m, const char *p, const char *end)
{
    const char *comment = memchr(p, '#', (size_t)(end - p));
    const char *type, *ct = NULL;
    size_t tlen;

    if (comment != NULL)
        end = comment;
    while (p < end && is_space(*p))
        p++;
    type = p;
    while (p < end && !is_space(*p))
        p++;
    tlen = (size_t)(p - type);
    if (!type_is_valid(type, tlen))
        return 0;

    for (;;) {
        const char *ext;
        size_t elen;

        while (p < end && is_space(*p))
            p++;
        if (p == end)
            return 0;
        ext = p;
        while (p < end && !is_space(*p))
            p++;
        elen = (size_t)(p - ext);
        if (!ext_is_valid(ext, elen) ||
            *find_slot(m->slots, m->cap, ext, elen, hash_ext(ext, elen)) != NULL)
            continue;
        if (ct == NULL) {               /* one string for the whole line */
            ct = make_content_type(m, type, tlen);
            if (ct == NULL)
                return -1;
        }
        if (put(m, ext, elen, ct, PUT_KEEP) < 0)
            return -1;
    }
}

int tt_mime_load_text(tt_mime *m, const char *text, size_t len)
{
    const char *p = text, *end = text + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;

        if (load_line(m, p, eol) < 0) {
            errno = ENOMEM;
            return -1;
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

int tt_mime_load_file(tt_mime *m, const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc, saved;

    if (f == NULL)
        return -1;
    /* The whole file, in memory that is given back: it is read once, at
     * configuration time, and only the table is kept. */
    for (;;) {
        size_t got;

        if (len == cap) {
            char *bigger = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap ? cap * 2 : 64 * 1024);

            if (bigger == NULL) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return -1;
            }
            buf = bigger;
            cap = cap ? cap * 2 : 64 * 1024;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        saved = errno;
        free(buf);
        fclose(f);
        errno = saved ? saved : EIO;
        return -1;
    }
    fclose(f);
    rc = tt_mime_load_text(m, buf, len);
    saved = errno;
    free(buf);
    errno = saved;
    return rc;
}

/* ---- lookup ---- */

const char *tt_mime_lookup(const tt_mime *m, const char *name, size_t len)
{
    const char *end, *p, *dot, *q;
    mime_entry *e;
    size_t elen;

    if (m == NULL || name == NULL)
        return NULL;
    end = p = name + len;
    /* back from the end to the last dot of the last segment */
    while (p > name && p[-1] != '.' && p[-1] != '/')
        p--;
    if (p == name || p[-1] != '.')
        return NULL;                    /* no dot in the last segment */
    dot = p - 1;
    elen = (size_t)(end - p);
    if (elen == 0 || elen > MIME_EXT_MAX)
        return NULL;                    /* "name." */
    /* A name that is only dots before its last one (".bashrc", "..x") is
     * a hidden file without an extension, not a file named "". */
    for (q = dot; q > name && q[-1] == '.'; q--)
        ;
    if (q == name || q[-1] == '/')
        return NULL;

    e = *find_slot(m->slots, m->cap, p, elen, hash_ext(p, elen));
    return e ? e->type : NULL;
}
