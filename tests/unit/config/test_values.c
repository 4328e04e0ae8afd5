/* Config values, the YAML loader and the accessors: what a user writes, and
 * the exact message a user reads when it is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "config/config.h"

/* ---- sizes ---- */

static uint64_t size_ok(const char *s)
{
    uint64_t v = 12345;
    if (tt_parse_size(s, &v) != 0)
        fail_msg("size '%s' was refused", s);
    return v;
}

static void size_bad(const char *s)
{
    uint64_t v = 12345;
    if (tt_parse_size(s, &v) == 0)
        fail_msg("size '%s' was accepted as %llu", s, (unsigned long long)v);
    assert_int_equal(v, 12345);
}

static void test_size(void **state)
{
    (void)state;
    assert_int_equal(size_ok("0"), 0);
    assert_int_equal(size_ok("512"), 512);
    assert_int_equal(size_ok("512B"), 512);
    assert_int_equal(size_ok("8K"), 8192);
    assert_int_equal(size_ok("8k"), 8192);
    assert_int_equal(size_ok("8KB"), 8192);
    assert_int_equal(size_ok("8kb"), 8192);
    assert_int_equal(size_ok("8KiB"), 8192);
    assert_int_equal(size_ok("16KB"), 16 * 1024);
    assert_int_equal(size_ok("10MB"), 10 * 1024 * 1024);
    assert_int_equal(size_ok("10M"), 10 * 1024 * 1024);
    assert_int_equal(size_ok("1GB"), 1024 * 1024 * 1024);
    assert_int_equal(size_ok("2GiB"), 2ULL << 30);
    assert_int_equal(size_ok("3TB"), 3ULL << 40);
    assert_int_equal(size_ok("007"), 7);
    assert_true(size_ok("18446744073709551615") == UINT64_MAX);
    assert_true(size_ok("16777215TB") == 16777215ULL << 40);
}

static void test_size_rejects(void **state)
{
    (void)state;
    size_bad("");
    size_bad("10 MB");
    size_bad(" 10MB");
    size_bad("10MB ");
    size_bad("-1");
    size_bad("+1");
    size_bad("1.5MB");
    size_bad("MB");
    size_bad("10XB");
    size_bad("10MBs");
    size_bad("10KBB");
    size_bad("0x10");
    size_bad("18446744073709551616");     /* 2^64 */
    size_bad("99999999999999999999999");
    size_bad("16777216TB");               /* 2^24 * 2^40 = 2^64 */
    size_bad("17179869184GB");            /* 2^34 * 2^30 */
    uint64_t v;
    assert_int_equal(tt_parse_size(NULL, &v), -1);
}

/* ---- durations ---- */

static uint64_t dur_ok(const char *s)
{
    uint64_t v = 12345;
    if (tt_parse_duration(s, &v) != 0)
        fail_msg("duration '%s' was refused", s);
    return v;
}

static void dur_bad(const char *s)
{
    uint64_t v = 12345;
    if (tt_parse_duration(s, &v) == 0)
        fail_msg("duration '%s' was accepted as %llu ms", s, (unsigned long long)v);
}

static void test_duration(void **state)
{
    (void)state;
    assert_int_equal(dur_ok("500ms"), 500);
    assert_int_equal(dur_ok("10s"), 10000);
    assert_int_equal(dur_ok("5m"), 300000);
    assert_int_equal(dur_ok("1h"), 3600000);
    assert_int_equal(dur_ok("6h"), 6 * 3600000);
    assert_int_equal(dur_ok("1d"), 86400000);
    assert_int_equal(dur_ok("30"), 30000);            /* bare number: seconds */
    assert_int_equal(dur_ok("0"), 0);
    assert_int_equal(dur_ok("0s"), 0);
    assert_int_equal(dur_ok("1h30m"), 5400000);
    assert_int_equal(dur_ok("1m30s"), 90000);
    assert_int_equal(dur_ok("2s500ms"), 2500);
    assert_int_equal(dur_ok("1d2h3m4s5ms"), 86400000 + 2 * 3600000 + 3 * 60000 + 4000 + 5);
    assert_true(dur_ok("18446744073709551615ms") == UINT64_MAX);
    assert_true(dur_ok("213503982334d") == 213503982334ULL * 86400000);
}

static void test_duration_rejects(void **state)
{
    (void)state;
    dur_bad("");
    dur_bad("10 s");
    dur_bad(" 10s");
    dur_bad("1.5s");
    dur_bad("-1s");
    dur_bad("10S");          /* upper case: "M" would read as months elsewhere */
    dur_bad("10x");
    dur_bad("10sec");
    dur_bad("10mss");
    dur_bad("s");
    dur_bad("ms");
    dur_bad("30m1h");        /* units must shrink */
    dur_bad("1m1m");
    dur_bad("1h30");         /* a bare number only on its own */
    dur_bad("18446744073709552s");
    dur_bad("213503982335d");
    dur_bad("213503982334d999999999h");   /* each part fits, the sum does not */
    dur_bad("18446744073709551616");
    uint64_t v;
    assert_int_equal(tt_parse_duration(NULL, &v), -1);
}

