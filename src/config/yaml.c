/* YAML text -> a tree of tt_conf_node, every node with its file:line:col.
 *
 * libyaml's event API drives an explicit stack, so a deeply nested document
 * cannot exhaust the C stack.  What YAML allows but a config has no use for
 * is refused here with a message that says what to write: duplicate keys
 * (libyaml keeps both silently), non-scalar keys, aliases, several documents.
 *
 * Each node is allocated inside a tt_yaml_node whose first member is the
 * public tt_conf_node, so a node pointer converts back to its wrapper.  The
 * wrapper remembers the key a value stands under, which lets accessors write
 * "'max_body_size: 10 MB': expected a size" from the value node alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include "config/config.h"

/* Far deeper than any config needs, far shallower than the C stack of any
 * code that walks the tree recursively. */
#define TT_YAML_MAX_DEPTH 64

typedef struct {
    tt_conf_node        node;   /* first: (tt_yaml_node *)node is valid */
    const tt_conf_node *key;    /* the map key this value stands under */
} tt_yaml_node;

typedef struct {
    tt_conf_node  *node;
    tt_conf_node **keys;        /* map only; malloc'ed until the container ends */
    tt_conf_node **items;
    size_t         n, cap;
    tt_conf_node  *pending_key; /* map: a key still waiting for its value */
} frame;

typedef struct {
    tt_arena     *arena;
    const char   *file;
    const char   *text;
    size_t        len;
    tt_errbuf    *err;
    frame         stack[TT_YAML_MAX_DEPTH];
    size_t        depth;
    tt_conf_node *root;
    int           documents;
} loader;

const tt_conf_node *tt_yaml_key_of(const tt_conf_node *n)
{
    return n != NULL ? ((const tt_yaml_node *)n)->key : NULL;
}

static void error_at(loader *L, unsigned line, unsigned col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void error_at(loader *L, unsigned line, unsigned col, const char *fmt, ...)
{
    tt_conf_node where = { .file = L->file, .line = line, .col = col };
    char msg[sizeof(L->err->msg)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tt_conf_error(L->err, &where, "%s", msg);
}

#define MARK(m) (unsigned)(m).line + 1, (unsigned)(m).column + 1

static void oom(loader *L)
{
    snprintf(L->err->msg, sizeof(L->err->msg), "%s: out of memory", L->file);
}

static tt_conf_node *node_new(loader *L, tt_conf_type type, yaml_mark_t mark)
{
    tt_yaml_node *y = tt_arena_alloc(L->arena, sizeof(*y));
    if (y == NULL) {
        oom(L);
        return NULL;
    }
    y->node.type = type;
    y->node.file = L->file;
    y->node.line = (unsigned)mark.line + 1;
    y->node.col = (unsigned)mark.column + 1;
    return &y->node;
}

static int frame_push_item(loader *L, frame *f, tt_conf_node *key, tt_conf_node *item)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        tt_conf_node **items = realloc(f->items, cap * sizeof(*items));
        if (items == NULL) {
            oom(L);
            return -1;
        }
        f->items = items;
        if (f->node->type == TT_CONF_MAP) {
            tt_conf_node **keys = realloc(f->keys, cap * sizeof(*keys));
            if (keys == NULL) {
                oom(L);
                return -1;
            }
            f->keys = keys;
        }
        f->cap = cap;
    }
    if (key != NULL)
        f->keys[f->n] = key;
    f->items[f->n++] = item;
    return 0;
}

/* Hangs node under the innermost open container.  In a map, a node is the
 * key when no key is pending, and the value otherwise. */
static int attach(loader *L, tt_conf_node *node, yaml_mark_t mark)
{
    if (L->depth == 0) {
        L->root = node;
        return 0;
    }
    frame *f = &L->stack[L->depth - 1];
    if (f->node->type == TT_CONF_SEQ)
        return frame_push_item(L, f, NULL, node);

    if (f->pending_key == NULL) {
        if (node->type != TT_CONF_SCALAR) {
            error_at(L, MARK(mark), "a map key must be a single word such as 'workers', not a %s",
                     node->type == TT_CONF_MAP ? "map" : "list");
            return -1;
        }
        f->pending_key = node;
        return 0;
    }
    ((tt_yaml_node *)node)->key = f->pending_key;
    tt_conf_node *key = f->pending_key;
    f->pending_key = NULL;
    return frame_push_item(L, f, key, node);
}

