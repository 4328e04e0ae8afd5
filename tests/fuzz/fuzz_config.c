/* libFuzzer harness for the config loader.
 *
 * Any bytes go through the YAML loader, the value accessors, and then the
 * whole core loader (modules stand-ins only, nothing dlopen'ed).  Beyond
 * "no crash, no leak", it checks what a user relies on: every node has a
 * place in the file, and every error names the file first.
 *
 *   ./configure --enable-fuzz CC=clang && make tests/fuzz/fuzz_config
 *   ./tests/fuzz/fuzz_config -max_total_time=60 tests/fuzz/corpus/config
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "config/config.h"

#define NAME "fuzz.yaml"

static void check_error(const tt_errbuf *err)
{
    if (memchr(err->msg, '\0', sizeof(err->msg)) == NULL)
        abort();                        /* unterminated */
    if (strncmp(err->msg, NAME ":", sizeof(NAME)) != 0)
        abort();                        /* an error that does not say where */
}

/* The accessors on whatever the input holds: they must fail cleanly. */
static void try_accessors(const tt_conf_node *n)
{
    tt_errbuf err;
    uint64_t u;
    tt_rate rate;
    long l;
    int b;
    const char *s;

    if (tt_conf_size(n, &u, &err) != 0)
        check_error(&err);
    if (tt_conf_duration(n, &u, &err) != 0)
        check_error(&err);
    if (tt_conf_rate(n, &rate, &err) != 0)
        check_error(&err);
    if (tt_conf_int(n, -1000, 1000, &l, &err) != 0)
        check_error(&err);
    if (tt_conf_bool(n, &b, &err) != 0)
        check_error(&err);
    if (tt_conf_string(n, &s, &err) != 0)
        check_error(&err);
    if (tt_conf_path(n, &s, &err) != 0)
        check_error(&err);
}

/* Nesting is bounded by the loader, so recursion is safe here. */
static void check_tree(const tt_conf_node *n)
{
    static const char *const known[] = { "workers", "servers", "listen", "routes", NULL };
    tt_errbuf err;

    if (n->file == NULL || strcmp(n->file, NAME) != 0 || n->line == 0 || n->col == 0)
        abort();
    try_accessors(n);
    switch (n->type) {
    case TT_CONF_SCALAR:
        if (n->value == NULL || strlen(n->value) != n->len)
            abort();
        return;
    case TT_CONF_MAP:
        if (tt_conf_check_keys(n, "a map", known, &err) != 0)
            check_error(&err);
        for (size_t i = 0; i < n->n; i++) {
            const tt_conf_node *k = n->keys[i];
            if (k->type != TT_CONF_SCALAR || tt_yaml_key_of(n->items[i]) != k)
                abort();
            if (tt_conf_get(n, k->value) != n->items[i])
                abort();
            check_tree(k);
            check_tree(n->items[i]);
        }
        return;
    case TT_CONF_SEQ:
        if (n->keys != NULL)
            abort();
        for (size_t i = 0; i < n->n; i++) {
            if (tt_yaml_key_of(n->items[i]) != NULL)
                abort();
            check_tree(n->items[i]);
        }
        return;
    }
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* so that ${TT_FUZZ} in the corpus expands instead of failing */
    setenv("TT_FUZZ", "8080", 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tt_errbuf err;
    tt_arena *a = tt_arena_create(4096);

    if (a == NULL)
        return 0;
    tt_conf_set_current(a, "/fuzz");
    tt_conf_node *root = tt_yaml_load_string(a, NAME, (const char *)data, size, &err);
    if (root != NULL)
        check_tree(root);
    else
        check_error(&err);
    tt_conf_set_current(NULL, NULL);
    tt_arena_destroy(a);

    tt_config *cf = tt_config_load_text(NAME, (const char *)data, size, 0, &err);
    if (cf != NULL)
        tt_config_free(cf);
    else if (memchr(err.msg, '\0', sizeof(err.msg)) == NULL || err.msg[0] == '\0')
        abort();
    return 0;
}