/* ---- rates ---- */

static tt_rate rate_ok(const char *s)
{
    tt_rate r = { -1, -1 };
    if (tt_parse_rate(s, &r) != 0)
        fail_msg("rate '%s' was refused", s);
    return r;
}

static void rate_bad(const char *s)
{
    tt_rate r = { -1, -1 };
    if (tt_parse_rate(s, &r) == 0)
        fail_msg("rate '%s' was accepted", s);
}

static void test_rate(void **state)
{
    (void)state;
    tt_rate r = rate_ok("512KB/s");
    assert_int_equal(r.bytes, 1);
    assert_true(r.per_sec == 524288.0);

    r = rate_ok("1MB/s");
    assert_int_equal(r.bytes, 1);
    assert_true(r.per_sec == 1048576.0);

    r = rate_ok("1MB/m");
    assert_int_equal(r.bytes, 1);
    assert_float_equal(r.per_sec, 1048576.0 / 60, 1e-9);

    r = rate_ok("512B/s");
    assert_int_equal(r.bytes, 1);
    assert_true(r.per_sec == 512.0);

    r = rate_ok("20/s");
    assert_int_equal(r.bytes, 0);
    assert_true(r.per_sec == 20.0);

    r = rate_ok("600/m");
    assert_int_equal(r.bytes, 0);
    assert_true(r.per_sec == 10.0);

    r = rate_ok("3600/h");
    assert_int_equal(r.bytes, 0);
    assert_true(r.per_sec == 1.0);

    r = rate_ok("1/h");
    assert_float_equal(r.per_sec, 1.0 / 3600, 1e-12);
}

static void test_rate_rejects(void **state)
{
    (void)state;
    rate_bad("");
    rate_bad("20");
    rate_bad("512KB");
    rate_bad("/s");
    rate_bad("20/");
    rate_bad("20/x");
    rate_bad("20/sec");
    rate_bad("20 /s");
    rate_bad("20/ s");
    rate_bad("1.5/s");
    rate_bad("-1/s");
    rate_bad("10 MB/s");
    rate_bad("20/s/s");
    rate_bad("99999999999999999999/s");
    tt_rate r;
    assert_int_equal(tt_parse_rate(NULL, &r), -1);
}

/* ---- booleans ---- */

static void test_bool(void **state)
{
    (void)state;
    static const char *const yes[] = { "true", "TRUE", "True", "yes", "Yes", "on", "ON", "oN" };
    static const char *const no[] = { "false", "False", "no", "NO", "off", "Off" };
    static const char *const bad[] = { "", "1", "0", "y", "n", "tru", "truee", " true", "enabled" };
    int v;

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        v = -1;
        assert_int_equal(tt_parse_bool(yes[i], &v), 0);
        assert_int_equal(v, 1);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        v = -1;
        assert_int_equal(tt_parse_bool(no[i], &v), 0);
        assert_int_equal(v, 0);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = -1;
        if (tt_parse_bool(bad[i], &v) == 0)
            fail_msg("'%s' was taken for a boolean", bad[i]);
        assert_int_equal(v, -1);
    }
}

/* ---- ${ENV} ---- */

static void expect_expansion(const char *in, const char *want)
{
    size_t off = 999;
    const char *why = NULL;
    char *out = tt_expand_env(in, &off, &why);
    if (out == NULL)
        fail_msg("'%s' failed: %s", in, why);
    assert_string_equal(out, want);
    free(out);
}

static void expect_env_error(const char *in, size_t want_off, const char *want_why)
{
    size_t off = 999;
    const char *why = NULL;
    char *out = tt_expand_env(in, &off, &why);
    if (out != NULL)
        fail_msg("'%s' expanded to '%s'", in, out);
    assert_int_equal(off, want_off);
    assert_string_equal(why, want_why);
}

static void test_env(void **state)
{
    (void)state;
    setenv("TT_TEST_PORT", "8080", 1);
    setenv("TT_TEST_EMPTY", "", 1);
    unsetenv("TT_TEST_UNSET");

    expect_expansion("", "");
    expect_expansion("plain", "plain");
    expect_expansion("${TT_TEST_PORT}", "8080");
    expect_expansion("127.0.0.1:${TT_TEST_PORT}", "127.0.0.1:8080");
    expect_expansion("${TT_TEST_PORT}${TT_TEST_PORT}", "80808080");
    expect_expansion("${TT_TEST_UNSET:-9000}", "9000");
    expect_expansion("${TT_TEST_UNSET:-}", "");
    expect_expansion("${TT_TEST_UNSET:-a b/c}", "a b/c");
    expect_expansion("${TT_TEST_PORT:-9000}", "8080");
    expect_expansion("${TT_TEST_EMPTY:-9000}", "9000");   /* as in sh: empty takes the default */
    expect_expansion("[${TT_TEST_EMPTY}]", "[]");
    /* a "$" that starts no reference stays as written */
    expect_expansion("$", "$");
    expect_expansion("pa$$word", "pa$$word");
    expect_expansion("$$", "$$");
    expect_expansion("a$b", "a$b");
    expect_expansion("cost: 5$", "cost: 5$");
    expect_expansion("$${TT_TEST_PORT}", "$${TT_TEST_PORT}");
    expect_expansion("$$$", "$$$");
}

