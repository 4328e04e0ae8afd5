/* Config node accessors, shared by the core and (through tt_api) modules.
 *
 * Every failure writes one line in the same shape, so a module's errors
 * read like the core's:
 *
 *     tutti.yaml:22:17: 'max_body_size: 10 MB': expected a size such as 10MB
 *
 * The node points at the value; the key in quotes comes from the loader,
 * which remembers for each value the key it stands under (tt_yaml_key_of).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config/config.h"

/* The config being loaded: loading is single-threaded and one config at a
 * time, and conf_alloc/conf_path in the module API take no context. */
static tt_arena   *current_arena;
static const char *current_dir;

void tt_conf_set_current(tt_arena *a, const char *dir)
{
    current_arena = a;
    current_dir = a != NULL && dir != NULL ? tt_arena_strdup(a, dir) : NULL;
}

void *tt_conf_alloc(size_t n)
{
    return current_arena != NULL ? tt_arena_alloc(current_arena, n) : NULL;
}

void tt_conf_error(tt_errbuf *err, const tt_conf_node *node, const char *fmt, ...)
{
    /* format aside first: an argument may be err->msg itself */
    char msg[sizeof(err->msg)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t used = 0;
    if (node != NULL && node->file != NULL) {
        int w = snprintf(err->msg, sizeof(err->msg), "%s:%u:%u: ", node->file, node->line,
                         node->col);
        used = w < 0 ? 0 : (size_t)w >= sizeof(err->msg) ? sizeof(err->msg) - 1 : (size_t)w;
    }
    /* a long message is cut, never overflowed */
    size_t len = strlen(msg);
    if (len > sizeof(err->msg) - 1 - used)
        len = sizeof(err->msg) - 1 - used;
    memcpy(err->msg + used, msg, len);
    err->msg[used + len] = '\0';
}

/* A plain empty value, "~" or "null": what `key:` with nothing after it is. */
static int is_null(const tt_conf_node *n)
{
    return n->type == TT_CONF_SCALAR && !n->quoted
        && (n->len == 0 || strcmp(n->value, "~") == 0 || strcasecmp(n->value, "null") == 0);
}

/* How much of a value to quote back: its first line, at most 80 characters. */
static int shown_len(const char *v, int *cut)
{
    size_t n = strcspn(v, "\n");
    *cut = v[n] != '\0' || n > 80;
    return n > 80 ? 80 : (int)n;
}

/* "'key: value': expected ...", or the closest thing the node allows. */
static void value_error(tt_errbuf *err, const tt_conf_node *n, const char *expected)
{
    const tt_conf_node *key = tt_yaml_key_of(n);
    const char *k = key != NULL ? key->value : NULL;

    if (n->type != TT_CONF_SCALAR) {
        const char *kind = n->type == TT_CONF_MAP ? "a map" : "a list";
        if (k != NULL)
            tt_conf_error(err, n, "'%s': %s, not %s", k, expected, kind);
        else
            tt_conf_error(err, n, "%s, not %s", expected, kind);
        return;
    }
    if (n->len == 0) {
        if (k != NULL)
            tt_conf_error(err, n, "'%s' has no value: %s", k, expected);
        else
            tt_conf_error(err, n, "no value: %s", expected);
        return;
    }
    int cut, len = shown_len(n->value, &cut);
    if (k != NULL)
        tt_conf_error(err, n, "'%s: %.*s%s': %s", k, len, n->value, cut ? "..." : "", expected);
    else
        tt_conf_error(err, n, "'%.*s%s': %s", len, n->value, cut ? "..." : "", expected);
}

const tt_conf_node *tt_conf_get(const tt_conf_node *map, const char *key)
{
    if (map == NULL || map->type != TT_CONF_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i]->value, key) == 0)
            return map->items[i];
    return NULL;
}

/* An absent node or `key:` with nothing after it passes: all keys are then
 * absent and take their defaults, which is what a user who commented out
 * every line below `keepalive:` means. */
