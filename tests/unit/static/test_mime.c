/* tt_mime: the built-in table, mime.types parsing, which entry wins, the
 * charset rule, and how a file name becomes an extension. */
#define _POSIX_C_SOURCE 200809L         /* mkstemp, for a real file to load */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "mime.h"

/* ---- an allocator like the config's: zeroed, freed all at once ---- */

typedef struct block {
    struct block *next;
    max_align_t   align[];      /* what the caller gets */
} block;

static block *blocks;
static long   allocs_left = -1; /* -1: never fail */

static void *track_alloc(size_t size)
{
    block *b;

    if (allocs_left == 0)
        return NULL;
    if (allocs_left > 0)
        allocs_left--;
    b = calloc(1, sizeof *b + size);
    if (b == NULL)
        return NULL;
    b->next = blocks;
    blocks = b;
    return b->align;
}

static void free_all(void)
{
    while (blocks) {
        block *next = blocks->next;

        free(blocks);
        blocks = next;
    }
    allocs_left = -1;
}

static int teardown(void **state)
{
    (void)state;
    free_all();
    return 0;
}

static tt_mime *new_table(void)
{
    tt_mime *m = tt_mime_new(track_alloc);

    assert_non_null(m);
    return m;
}

static tt_mime *builtin_table(void)
{
    tt_mime *m = new_table();

    assert_int_equal(tt_mime_add_builtin(m), 0);
    return m;
}

/* Look a name up from a copy with no NUL after it (ASan sees overreads). */
static const char *lookup(const tt_mime *m, const char *name)
{
    size_t len = strlen(name);
    char *c = malloc(len ? len : 1);
    const char *type;

    assert_non_null(c);
    memcpy(c, name, len);
    type = tt_mime_lookup(m, c, len);
    free(c);
    return type;
}

static void expect_type(const tt_mime *m, const char *name, const char *want)
{
    const char *got = lookup(m, name);

    if (got == NULL)
        fail_msg("%s: unknown, expected %s", name, want);
    if (strcmp(got, want) != 0)
        fail_msg("%s: got \"%s\", expected \"%s\"", name, got, want);
}

static void expect_unknown(const tt_mime *m, const char *name)
{
    const char *got = lookup(m, name);

    if (got != NULL)
        fail_msg("%s: got \"%s\", expected none", name, got);
}

static int load_text(tt_mime *m, const char *text)
{
    size_t len = strlen(text);
    char *c = malloc(len ? len : 1);
    int rc, saved;

    assert_non_null(c);
    memcpy(c, text, len);
    rc = tt_mime_load_text(m, c, len);
    saved = errno;                      /* the tests look at it after -1 */
    free(c);
    errno = saved;
    return rc;
}

/* ---- the built-in table ---- */

#define UTF8 "; charset=utf-8"

static const struct {
    const char *ext, *type;
} web_types[] = {
    { "html", "text/html" UTF8 },           { "htm", "text/html" UTF8 },
    { "css", "text/css" UTF8 },             { "js", "text/javascript" UTF8 },
    { "mjs", "text/javascript" UTF8 },      { "json", "application/json" UTF8 },
    { "txt", "text/plain" UTF8 },           { "xml", "application/xml" UTF8 },
    { "svg", "image/svg+xml" UTF8 },        { "png", "image/png" },
    { "jpg", "image/jpeg" },                { "jpeg", "image/jpeg" },
    { "gif", "image/gif" },                 { "webp", "image/webp" },
    { "avif", "image/avif" },               { "ico", "image/vnd.microsoft.icon" },
    { "bmp", "image/bmp" },                 { "woff", "font/woff" },
    { "woff2", "font/woff2" },              { "ttf", "font/ttf" },
    { "otf", "font/otf" },                  { "eot", "application/vnd.ms-fontobject" },
    { "pdf", "application/pdf" },           { "wasm", "application/wasm" },
    { "mp4", "video/mp4" },                 { "webm", "video/webm" },
    { "mp3", "audio/mpeg" },                { "ogg", "audio/ogg" },
    { "oga", "audio/ogg" },                 { "ogv", "video/ogg" },
    { "wav", "audio/x-wav" },               { "flac", "audio/flac" },
    { "m4a", "audio/mp4" },                 { "zip", "application/zip" },
    { "gz", "application/gzip" },           { "tgz", "application/x-gtar-compressed" },
    { "br", "application/x-brotli" },       { "tar", "application/x-tar" },
    { "bz2", "application/x-bzip2" },       { "xz", "application/x-xz" },
    { "7z", "application/x-7z-compressed" },
    { "map", "application/json" UTF8 },     { "csv", "text/csv" UTF8 },
    { "md", "text/markdown" UTF8 },         { "ics", "text/calendar" UTF8 },
    { "rss", "application/x-rss+xml" },     { "atom", "application/atom+xml" },
    { "yaml", "application/yaml" },         { "yml", "application/yaml" },
    { "toml", "application/toml" },
    { "xhtml", "application/xhtml+xml" },   { "webmanifest", "application/manifest+json" },
};