static void test_env_errors(void **state)
{
    (void)state;
    unsetenv("TT_TEST_UNSET");
    expect_env_error("${TT_TEST_UNSET}", 0,
                     "environment variable TT_TEST_UNSET is not set; "
                     "set it or write ${TT_TEST_UNSET:-default}");
    expect_env_error("http://${TT_TEST_UNSET}/", 7,
                     "environment variable TT_TEST_UNSET is not set; "
                     "set it or write ${TT_TEST_UNSET:-default}");
    expect_env_error("${TT_TEST_PORT", 0,
                     "'${' has no closing '}'; write ${NAME} or ${NAME:-default}");
    expect_env_error("ab${", 2, "'${' has no closing '}'; write ${NAME} or ${NAME:-default}");
    expect_env_error("${}", 0,
                     "'${' must be followed by a variable name, as in ${NAME} or ${NAME:-default}");
    expect_env_error("${1X}", 0,
                     "'${' must be followed by a variable name, as in ${NAME} or ${NAME:-default}");
    expect_env_error("x ${A B}", 2,
                     "a variable reference is ${NAME} or ${NAME:-default}; "
                     "a name has only letters, digits and '_'");
    expect_env_error("${A:default}", 0,
                     "a variable reference is ${NAME} or ${NAME:-default}; "
                     "a name has only letters, digits and '_'");
}

/* ---- suggestions ---- */

static void test_edit_distance(void **state)
{
    (void)state;
    assert_int_equal(tt_edit_distance("", ""), 0);
    assert_int_equal(tt_edit_distance("abc", ""), 3);
    assert_int_equal(tt_edit_distance("", "abc"), 3);
    assert_int_equal(tt_edit_distance("same", "same"), 0);
    assert_int_equal(tt_edit_distance("kitten", "sitting"), 3);
    assert_int_equal(tt_edit_distance("workers", "wokers"), 1);
    assert_int_equal(tt_edit_distance("flaw", "lawn"), 2);
    assert_int_equal(tt_edit_distance("ab", "ba"), 2);

    /* longer than the stack row */
    char a[201], b[201];
    memset(a, 'a', 200);
    a[200] = '\0';
    memcpy(b, a, sizeof(a));
    b[100] = 'b';
    assert_int_equal(tt_edit_distance(a, b), 1);
    assert_int_equal(tt_edit_distance(a, "aaa"), 197);
}

static void test_suggest(void **state)
{
    (void)state;
    static const char *const top[] = {
        "modules", "module_path", "workers", "daemon", "pid_file", "user",
        "shutdown_timeout", "error_log", "log_level", "access_log", "servers", NULL
    };
    assert_string_equal(tt_suggest("wokers", top), "workers");
    assert_string_equal(tt_suggest("worker", top), "workers");
    assert_string_equal(tt_suggest("Workers", top), "workers");
    assert_string_equal(tt_suggest("demon", top), "daemon");
    assert_string_equal(tt_suggest("usr", top), "user");
    assert_string_equal(tt_suggest("server", top), "servers");
    assert_string_equal(tt_suggest("shutdown_timout", top), "shutdown_timeout");
    assert_string_equal(tt_suggest("acces_logs", top), "access_log");
    assert_null(tt_suggest("xyz", top));
    assert_null(tt_suggest("listen", top));
    assert_null(tt_suggest("completely_different", top));

    static const char *const two[] = { "cd", "ab", NULL };
    assert_null(tt_suggest("xy", two));          /* 2 edits on 2 letters is no typo */
    assert_string_equal(tt_suggest("ac", two), "ab");
    static const char *const tie[] = { "bat", "cat", NULL };
    assert_string_equal(tt_suggest("at", tie), "bat");   /* the first of equals */
    assert_null(tt_suggest("anything", NULL));
}

/* ---- the YAML loader ---- */

typedef struct {
    tt_arena *arena;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->arena = tt_arena_create(4096);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tt_conf_set_current(NULL, NULL);
    tt_arena_destroy(f->arena);
    free(f);
    return 0;
}

static tt_conf_node *load(void **state, const char *text)
{
    fixture *f = *state;
    tt_errbuf err;
    tt_conf_node *root = tt_yaml_load_string(f->arena, "t.yaml", text, strlen(text), &err);
    if (root == NULL)
        fail_msg("did not load: %s", err.msg);
    return root;
}