static int is_value_position(const loader *L)
{
    if (L->depth == 0)
        return 1;
    const frame *f = &L->stack[L->depth - 1];
    return f->node->type == TT_CONF_SEQ || f->pending_key != NULL;
}

static int on_scalar(loader *L, const yaml_event_t *ev)
{
    const char *text = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    yaml_mark_t mark = ev->start_mark;

    if (memchr(text, '\0', len) != NULL) {
        error_at(L, MARK(mark), "a value cannot contain a NUL character (\\0)");
        return -1;
    }
    tt_conf_node *n = node_new(L, TT_CONF_SCALAR, mark);
    if (n == NULL)
        return -1;
    /* anything but a plain scalar was written as a string on purpose:
     * 'x', "x", and the block forms | and > */
    n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;

    /* keys are names, not values: they are not expanded */
    if (is_value_position(L) && memchr(text, '$', len) != NULL) {
        size_t badoff;
        const char *why;
        char *expanded = tt_expand_env(text, &badoff, &why);
        if (expanded == NULL) {
            error_at(L, MARK(mark), "%s", why);
            return -1;
        }
        n->value = tt_arena_strdup(L->arena, expanded);
        free(expanded);
    } else {
        n->value = tt_arena_strndup(L->arena, text, len);
    }
    if (n->value == NULL) {
        oom(L);
        return -1;
    }
    n->len = strlen(n->value);
    return attach(L, n, mark);
}

static int on_container_start(loader *L, tt_conf_type type, yaml_mark_t mark)
{
    if (L->depth == TT_YAML_MAX_DEPTH) {
        error_at(L, MARK(mark), "nested more than %d levels deep; a config needs far fewer",
                 TT_YAML_MAX_DEPTH);
        return -1;
    }
    tt_conf_node *n = node_new(L, type, mark);
    if (n == NULL || attach(L, n, mark) < 0)
        return -1;
    L->stack[L->depth++] = (frame){ .node = n };
    return 0;
}

/* qsort order for duplicate detection: by text, then by position */
static int cmp_key(const void *pa, const void *pb)
{
    const tt_conf_node *a = *(tt_conf_node *const *)pa, *b = *(tt_conf_node *const *)pb;
    int c = strcmp(a->value, b->value);
    if (c != 0)
        return c;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    return (a->col > b->col) - (a->col < b->col);
}

/* libyaml accepts a key twice and a reader would take either; we name the
 * first repeat in document order.  Sorting keeps huge maps cheap. */
static int check_duplicates(loader *L, frame *f)
{
    if (f->n < 2)
        return 0;
    tt_conf_node **sorted = malloc(f->n * sizeof(*sorted));
    if (sorted == NULL) {
        oom(L);
        return -1;
    }
    memcpy(sorted, f->keys, f->n * sizeof(*sorted));
    qsort(sorted, f->n, sizeof(*sorted), cmp_key);

    const tt_conf_node *dup = NULL;
    for (size_t i = 1; i < f->n; i++) {
        const tt_conf_node *k = sorted[i];
        if (strcmp(sorted[i - 1]->value, k->value) != 0)
            continue;
        if (dup == NULL || k->line < dup->line || (k->line == dup->line && k->col < dup->col))
            dup = k;
        /* later members of the same group come after k in document order */
        while (i + 1 < f->n && strcmp(sorted[i + 1]->value, k->value) == 0)
            i++;
    }
    free(sorted);
    if (dup != NULL) {
        error_at(L, dup->line, dup->col, "'%s' appears twice in this map; keep one", dup->value);
        return -1;
    }
    return 0;
}

static int on_container_end(loader *L)
{
    frame *f = &L->stack[L->depth - 1];
    tt_conf_node *n = f->node;

    if (n->type == TT_CONF_MAP && check_duplicates(L, f) < 0)
        return -1;
    if (f->n > 0) {
        n->items = tt_arena_alloc(L->arena, f->n * sizeof(*n->items));
        if (n->items == NULL) {
            oom(L);
            return -1;
        }
        memcpy(n->items, f->items, f->n * sizeof(*n->items));
        if (n->type == TT_CONF_MAP) {
            n->keys = tt_arena_alloc(L->arena, f->n * sizeof(*n->keys));
            if (n->keys == NULL) {
                oom(L);
                return -1;
            }
            memcpy(n->keys, f->keys, f->n * sizeof(*n->keys));
        }
    }
    n->n = f->n;
    free(f->keys);
    free(f->items);
    L->depth--;
    return 0;
}