static void test_builtin(void **state)
{
    tt_mime *m = builtin_table();
    size_t i;

    (void)state;
    for (i = 0; i < sizeof web_types / sizeof web_types[0]; i++) {
        char name[64];

        snprintf(name, sizeof name, "file.%s", web_types[i].ext);
        expect_type(m, name, web_types[i].type);
    }
    expect_unknown(m, "file.nosuchext");
    expect_unknown(m, "file.exe");
}

/* What Debian's file says, the built-in table says too */
static void test_builtin_agrees_with_system_file(void **state)
{
    tt_mime *builtin = builtin_table(), *file = new_table();
    size_t i, compared = 0;

    (void)state;
    if (tt_mime_load_file(file, "/etc/mime.types") != 0)
        skip();
    for (i = 0; i < sizeof web_types / sizeof web_types[0]; i++) {
        char name[64];
        const char *from_file;

        snprintf(name, sizeof name, "x.%s", web_types[i].ext);
        from_file = lookup(file, name);
        if (from_file == NULL)
            continue;
        compared++;
        if (strcmp(from_file, lookup(builtin, name)) != 0)
            fail_msg("%s: /etc/mime.types says \"%s\", built-in \"%s\"", name, from_file,
                     lookup(builtin, name));
    }
    assert_true(compared > 30);
}

static void test_builtin_keeps_existing(void **state)
{
    tt_mime *m = new_table();

    (void)state;
    assert_int_equal(tt_mime_set(m, "js", "application/javascript"), 0);
    assert_int_equal(tt_mime_set(m, "png", "image/x-png"), 0);
    assert_int_equal(tt_mime_add_builtin(m), 0);
    expect_type(m, "a.js", "application/javascript" UTF8);
    expect_type(m, "a.png", "image/x-png");
    expect_type(m, "a.css", "text/css" UTF8);
    /* twice is harmless */
    assert_int_equal(tt_mime_add_builtin(m), 0);
    expect_type(m, "a.png", "image/x-png");
}

/* ---- mime.types text ---- */

static void test_load_text(void **state)
{
    tt_mime *m = new_table();

    (void)state;
    assert_int_equal(load_text(m,
        "# a comment line\n"
        "\n"
        "text/x-one\t\t\tone\n"
        "text/x-two   two   deux  \t zwei\n"
        "application/x-three\tthree # trailing comment four\n"
        "   \t  \n"
        "  application/x-indented\tind\n"
        "image/x-crlf\tcrlf\tcr\r\n"
        "application/x-noext\n"
        "#application/x-off\toff\n"
        "noslash\tbad\n"
        "application/x-dots\tcwl.json ok\n"
        "application/x-last\tlast"), 0);
    expect_type(m, "a.one", "text/x-one" UTF8);
    expect_type(m, "a.two", "text/x-two" UTF8);
    expect_type(m, "a.deux", "text/x-two" UTF8);
    expect_type(m, "a.zwei", "text/x-two" UTF8);
    expect_type(m, "a.three", "application/x-three");
    expect_unknown(m, "a.trailing");
    expect_unknown(m, "a.four");
    expect_type(m, "a.ind", "application/x-indented");
    expect_type(m, "a.crlf", "image/x-crlf");
    expect_type(m, "a.cr", "image/x-crlf");             /* no \r in the extension */
    expect_unknown(m, "a.off");
    expect_unknown(m, "a.bad");
    expect_unknown(m, "a.noslash");
    expect_type(m, "a.ok", "application/x-dots");
    expect_unknown(m, "a.cwl.json");
    expect_unknown(m, "a.json");
    expect_type(m, "a.last", "application/x-last");     /* no newline at the end */
}