static void load_fails(void **state, const char *text, const char *want)
{
    fixture *f = *state;
    tt_errbuf err;
    memset(err.msg, 'x', sizeof(err.msg));
    tt_conf_node *root = tt_yaml_load_string(f->arena, "t.yaml", text, strlen(text), &err);
    assert_null(root);
    assert_string_equal(err.msg, want);
}

static void test_yaml_tree(void **state)
{
    const char *text =
        "workers: 2\n"
        "limits:\n"
        "  max_body_size: 10MB\n"
        "servers:\n"
        "  - listen: [\"127.0.0.1:8080\", '[::1]:8080']\n"
        "    names: [example.com]\n";
    tt_conf_node *root = load(state, text);

    assert_int_equal(root->type, TT_CONF_MAP);
    assert_int_equal(root->n, 3);
    assert_string_equal(root->file, "t.yaml");
    assert_string_equal(root->keys[0]->value, "workers");
    assert_int_equal(root->keys[0]->line, 1);
    assert_int_equal(root->keys[0]->col, 1);

    const tt_conf_node *w = tt_conf_get(root, "workers");
    assert_non_null(w);
    assert_int_equal(w->type, TT_CONF_SCALAR);
    assert_string_equal(w->value, "2");
    assert_int_equal(w->len, 1);
    assert_int_equal(w->quoted, 0);
    assert_int_equal(w->line, 1);
    assert_int_equal(w->col, 10);
    assert_ptr_equal(tt_yaml_key_of(w), root->keys[0]);
    assert_null(tt_yaml_key_of(root));

    const tt_conf_node *limits = tt_conf_get(root, "limits");
    assert_int_equal(limits->type, TT_CONF_MAP);
    const tt_conf_node *mbs = tt_conf_get(limits, "max_body_size");
    assert_string_equal(mbs->value, "10MB");
    assert_int_equal(mbs->line, 3);
    assert_int_equal(mbs->col, 18);
    assert_string_equal(tt_yaml_key_of(mbs)->value, "max_body_size");

    const tt_conf_node *servers = tt_conf_get(root, "servers");
    assert_int_equal(servers->type, TT_CONF_SEQ);
    assert_int_equal(servers->n, 1);
    assert_null(servers->keys);
    const tt_conf_node *s0 = servers->items[0];
    assert_int_equal(s0->type, TT_CONF_MAP);
    assert_int_equal(s0->line, 5);
    assert_int_equal(s0->col, 5);
    assert_null(tt_yaml_key_of(s0));
    const tt_conf_node *listen = tt_conf_get(s0, "listen");
    assert_int_equal(listen->type, TT_CONF_SEQ);
    assert_int_equal(listen->n, 2);
    assert_string_equal(listen->items[0]->value, "127.0.0.1:8080");
    assert_int_equal(listen->items[0]->quoted, 1);
    assert_int_equal(listen->items[0]->col, 14);
    assert_string_equal(listen->items[1]->value, "[::1]:8080");
    assert_int_equal(listen->items[1]->quoted, 1);
    assert_null(tt_yaml_key_of(listen->items[0]));

    assert_null(tt_conf_get(root, "missing"));
    assert_null(tt_conf_get(w, "workers"));            /* not a map */
    assert_null(tt_conf_get(NULL, "workers"));
}

static void test_yaml_scalars(void **state)
{
    const char *text =
        "a: \"x\"\n"
        "b: x\n"
        "c: |\n"
        "  two\n"
        "  lines\n"
        "d:\n"
        "e: ''\n"
        "f: \"tab\\there\"\n";
    tt_conf_node *root = load(state, text);
    const tt_conf_node *n;

    n = tt_conf_get(root, "a");
    assert_string_equal(n->value, "x");
    assert_int_equal(n->quoted, 1);
    n = tt_conf_get(root, "b");
    assert_int_equal(n->quoted, 0);
    n = tt_conf_get(root, "c");
    assert_string_equal(n->value, "two\nlines\n");
    assert_int_equal(n->len, 10);
    assert_int_equal(n->quoted, 1);
    n = tt_conf_get(root, "d");
    assert_int_equal(n->type, TT_CONF_SCALAR);
    assert_string_equal(n->value, "");
    assert_int_equal(n->quoted, 0);
    n = tt_conf_get(root, "e");
    assert_string_equal(n->value, "");
    assert_int_equal(n->quoted, 1);
    n = tt_conf_get(root, "f");
    assert_string_equal(n->value, "tab\there");
}