/* libyaml reports reader errors (bad UTF-8, control characters) by byte
 * offset only; turn it into a line and a column counted in characters. */
static void offset_to_mark(const loader *L, size_t offset, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    if (offset > L->len)
        offset = L->len;
    for (size_t i = 0; i < offset; i++) {
        unsigned char c = (unsigned char)L->text[i];
        if (c == '\n') {
            (*line)++;
            *col = 1;
        } else if ((c & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

static void syntax_error(loader *L, const yaml_parser_t *p)
{
    const char *problem = p->problem ? p->problem : "unknown problem";

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        oom(L);
        return;
    case YAML_READER_ERROR: {
        unsigned line, col;
        /* a Latin-1 file is the usual cause; say how to fix it */
        const char *hint = strstr(problem, "UTF-8") ? "; save the file as UTF-8" : "";
        offset_to_mark(L, p->problem_offset, &line, &col);
        if (p->problem_value != -1)
            error_at(L, line, col, "YAML syntax error: %s (byte 0x%02X)%s", problem,
                     (unsigned)p->problem_value & 0xFF, hint);
        else
            error_at(L, line, col, "YAML syntax error: %s%s", problem, hint);
        return;
    }
    default:
        if (p->context != NULL)
            error_at(L, MARK(p->problem_mark), "YAML syntax error: %s (%s)", problem, p->context);
        else
            error_at(L, MARK(p->problem_mark), "YAML syntax error: %s", problem);
        return;
    }
}

static int on_event(loader *L, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (L->documents++ > 0) {
            error_at(L, MARK(ev->start_mark),
                     "a second YAML document; a config file holds one (remove this '---')");
            return -1;
        }
        return 0;
    case YAML_SCALAR_EVENT:
        return on_scalar(L, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_container_start(L, TT_CONF_SEQ, ev->start_mark);
    case YAML_MAPPING_START_EVENT:
        return on_container_start(L, TT_CONF_MAP, ev->start_mark);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_container_end(L);
    case YAML_ALIAS_EVENT:
        error_at(L, MARK(ev->start_mark),
                 "YAML aliases (*%s) are not supported; write the value out in full",
                 (const char *)ev->data.alias.anchor);
        return -1;
    default:
        return 0;
    }
}

static int is_null_scalar(const tt_conf_node *n)
{
    return n->type == TT_CONF_SCALAR && !n->quoted
        && (n->len == 0 || strcmp(n->value, "~") == 0 || strcasecmp(n->value, "null") == 0);
}

tt_conf_node *tt_yaml_load_string(tt_arena *a, const char *name,
                                  const char *text, size_t len, tt_errbuf *err)
{
    loader L = { .arena = a, .text = text, .len = len, .err = err };
    yaml_parser_t parser;
    int failed = 0, done = 0;

    err->msg[0] = '\0';
    L.file = tt_arena_strdup(a, name);
    if (L.file == NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s: out of memory", name);
        return NULL;
    }
    if (!yaml_parser_initialize(&parser)) {
        oom(&L);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

    while (!done && !failed) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            syntax_error(&L, &parser);
            failed = 1;
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        failed = on_event(&L, &ev) < 0;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);

    /* on an error, containers still open hold scratch arrays */
    for (size_t i = 0; i < L.depth; i++) {
        free(L.stack[i].keys);
        free(L.stack[i].items);
    }
    if (failed)
        return NULL;

    /* an empty file (or one with only comments, or just "---") is an empty
     * map, so the core can say which key is missing */
    if (L.root == NULL || is_null_scalar(L.root)) {
        yaml_mark_t start = { 0 };
        L.root = node_new(&L, TT_CONF_MAP, start);
    }
    return L.root;
}

/* Whole file in one malloc'ed, NUL-terminated buffer. */
static char *read_file(const char *file, size_t *len, tt_errbuf *err)
{
    struct stat st;
    int fd = open(file, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(err->msg, sizeof(err->msg), "%s: cannot open: %s", file, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err->msg, sizeof(err->msg), "%s: cannot open: %s", file, strerror(EISDIR));
        close(fd);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n + 1 == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err->msg, sizeof(err->msg), "%s: cannot read: %s", file, strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (buf == NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s: out of memory", file);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

tt_conf_node *tt_yaml_load(tt_arena *a, const char *file, tt_errbuf *err)
{
    size_t len;
    char *text = read_file(file, &len, err);

    if (text == NULL)
        return NULL;
    tt_conf_node *root = tt_yaml_load_string(a, file, text, len, err);
    free(text);
    return root;
}