int tt_conf_check_keys(const tt_conf_node *map, const char *what,
                       const char *const *known, tt_errbuf *err)
{
    if (map == NULL || is_null(map))
        return 0;
    if (map->type != TT_CONF_MAP) {
        if (known != NULL && known[0] != NULL)
            tt_conf_error(err, map, "'%s' must be a map of keys such as %s: ...", what, known[0]);
        else
            tt_conf_error(err, map, "'%s' must be a map of key: value pairs", what);
        return -1;
    }
    for (size_t i = 0; i < map->n; i++) {
        const tt_conf_node *k = map->keys[i];
        size_t j = 0;
        while (known != NULL && known[j] != NULL && strcmp(known[j], k->value) != 0)
            j++;
        if (known != NULL && known[j] != NULL)
            continue;

        const char *close = tt_suggest(k->value, known);
        if (close != NULL) {
            tt_conf_error(err, k, "unknown key '%s' in %s; did you mean '%s'?",
                          k->value, what, close);
            return -1;
        }
        char list[512];
        size_t used = 0;
        list[0] = '\0';
        for (j = 0; known != NULL && known[j] != NULL; j++) {
            int w = snprintf(list + used, sizeof(list) - used, "%s%s", j ? ", " : "", known[j]);
            if (w < 0 || (size_t)w >= sizeof(list) - used)
                break;
            used += (size_t)w;
        }
        if (used > 0)
            tt_conf_error(err, k, "unknown key '%s' in %s; known keys: %s", k->value, what, list);
        else
            tt_conf_error(err, k, "unknown key '%s' in %s; it takes no keys", k->value, what);
        return -1;
    }
    return 0;
}

int tt_conf_string(const tt_conf_node *n, const char **out, tt_errbuf *err)
{
    if (n->type != TT_CONF_SCALAR) {
        value_error(err, n, "expected a string");
        return -1;
    }
    *out = n->value;
    return 0;
}

int tt_conf_bool(const tt_conf_node *n, int *out, tt_errbuf *err)
{
    if (n->type != TT_CONF_SCALAR || tt_parse_bool(n->value, out) < 0) {
        value_error(err, n, "expected true or false");
        return -1;
    }
    return 0;
}

int tt_conf_int(const tt_conf_node *n, long min, long max, long *out, tt_errbuf *err)
{
    char expected[96];
    snprintf(expected, sizeof(expected), "expected a whole number from %ld to %ld", min, max);

    if (n->type != TT_CONF_SCALAR) {
        value_error(err, n, expected);
        return -1;
    }
    /* strtol alone would take " 12", "0x1f" is refused by base 10 */
    const char *s = n->value;
    const char *digits = s + (s[0] == '-' || s[0] == '+');
    if (*digits < '0' || *digits > '9') {
        value_error(err, n, expected);
        return -1;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || errno == ERANGE || v < min || v > max) {
        value_error(err, n, expected);
        return -1;
    }
    *out = v;
    return 0;
}

int tt_conf_size(const tt_conf_node *n, uint64_t *out, tt_errbuf *err)
{
    if (n->type != TT_CONF_SCALAR || tt_parse_size(n->value, out) < 0) {
        value_error(err, n, "expected a size such as 10MB");
        return -1;
    }
    return 0;
}

int tt_conf_duration(const tt_conf_node *n, uint64_t *ms, tt_errbuf *err)
{
    if (n->type != TT_CONF_SCALAR || tt_parse_duration(n->value, ms) < 0) {
        value_error(err, n, "expected a duration such as 10s, 500ms, 5m");
        return -1;
    }
    return 0;
}

int tt_conf_rate(const tt_conf_node *n, tt_rate *out, tt_errbuf *err)
{
    if (n->type != TT_CONF_SCALAR || tt_parse_rate(n->value, out) < 0) {
        value_error(err, n, "expected a rate such as 512KB/s or 20/s");
        return -1;
    }
    return 0;
}

/* Relative paths are relative to the config file's directory, not to the
 * directory tutti happened to start in; "./public" becomes "DIR/public". */
int tt_conf_path(const tt_conf_node *n, const char **out, tt_errbuf *err)
{
    if (n->type != TT_CONF_SCALAR || n->len == 0) {
        value_error(err, n, "expected a path");
        return -1;
    }
    const char *p = n->value;
    if (p[0] == '/' || current_dir == NULL) {
        *out = current_arena != NULL ? tt_arena_strdup(current_arena, p) : p;
        return *out != NULL ? 0 : -1;
    }
    while (p[0] == '.' && p[1] == '/') {
        p += 2;
        while (*p == '/')
            p++;
    }
    if (strcmp(p, ".") == 0)
        p = "";
    size_t dl = strlen(current_dir);
    const char *sep = dl > 0 && current_dir[dl - 1] == '/' ? "" : "/";
    if (*p == '\0')
        *out = tt_arena_strdup(current_arena, current_dir);
    else
        *out = tt_arena_printf(current_arena, "%s%s%s", current_dir, sep, p);
    if (*out == NULL) {
        tt_conf_error(err, n, "out of memory");
        return -1;
    }
    return 0;
}