static void test_yaml_env(void **state)
{
    setenv("TT_TEST_PORT", "8080", 1);
    unsetenv("TT_TEST_UNSET");
    tt_conf_node *root = load(state,
        "listen: \"127.0.0.1:${TT_TEST_PORT}\"\n"
        "port: ${TT_TEST_UNSET:-9000}\n"
        "${TT_TEST_PORT}: keys are names, not expanded\n"
        "list: [a, '${TT_TEST_PORT}']\n");
    assert_string_equal(tt_conf_get(root, "listen")->value, "127.0.0.1:8080");
    const tt_conf_node *port = tt_conf_get(root, "port");
    assert_string_equal(port->value, "9000");
    assert_int_equal(port->len, 4);
    assert_non_null(tt_conf_get(root, "${TT_TEST_PORT}"));
    assert_string_equal(tt_conf_get(root, "list")->items[1]->value, "8080");

    load_fails(state, "a: 1\nb: 2\nport:   ${TT_TEST_UNSET}\n",
               "t.yaml:3:9: environment variable TT_TEST_UNSET is not set; "
               "set it or write ${TT_TEST_UNSET:-default}");
    load_fails(state, "list:\n  - ok\n  - \"${TT_TEST_UNSET\"\n",
               "t.yaml:3:5: '${' has no closing '}'; write ${NAME} or ${NAME:-default}");
}

static void test_yaml_duplicates(void **state)
{
    load_fails(state, "workers: 1\ndaemon: false\nworkers: 2\n",
               "t.yaml:3:1: 'workers' appears twice in this map; keep one");
    /* the first repeat in the file is named, whatever the key */
    load_fails(state, "b: 1\na: 1\nb: 2\na: 2\nb: 3\n",
               "t.yaml:3:1: 'b' appears twice in this map; keep one");
    load_fails(state, "limits: {max_body_size: 1MB, max_body_size: 2MB}\n",
               "t.yaml:1:30: 'max_body_size' appears twice in this map; keep one");
    load_fails(state, "servers:\n  - listen: a\n    names: b\n    listen: c\n",
               "t.yaml:4:5: 'listen' appears twice in this map; keep one");
    /* the same key in two different maps is fine */
    tt_conf_node *root = load(state, "a: {x: 1}\nb: {x: 2}\n");
    assert_int_equal(root->n, 2);
}

static void test_yaml_refused(void **state)
{
    load_fails(state, "? [a, b]\n: 1\n",
               "t.yaml:1:3: a map key must be a single word such as 'workers', not a list");
    load_fails(state, "{x: 1}: 1\n",
               "t.yaml:1:1: a map key must be a single word such as 'workers', not a map");
    load_fails(state, "base: &b 10s\ntimeout: *b\n",
               "t.yaml:2:10: YAML aliases (*b) are not supported; write the value out in full");
    load_fails(state, "a: 1\n---\nb: 2\n",
               "t.yaml:2:1: a second YAML document; a config file holds one (remove this '---')");
    load_fails(state, "a: \"x\\0y\"\n",
               "t.yaml:1:4: a value cannot contain a NUL character (\\0)");

    char deep[300];
    memset(deep, '[', 200);
    deep[200] = '\0';
    load_fails(state, deep, "t.yaml:1:65: nested more than 64 levels deep; a config needs far fewer");

    /* an anchor alone is harmless */
    tt_conf_node *root = load(state, "a: &x 1\n");
    assert_string_equal(tt_conf_get(root, "a")->value, "1");
}

static void test_yaml_syntax_errors(void **state)
{
    load_fails(state, "a: [1, 2\n",
               "t.yaml:2:1: YAML syntax error: did not find expected ',' or ']' "
               "(while parsing a flow sequence)");
    load_fails(state, "a: b: c\n",
               "t.yaml:1:5: YAML syntax error: mapping values are not allowed in this context");
    load_fails(state, "servers:\n  - listen: a\n   names: b\n",
               "t.yaml:3:4: YAML syntax error: did not find expected '-' indicator "
               "(while parsing a block collection)");
    load_fails(state, "a: \"open\n",
               "t.yaml:2:1: YAML syntax error: found unexpected end of stream "
               "(while scanning a quoted scalar)");
    load_fails(state, "a: 1\nbb: \xff\n",
               "t.yaml:2:5: YAML syntax error: invalid leading UTF-8 octet (byte 0xFF); "
               "save the file as UTF-8");
    /* Latin-1 "café": the octet after 0xE9 is where UTF-8 breaks */
    load_fails(state, "names: [caf\xe9.example]\n",
               "t.yaml:1:13: YAML syntax error: invalid trailing UTF-8 octet (byte 0x2E); "
               "save the file as UTF-8");
    load_fails(state, "a: \"\xc3\xa9\" \x01\n",
               "t.yaml:1:8: YAML syntax error: control characters are not allowed (byte 0x01)");
}

static void test_yaml_empty(void **state)
{
    static const char *const empties[] = { "", "\n\n", "# only a comment\n", "---\n", "~\n" };
    for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        tt_conf_node *root = load(state, empties[i]);
        assert_int_equal(root->type, TT_CONF_MAP);
        assert_int_equal(root->n, 0);
        assert_string_equal(root->file, "t.yaml");
        assert_int_equal(root->line, 1);
        assert_int_equal(root->col, 1);
        assert_null(tt_conf_get(root, "servers"));
    }
    /* a root that is not a map is left for the core to judge */
    tt_conf_node *root = load(state, "- a\n- b\n");
    assert_int_equal(root->type, TT_CONF_SEQ);
}