static void test_load_text_edge_cases(void **state)
{
    tt_mime *m = new_table();

    (void)state;
    assert_int_equal(tt_mime_load_text(m, "", 0), 0);
    assert_int_equal(load_text(m, "\n\n\n"), 0);
    assert_int_equal(load_text(m, "#"), 0);
    assert_int_equal(load_text(m, "text/plain"), 0);
    assert_int_equal(load_text(m, "text/plain\t"), 0);
    assert_int_equal(load_text(m, "text/x\tA#b"), 0);
    expect_type(m, "x.a", "text/x" UTF8);
    expect_unknown(m, "x.b");
    /* a length that ends mid-line: the rest is not read */
    assert_int_equal(tt_mime_load_text(m, "image/x-cut\tcut\tcutmore", 15), 0);
    expect_type(m, "x.cut", "image/x-cut");
    expect_unknown(m, "x.cutmore");
    /* control bytes in a type: the line is skipped */
    assert_int_equal(load_text(m, "image/x\x01y\tctl\n"), 0);
    expect_unknown(m, "x.ctl");
}

static void test_load_keeps_earlier(void **state)
{
    tt_mime *m = new_table();

    (void)state;
    assert_int_equal(tt_mime_set(m, "html", "application/xhtml+xml"), 0);
    assert_int_equal(load_text(m, "text/html\thtml htm\n"), 0);
    expect_type(m, "a.html", "application/xhtml+xml");
    expect_type(m, "a.htm", "text/html" UTF8);
    /* within one text and across texts, the first line wins */
    assert_int_equal(load_text(m, "audio/x-first\tdup\naudio/x-second\tdup\n"), 0);
    expect_type(m, "a.dup", "audio/x-first");
    assert_int_equal(load_text(m, "audio/x-third\tdup DUP\n"), 0);
    expect_type(m, "a.dup", "audio/x-first");
    /* then the built-ins under it all */
    assert_int_equal(tt_mime_add_builtin(m), 0);
    expect_type(m, "a.htm", "text/html" UTF8);
    expect_type(m, "a.css", "text/css" UTF8);
}

static void test_set_replaces(void **state)
{
    tt_mime *m = builtin_table();

    (void)state;
    assert_int_equal(tt_mime_set(m, "js", "application/javascript"), 0);
    expect_type(m, "app.js", "application/javascript" UTF8);
    assert_int_equal(tt_mime_set(m, "JS", "text/x-other"), 0);
    expect_type(m, "app.js", "text/x-other" UTF8);
    assert_int_equal(tt_mime_set(m, "new", "application/x-new"), 0);
    expect_type(m, "a.new", "application/x-new");
    /* set after load replaces too */
    assert_int_equal(load_text(m, "image/x-a\taaa\n"), 0);
    assert_int_equal(tt_mime_set(m, "aaa", "image/x-b"), 0);
    expect_type(m, "x.aaa", "image/x-b");
    /* the caller's strings may go away: the table has its own copies */
    {
        char ext[] = "tmp", type[] = "image/x-tmp";

        assert_int_equal(tt_mime_set(m, ext, type), 0);
        memset(ext, 'z', 3);
        memset(type, 'z', sizeof type - 1);
        expect_type(m, "a.tmp", "image/x-tmp");
    }
}

