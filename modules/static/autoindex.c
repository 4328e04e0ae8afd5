/* static — the HTML listing of a directory (`autoindex: true`).
 *
 * Directories first, then files, each group by name (byte order, as `ls`
 * with LC_ALL=C); a size and a modification date in UTC for each. Names
 * are untrusted text: the link is percent-encoded and the label
 * HTML-escaped, so a file called `<script>` is shown, never run. Hidden
 * names are left out unless `dotfiles: allow`. Entries that are neither
 * files nor directories are left out too, since they would only be 403.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "static.h"

typedef struct {
    char    *name;
    int      is_dir;
    uint64_t size;
    int64_t  mtime;
} tt_dirent;

/* A growing text buffer; on allocation failure it stops growing and
 * remembers it failed. */
typedef struct {
    char  *p;
    size_t len, cap;
    int    failed;
} tt_text;

static void text_add(tt_text *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (p == NULL) {
            t->failed = 1;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
}

static void text_str(tt_text *t, const char *s)
{
    text_add(t, s, strlen(s));
}

static void text_html(tt_text *t, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '<':  text_str(t, "&lt;");   break;
        case '>':  text_str(t, "&gt;");   break;
        case '&':  text_str(t, "&amp;");  break;
        case '"':  text_str(t, "&quot;"); break;
        case '\'': text_str(t, "&#39;");  break;
        default:   text_add(t, &s[i], 1);
        }
    }
}

static void text_url(tt_text *t, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~!$()*,;=@", ch) != NULL) {
            text_add(t, (const char *)&ch, 1);
        } else {
            char esc[3] = { '%', hex[ch >> 4], hex[ch & 15] };
            text_add(t, esc, 3);
        }
    }
}

static int by_kind_then_name(const void *a, const void *b)
{
    const tt_dirent *x = a, *y = b;
    if (x->is_dir != y->is_dir)
        return y->is_dir - x->is_dir;
    return strcmp(x->name, y->name);
}

static void human_size(char *buf, size_t cap, uint64_t size)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)size;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%" PRIu64 " B", size);
    else
        snprintf(buf, cap, "%.1f %s", v, units[u]);
}

/* Read the directory; entries in *out, their count returned, -1 on error. */
static long read_entries(int fd, const tt_static_conf *conf, tt_dirent **out)
{
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -1;
    }
    tt_dirent *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && (!conf->dotfiles || strcmp(de->d_name, ".") == 0 ||
                                     strcmp(de->d_name, "..") == 0))
            continue;
        struct stat st;
        /* follow links as the server would; a dangling one is left out */
        if (fstatat(dirfd(d), de->d_name, &st, 0) != 0)
            continue;
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            tt_dirent *grown = realloc(v, cap * sizeof(*v));
            if (grown == NULL)
                break;
            v = grown;
        }
        v[n].name = strdup(de->d_name);
        if (v[n].name == NULL)
            break;
        v[n].is_dir = S_ISDIR(st.st_mode);
        v[n].size = (uint64_t)st.st_size;
        v[n].mtime = st.st_mtim.tv_sec;
        n++;
    }
    closedir(d);
    qsort(v, n, sizeof(*v), by_kind_then_name);
    *out = v;
    return (long)n;
}

int tt_static_autoindex(tt_request *r, const tt_static_conf *conf, const char *path,
                        size_t len)
{
    const tt_api *api = tt_static_api;
    int fd = tt_fcache_open_dir(conf->cache, path, len);
    if (fd < 0)
        return tt_static_error(r, conf, errno == ENOENT || errno == ENOTDIR ? 404 : 403,
                               NULL, NULL);

    tt_dirent *ents = NULL;
    long n = read_entries(fd, conf, &ents);
    if (n < 0)
        return tt_static_error(r, conf, 403, NULL, NULL);

    tt_text t = { 0 };
    text_str(&t, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
    text_html(&t, r->path, r->path_len);
    text_str(&t, "</title>\n<style>body{font-family:system-ui,sans-serif;margin:2rem}"
                 "td{padding:0 1.5rem 0 0}td.s{text-align:right}</style></head>\n"
                 "<body>\n<h1>Index of ");
    text_html(&t, r->path, r->path_len);
    text_str(&t, "</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr>\n");
    if (r->path_len > 1)
        text_str(&t, "<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    for (long i = 0; i < n; i++) {
        char size[32] = "-", date[32];
        struct tm tm;
        time_t mt = (time_t)ents[i].mtime;
        gmtime_r(&mt, &tm);
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M", &tm);
        if (!ents[i].is_dir)
            human_size(size, sizeof(size), ents[i].size);
        size_t nlen = strlen(ents[i].name);

        text_str(&t, "<tr><td><a href=\"");
        text_url(&t, ents[i].name, nlen);
        if (ents[i].is_dir)
            text_str(&t, "/");
        text_str(&t, "\">");
        text_html(&t, ents[i].name, nlen);
        if (ents[i].is_dir)
            text_str(&t, "/");
        text_str(&t, "</a></td><td class=\"s\">");
        text_str(&t, size);
        text_str(&t, "</td><td>");
        text_str(&t, date);
        text_str(&t, "</td></tr>\n");
        free(ents[i].name);
    }
    free(ents);
    text_str(&t, "</table>\n</body></html>\n");

    int rc = TT_ERROR;
    if (!t.failed) {
        tt_header h[2] = {
            { "Content-Type", 12, "text/html; charset=utf-8", 24 },
            { "Cache-Control", 13, "no-cache", 8 },
        };
        if (api->start(r, 200, h, 2, (int64_t)t.len) == 0 &&
            api->write(r, t.p, t.len) == 0 && api->finish(r) == 0)
            rc = TT_OK;
    }
    free(t.p);
    return rc;
}