/* not NUL-terminated: the loader must stop at len */
static void test_yaml_length(void **state)
{
    fixture *f = *state;
    tt_errbuf err;
    const char text[] = "a: 1\nb: [";
    tt_conf_node *root = tt_yaml_load_string(f->arena, "t.yaml", text, 5, &err);
    assert_non_null(root);
    assert_int_equal(root->n, 1);
}

static void test_yaml_files(void **state)
{
    fixture *f = *state;
    tt_errbuf err;

    assert_null(tt_yaml_load(f->arena, "/nonexistent/tutti.yaml", &err));
    assert_string_equal(err.msg, "/nonexistent/tutti.yaml: cannot open: No such file or directory");
    assert_null(tt_yaml_load(f->arena, "/", &err));
    assert_string_equal(err.msg, "/: cannot open: Is a directory");

    char path[] = "/tmp/tt-test-values-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    /* bigger than one read, to cover the growing buffer */
    FILE *fp = fdopen(fd, "w");
    for (int i = 0; i < 500; i++)
        fprintf(fp, "key%03d: value number %d\n", i, i);
    fprintf(fp, "last: [1, 2\n");
    fclose(fp);

    assert_null(tt_yaml_load(f->arena, path, &err));
    char want[256];
    snprintf(want, sizeof(want), "%s:502:1: YAML syntax error: did not find expected ',' or ']' "
             "(while parsing a flow sequence)", path);
    assert_string_equal(err.msg, want);

    fp = fopen(path, "w");
    for (int i = 0; i < 500; i++)
        fprintf(fp, "key%03d: value number %d\n", i, i);
    fclose(fp);
    tt_conf_node *root = tt_yaml_load(f->arena, path, &err);
    assert_non_null(root);
    assert_int_equal(root->n, 500);
    assert_string_equal(root->file, path);
    const tt_conf_node *v = tt_conf_get(root, "key499");
    assert_string_equal(v->value, "value number 499");
    assert_int_equal(v->line, 500);
    assert_int_equal(v->col, 9);
    unlink(path);
}

/* ---- accessors: the messages a user reads ---- */

static const tt_conf_node *value_of(void **state, const char *text, const char *key)
{
    tt_conf_node *root = load(state, text);
    const tt_conf_node *n = tt_conf_get(root, key);
    if (n == NULL)
        fail_msg("no '%s' in %s", key, text);
    return n;
}

static void test_conf_size_message(void **state)
{
    tt_errbuf err;
    uint64_t v = 0;

    /* the example of CONFIG.md: quote key and value, then say what to write */
    tt_conf_node *root = load(state, "limits:\n  max_body_size: 10 MB\n");
    const tt_conf_node *n = tt_conf_get(tt_conf_get(root, "limits"), "max_body_size");
    assert_int_equal(tt_conf_size(n, &v, &err), -1);
    assert_string_equal(err.msg, "t.yaml:2:18: 'max_body_size: 10 MB': expected a size such as 10MB");

    root = load(state, "servers:\n  - limits: {max_body_size: 10 MB}\n");
    n = tt_conf_get(tt_conf_get(tt_conf_get(root, "servers")->items[0], "limits"), "max_body_size");
    assert_int_equal(tt_conf_size(n, &v, &err), -1);
    assert_string_equal(err.msg, "t.yaml:2:29: 'max_body_size: 10 MB': expected a size such as 10MB");

    n = value_of(state, "max_body_size: 100MB\n", "max_body_size");
    assert_int_equal(tt_conf_size(n, &v, &err), 0);
    assert_int_equal(v, 100 * 1024 * 1024);

    n = value_of(state, "max_body_size: [1, 2]\n", "max_body_size");
    assert_int_equal(tt_conf_size(n, &v, &err), -1);
    assert_string_equal(err.msg, "t.yaml:1:16: 'max_body_size': expected a size such as 10MB, not a list");

    n = value_of(state, "max_body_size:\n", "max_body_size");
    assert_int_equal(tt_conf_size(n, &v, &err), -1);
    assert_string_equal(err.msg, "t.yaml:1:15: 'max_body_size' has no value: expected a size such as 10MB");

    /* a list item has no key to quote */
    n = value_of(state, "sizes: [1KB, 2 KB]\n", "sizes");
    assert_int_equal(tt_conf_size(n->items[0], &v, &err), 0);
    assert_int_equal(v, 1024);
    assert_int_equal(tt_conf_size(n->items[1], &v, &err), -1);
    assert_string_equal(err.msg, "t.yaml:1:14: '2 KB': expected a size such as 10MB");
}