static void test_set_invalid(void **state)
{
    tt_mime *m = builtin_table();
    char long_ext[80];

    (void)state;
    memset(long_ext, 'a', sizeof long_ext - 1);
    long_ext[sizeof long_ext - 1] = '\0';
    errno = 0;
    assert_int_equal(tt_mime_set(m, "", "text/plain"), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(tt_mime_set(m, "tar.gz", "application/x-tgz"), -1);
    assert_int_equal(tt_mime_set(m, ".html", "text/plain"), -1);
    assert_int_equal(tt_mime_set(m, "a/b", "text/plain"), -1);
    assert_int_equal(tt_mime_set(m, "a b", "text/plain"), -1);
    assert_int_equal(tt_mime_set(m, long_ext, "text/plain"), -1);
    assert_int_equal(tt_mime_set(m, "x", ""), -1);
    assert_int_equal(tt_mime_set(m, "x", "plain"), -1);
    assert_int_equal(tt_mime_set(m, "x", "text/plain\r\nX-Evil: 1"), -1);
    assert_int_equal(tt_mime_set(m, "html", "text/plain\n"), -1);
    assert_int_equal(tt_mime_set(m, NULL, "text/plain"), -1);
    assert_int_equal(tt_mime_set(m, "x", NULL), -1);
    assert_int_equal(tt_mime_set(NULL, "x", "text/plain"), -1);
    expect_type(m, "a.html", "text/html" UTF8);         /* untouched */
    expect_unknown(m, "a.x");
    /* 63 bytes is the longest extension */
    long_ext[63] = '\0';
    assert_int_equal(tt_mime_set(m, long_ext, "image/x-long"), 0);
    {
        char name[80] = "a.";

        strcat(name, long_ext);
        expect_type(m, name, "image/x-long");
    }
}

/* ---- the charset rule ---- */

static void test_charset(void **state)
{
    tt_mime *m = new_table();
    static const struct {
        const char *type, *want;
    } cases[] = {
        { "text/html", "text/html" UTF8 },
        { "text/plain", "text/plain" UTF8 },
        { "text/x-anything", "text/x-anything" UTF8 },
        { "TEXT/HTML", "TEXT/HTML" UTF8 },
        { "application/javascript", "application/javascript" UTF8 },
        { "application/json", "application/json" UTF8 },
        { "Application/JSON", "Application/JSON" UTF8 },
        { "application/xml", "application/xml" UTF8 },
        { "image/svg+xml", "image/svg+xml" UTF8 },
        /* not text, or already with parameters */
        { "text/html; charset=iso-8859-1", "text/html; charset=iso-8859-1" },
        { "text/plain;charset=utf-8", "text/plain;charset=utf-8" },
        { "image/png", "image/png" },
        { "application/octet-stream", "application/octet-stream" },
        { "application/jsonx", "application/jsonx" },
        { "application/json-seq", "application/json-seq" },
        { "application/ld+json", "application/ld+json" },
        { "application/atom+xml", "application/atom+xml" },
        { "image/svg", "image/svg" },
        { "application/javascript2", "application/javascript2" },
        { "xtext/html", "xtext/html" },
        { "text/", "text/" },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(tt_mime_set(m, "c", cases[i].type), 0);
        expect_type(m, "f.c", cases[i].want);
    }
    /* the same rule for types from a file */
    assert_int_equal(load_text(m, "text/x-f\tf1\nimage/svg+xml\tf2\nimage/x-f\tf3\n"), 0);
    expect_type(m, "a.f1", "text/x-f" UTF8);
    expect_type(m, "a.f2", "image/svg+xml" UTF8);
    expect_type(m, "a.f3", "image/x-f");
}

/* ---- names and extensions ---- */

static void test_case_insensitive(void **state)
{
    tt_mime *m = builtin_table();

    (void)state;
    expect_type(m, "INDEX.HTML", "text/html" UTF8);
    expect_type(m, "a.Html", "text/html" UTF8);
    expect_type(m, "photo.JPG", "image/jpeg");
    expect_type(m, "font.WoFf2", "font/woff2");
    assert_int_equal(tt_mime_set(m, "MiXeD", "image/x-mixed"), 0);
    expect_type(m, "a.mixed", "image/x-mixed");
    expect_type(m, "a.MIXED", "image/x-mixed");
    assert_int_equal(load_text(m, "image/x-up\tUPPER\n"), 0);
    expect_type(m, "a.upper", "image/x-up");
    expect_type(m, "a.Upper", "image/x-up");
    /* only ASCII letters fold */
    assert_int_equal(tt_mime_set(m, "\xc3\xa9", "image/x-e-acute"), 0);
    expect_type(m, "a.\xc3\xa9", "image/x-e-acute");
    expect_unknown(m, "a.\xc3\x89");
}

static void test_paths(void **state)
{
    tt_mime *m = builtin_table();

    (void)state;
    expect_type(m, "/var/www/index.html", "text/html" UTF8);
    expect_type(m, "/var/www.d/site/style.css", "text/css" UTF8);
    expect_type(m, "archive.tar.gz", "application/gzip");
    expect_type(m, "a..html", "text/html" UTF8);
    expect_type(m, "/a.b.c/d.e.png", "image/png");
    expect_type(m, ".well-known/x.json", "application/json" UTF8);
    expect_type(m, "/.hidden/x.txt", "text/plain" UTF8);
    expect_type(m, ".x.txt", "text/plain" UTF8);        /* a hidden file with one */
    expect_type(m, "./a.css", "text/css" UTF8);
}

static void test_no_extension(void **state)
{
    tt_mime *m = builtin_table();

    (void)state;
    assert_int_equal(tt_mime_set(m, "bashrc", "text/x-shell"), 0);
    expect_unknown(m, "");
    expect_unknown(m, "Makefile");
    expect_unknown(m, "/usr/share/doc/README");
    expect_unknown(m, ".bashrc");                       /* a leading dot only */
    expect_unknown(m, "/home/u/.bashrc");
    expect_unknown(m, "..bashrc");
    expect_unknown(m, "a/..bashrc");
    expect_unknown(m, "file.");                         /* trailing dot */
    expect_unknown(m, "file.html.");
    expect_unknown(m, "/");
    expect_unknown(m, ".");
    expect_unknown(m, "..");
    expect_unknown(m, "a/.");
    expect_unknown(m, "a/..");
    expect_unknown(m, "dir.html/");                     /* the dot is not in the last segment */
    expect_unknown(m, "dir.html/file");
    expect_unknown(m, "/x.css/.bashrc");
    expect_unknown(m, "index.html-");
    expect_unknown(m, "index.htm l");
    /* longer than any extension can be */
    {
        char name[200] = "a.";

        memset(name + 2, 'x', 100);
        name[102] = '\0';
        expect_unknown(m, name);
    }
    assert_null(tt_mime_lookup(m, NULL, 0));
    assert_null(tt_mime_lookup(NULL, "a.html", 6));
}

/* The length is the name: what follows it is not read */
static void test_length_bounds(void **state)
{
    tt_mime *m = builtin_table();
    static const char name[] = "x.jsonp.htmlx";

    (void)state;
    assert_string_equal(tt_mime_lookup(m, name, 6), "application/json" UTF8);
    assert_null(tt_mime_lookup(m, name, 7));
    assert_string_equal(tt_mime_lookup(m, name, 12), "text/html" UTF8);
    assert_null(tt_mime_lookup(m, name, 13));
    assert_null(tt_mime_lookup(m, name, 5));            /* "x.jso" */
    assert_null(tt_mime_lookup(m, name, 0));
    expect_type(m, "x.js", "text/javascript" UTF8);
}

/* ---- size and memory ---- */

static void test_many_entries(void **state)
{
    tt_mime *m = builtin_table();
    char ext[16], name[32], type[32];
    int i;

    (void)state;
    for (i = 0; i < 20000; i++) {
        snprintf(ext, sizeof ext, "e%d", i);
        snprintf(type, sizeof type, "image/x-%d", i);
        assert_int_equal(tt_mime_set(m, ext, type), 0);
    }
    for (i = 0; i < 20000; i++) {
        snprintf(name, sizeof name, "f.E%d", i);
        snprintf(type, sizeof type, "image/x-%d", i);
        expect_type(m, name, type);
    }
    expect_type(m, "a.html", "text/html" UTF8);
    expect_unknown(m, "a.e20000");
}

static void test_load_file(void **state)
{
    tt_mime *m = new_table();
    char path[] = "/tmp/tt-test-mime-XXXXXX";
    static const char text[] = "# test\nfont/x-test\ttst tst2\ntext/x-test\ttxtt\n";
    int fd;

    (void)state;
    errno = 0;
    assert_int_equal(tt_mime_load_file(m, "/nonexistent/mime.types"), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(tt_mime_load_file(m, "/tmp"), -1);     /* a directory */
    assert_int_not_equal(errno, 0);

    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    assert_int_equal(tt_mime_load_file(m, path), 0);
    unlink(path);
    expect_type(m, "a.tst", "font/x-test");
    expect_type(m, "a.tst2", "font/x-test");
    expect_type(m, "a.txtt", "text/x-test" UTF8);
}

/* Out of memory at every possible allocation: a clean failure each time,
 * and the table still answers for what did go in. */
static void test_out_of_memory(void **state)
{
    long n;
    int succeeded = 0;

    (void)state;
    allocs_left = 0;
    assert_null(tt_mime_new(track_alloc));
    allocs_left = 1;
    assert_null(tt_mime_new(track_alloc));
    assert_null(tt_mime_new(NULL));
    free_all();

    for (n = 2; !succeeded; n++) {
        tt_mime *m;
        int rc;

        allocs_left = n;
        m = tt_mime_new(track_alloc);
        assert_non_null(m);
        rc = tt_mime_add_builtin(m);
        if (rc == 0)
            rc = load_text(m, "text/x-a\ta b c d e f g h\n");
        if (rc == 0)
            rc = tt_mime_set(m, "z", "image/x-z");
        if (rc == 0)
            succeeded = 1;
        else
            assert_int_equal(errno, ENOMEM);
        allocs_left = -1;
        /* whatever is in answers right; lookups never allocate */
        if (lookup(m, "a.html") != NULL)
            expect_type(m, "a.html", "text/html" UTF8);
        if (lookup(m, "a.h") != NULL)
            expect_type(m, "a.h", "text/x-a" UTF8);
        free_all();
        assert_true(n < 10000);
    }
}

static void test_lookup_does_not_allocate(void **state)
{
    tt_mime *m = builtin_table();

    (void)state;
    allocs_left = 0;
    expect_type(m, "a.html", "text/html" UTF8);
    expect_unknown(m, "a.nope");
    allocs_left = -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_builtin, teardown),
        cmocka_unit_test_teardown(test_builtin_agrees_with_system_file, teardown),
        cmocka_unit_test_teardown(test_builtin_keeps_existing, teardown),
        cmocka_unit_test_teardown(test_load_text, teardown),
        cmocka_unit_test_teardown(test_load_text_edge_cases, teardown),
        cmocka_unit_test_teardown(test_load_keeps_earlier, teardown),
        cmocka_unit_test_teardown(test_set_replaces, teardown),
        cmocka_unit_test_teardown(test_set_invalid, teardown),
        cmocka_unit_test_teardown(test_charset, teardown),
        cmocka_unit_test_teardown(test_case_insensitive, teardown),
        cmocka_unit_test_teardown(test_paths, teardown),
        cmocka_unit_test_teardown(test_no_extension, teardown),
        cmocka_unit_test_teardown(test_length_bounds, teardown),
        cmocka_unit_test_teardown(test_many_entries, teardown),
        cmocka_unit_test_teardown(test_load_file, teardown),
        cmocka_unit_test_teardown(test_out_of_memory, teardown),
        cmocka_unit_test_teardown(test_lookup_does_not_allocate, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