static void test_conf_duration_rate_messages(void **state)
{
    tt_errbuf err;
    uint64_t ms = 0;
    tt_rate r;

    const tt_conf_node *n = value_of(state, "keepalive:\n  timeout: 15s\n", "keepalive");
    assert_int_equal(tt_conf_duration(tt_conf_get(n, "timeout"), &ms, &err), 0);
    assert_int_equal(ms, 15000);

    n = value_of(state, "shutdown_timeout: 30 sec\n", "shutdown_timeout");
    assert_int_equal(tt_conf_duration(n, &ms, &err), -1);
    assert_string_equal(err.msg, "t.yaml:1:19: 'shutdown_timeout: 30 sec': "
                                 "expected a duration such as 10s, 500ms, 5m");

    n = value_of(state, "download: 512KB/s\n", "download");
    assert_int_equal(tt_conf_rate(n, &r, &err), 0);
    assert_int_equal(r.bytes, 1);
    assert_true(r.per_sec == 524288.0);

    n = value_of(state, "download: 512KB\n", "download");
    assert_int_equal(tt_conf_rate(n, &r, &err), -1);
    assert_string_equal(err.msg, "t.yaml:1:11: 'download: 512KB': expected a rate such as 512KB/s or 20/s");

    n = value_of(state, "requests: {a: 1}\n", "requests");
    assert_int_equal(tt_conf_rate(n, &r, &err), -1);
    assert_string_equal(err.msg, "t.yaml:1:11: 'requests': expected a rate such as 512KB/s or 20/s, not a map");
}

static void test_conf_scalars(void **state)
{
    tt_errbuf err;
    const char *s;
    int b;
    long l;

    const tt_conf_node *n = value_of(state, "user: www-data\n", "user");
    assert_int_equal(tt_conf_string(n, &s, &err), 0);
    assert_string_equal(s, "www-data");
    n = value_of(state, "python:\n  home: ./venv\n", "python");
    assert_int_equal(tt_conf_string(n, &s, &err), -1);
    assert_string_equal(err.msg, "t.yaml:2:3: 'python': expected a string, not a map");

    n = value_of(state, "daemon: Yes\n", "daemon");
    assert_int_equal(tt_conf_bool(n, &b, &err), 0);
    assert_int_equal(b, 1);
    n = value_of(state, "daemon: maybe\n", "daemon");
    assert_int_equal(tt_conf_bool(n, &b, &err), -1);
    assert_string_equal(err.msg, "t.yaml:1:9: 'daemon: maybe': expected true or false");

    n = value_of(state, "workers: 4\n", "workers");
    assert_int_equal(tt_conf_int(n, 1, 1024, &l, &err), 0);
    assert_int_equal(l, 4);
    n = value_of(state, "burst: -3\n", "burst");
    assert_int_equal(tt_conf_int(n, -5, 5, &l, &err), 0);
    assert_int_equal(l, -3);

    static const char *const bad_ints[] = {
        "workers: 0\n", "workers: 1025\n", "workers: 2x\n", "workers: 1.5\n",
        "workers: 0x10\n", "workers: 99999999999999999999\n", "workers: ' 3'\n", "workers: +\n",
    };
    static const char *const shown[] = {
        "0", "1025", "2x", "1.5", "0x10", "99999999999999999999", " 3", "+",
    };
    for (size_t i = 0; i < sizeof(bad_ints) / sizeof(bad_ints[0]); i++) {
        char want[200];
        n = value_of(state, bad_ints[i], "workers");
        assert_int_equal(tt_conf_int(n, 1, 1024, &l, &err), -1);
        snprintf(want, sizeof(want), "t.yaml:1:%u: 'workers: %s': expected a whole number from 1 to 1024",
                 n->col, shown[i]);
        assert_string_equal(err.msg, want);
    }

    /* a long value is quoted by its first 80 characters */
    char text[200];
    snprintf(text, sizeof(text), "daemon: %0120d\n", 0);
    n = value_of(state, text, "daemon");
    assert_int_equal(tt_conf_bool(n, &b, &err), -1);
    char want[200];
    snprintf(want, sizeof(want), "t.yaml:1:9: 'daemon: %080d...': expected true or false", 0);
    assert_string_equal(err.msg, want);
}

static void test_conf_check_keys(void **state)
{
    static const char *const top[] = { "workers", "daemon", "servers", NULL };
    static const char *const ka[] = { "timeout", "max_requests", NULL };
    tt_errbuf err;

    tt_conf_node *root = load(state, "workers: 2\nservers: []\n");
    assert_int_equal(tt_conf_check_keys(root, "the top level", top, &err), 0);

    root = load(state, "workers: 2\nwokers: 3\n");
    assert_int_equal(tt_conf_check_keys(root, "the top level", top, &err), -1);
    assert_string_equal(err.msg, "t.yaml:2:1: unknown key 'wokers' in the top level; "
                                 "did you mean 'workers'?");

    root = load(state, "keepalive:\n  timeout: 5s\n  idle: 3\n");
    assert_int_equal(tt_conf_check_keys(tt_conf_get(root, "keepalive"), "keepalive", ka, &err), -1);
    assert_string_equal(err.msg, "t.yaml:3:3: unknown key 'idle' in keepalive; "
                                 "known keys: timeout, max_requests");

    root = load(state, "keepalive: 5\n");
    assert_int_equal(tt_conf_check_keys(tt_conf_get(root, "keepalive"), "keepalive", ka, &err), -1);
    assert_string_equal(err.msg, "t.yaml:1:12: 'keepalive' must be a map of keys such as timeout: ...");

    root = load(state, "keepalive: [timeout]\n");
    assert_int_equal(tt_conf_check_keys(tt_conf_get(root, "keepalive"), "keepalive", ka, &err), -1);
    assert_string_equal(err.msg, "t.yaml:1:12: 'keepalive' must be a map of keys such as timeout: ...");

    /* `keepalive:` with every line below commented out: all defaults */
    root = load(state, "keepalive:\n#  timeout: 5s\n");
    assert_int_equal(tt_conf_check_keys(tt_conf_get(root, "keepalive"), "keepalive", ka, &err), 0);
    assert_int_equal(tt_conf_check_keys(NULL, "keepalive", ka, &err), 0);

    static const char *const none[] = { NULL };
    root = load(state, "hello: {x: 1}\n");
    assert_int_equal(tt_conf_check_keys(tt_conf_get(root, "hello"), "hello", none, &err), -1);
    assert_string_equal(err.msg, "t.yaml:1:9: unknown key 'x' in hello; it takes no keys");
}

static void test_conf_path_alloc(void **state)
{
    fixture *f = *state;
    tt_errbuf err;
    const char *p;

    tt_conf_set_current(f->arena, "/etc/tutti");
    static const struct { const char *value, *want; } cases[] = {
        { "./public", "/etc/tutti/public" },
        { "public", "/etc/tutti/public" },
        { "logs/access.log", "/etc/tutti/logs/access.log" },
        { ".//./certs/a.pem", "/etc/tutti/certs/a.pem" },
        { "../shared", "/etc/tutti/../shared" },
        { "/srv/www", "/srv/www" },
        { ".", "/etc/tutti" },
        { "./", "/etc/tutti" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[100];
        snprintf(text, sizeof(text), "root: '%s'\n", cases[i].value);
        const tt_conf_node *n = value_of(state, text, "root");
        assert_int_equal(tt_conf_path(n, &p, &err), 0);
        assert_string_equal(p, cases[i].want);
    }
    tt_conf_set_current(f->arena, "/");
    assert_int_equal(tt_conf_path(value_of(state, "root: www\n", "root"), &p, &err), 0);
    assert_string_equal(p, "/www");

    const tt_conf_node *n = value_of(state, "root: ''\n", "root");
    assert_int_equal(tt_conf_path(n, &p, &err), -1);
    assert_string_equal(err.msg, "t.yaml:1:7: 'root' has no value: expected a path");
    n = value_of(state, "root: [a]\n", "root");
    assert_int_equal(tt_conf_path(n, &p, &err), -1);
    assert_string_equal(err.msg, "t.yaml:1:7: 'root': expected a path, not a list");

    unsigned char *mem = tt_conf_alloc(64);
    assert_non_null(mem);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(mem[i], 0);
    tt_conf_set_current(NULL, NULL);
    assert_null(tt_conf_alloc(16));
}

static void test_conf_error(void **state)
{
    (void)state;
    tt_errbuf err;
    tt_conf_node at = { .file = "dir/tutti.yaml", .line = 14, .col = 9 };

    tt_conf_error(&err, &at, "route has two handlers, '%s' and '%s'; a route has exactly one",
                  "static", "wsgi");
    assert_string_equal(err.msg, "dir/tutti.yaml:14:9: route has two handlers, 'static' and "
                                 "'wsgi'; a route has exactly one");
    tt_conf_error(&err, NULL, "no node: %d", 7);
    assert_string_equal(err.msg, "no node: 7");

    /* the message may quote err itself */
    snprintf(err.msg, sizeof(err.msg), "inner");
    tt_conf_error(&err, &at, "outer: %s", err.msg);
    assert_string_equal(err.msg, "dir/tutti.yaml:14:9: outer: inner");

    /* too long: cut at the buffer, still terminated, prefix kept */
    char big[3000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tt_conf_error(&err, &at, "%s", big);
    assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
    assert_memory_equal(err.msg, "dir/tutti.yaml:14:9: zzz", 24);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_size_rejects),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_duration_rejects),
        cmocka_unit_test(test_rate),
        cmocka_unit_test(test_rate_rejects),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_env_errors),
        cmocka_unit_test(test_edit_distance),
        cmocka_unit_test(test_suggest),
        cmocka_unit_test_setup_teardown(test_yaml_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_scalars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_syntax_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yaml_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conf_size_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conf_duration_rate_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conf_scalars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conf_check_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conf_path_alloc, setup, teardown),
        cmocka_unit_test(test_conf_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
