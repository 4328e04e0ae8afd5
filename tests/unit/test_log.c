/* The error log and the access log as an operator reads them: line shapes,
 * levels, escaping, truncation, and reopening files on USR1. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "log.h"

/* 2026-11-22 10:00:00 UTC */
#define T_2026 ((uint64_t)1795341600 * 1000000)

static char tmpdir[64];

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void assert_matches(const char *text, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE), 0);
    int rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    if (rc != 0)
        fail_msg("%s\ndoes not match\n%s", text, pattern);
}

static char *tmp_path(const char *name)
{
    static char path[2][128];
    static int which;
    which ^= 1;
    snprintf(path[which], sizeof(path[which]), "%s/%s", tmpdir, name);
    return path[which];
}

static tt_access_entry entry(void)
{
    tt_access_entry e = {
        .remote_addr = "127.0.0.1", .method = "GET", .target = "/x", .version = 11,
        .status = 200, .bytes_sent = 13, .referer = NULL, .user_agent = "curl/7.88.1",
        .host = "example.com", .duration_usec = 1000, .time_usec = T_2026,
    };
    return e;
}

static const char *fmt(const tt_access_entry *e, int format)
{
    static char buf[8192];
    size_t n = tt_access_format(e, format, buf, sizeof(buf));
    assert_int_equal(n, strlen(buf));
    return buf;
}

/* ---- error log ---- */

/* Before tt_log_open (and after tt_log_close) lines go to stderr, at info. */
static void test_stderr_before_open(void **state)
{
    (void)state;
    char *path = tmp_path("stderr.txt");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int saved = dup(STDERR_FILENO);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);

    tt_log_set_ident("master");
    tt_log(TT_LOG_DEBUG, "not shown");
    tt_log(TT_LOG_INFO, "starting %s", "up");

    dup2(saved, STDERR_FILENO);
    close(saved);
    char pat[128];
    snprintf(pat, sizeof(pat), "^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} "
             "\\[info\\] %ld#master: starting up\n$", (long)getpid());
    assert_matches(slurp(path), pat);
}

static void test_level_names(void **state)
{
    (void)state;
    assert_int_equal(tt_log_level_from("debug"), TT_LOG_DEBUG);
    assert_int_equal(tt_log_level_from("info"), TT_LOG_INFO);
    assert_int_equal(tt_log_level_from("warn"), TT_LOG_WARN);
    assert_int_equal(tt_log_level_from("error"), TT_LOG_ERROR);
    assert_int_equal(tt_log_level_from("verbose"), -1);
    assert_int_equal(tt_log_level_from(""), -1);
}

static void test_error_log_file(void **state)
{
    (void)state;
    char *path = tmp_path("error.log");
    tt_config cf = { .error_log = path, .log_level = TT_LOG_WARN };
    tt_errbuf err = { "" };

    unlink(path);
    assert_int_equal(tt_log_open(&cf, &err), 0);
    tt_log_set_ident("worker 1");
    tt_log(TT_LOG_INFO, "below the level");
    tt_log(TT_LOG_ERROR, "boom %d", 42);
    tt_log(TT_LOG_WARN, "trailing newline is not doubled\n");

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    char pat[256];
    snprintf(pat, sizeof(pat),
             "^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} \\[error\\] %ld#worker 1: boom 42\n"
             "[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} \\[warn\\] %ld#worker 1: "
             "trailing newline is not doubled\n$", (long)getpid(), (long)getpid());
    assert_matches(slurp(path), pat);

    /* a very long message is cut, but still one line */
    char big[10000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tt_log(TT_LOG_ERROR, "%s", big);
    const char *text = slurp(path);
    const char *last = strrchr(text, '[');
    assert_non_null(last);
    assert_string_equal(last + strlen(last) - 2, "x\n");
    tt_log_close();
}

static void test_open_failures(void **state)
{
    (void)state;
    char *path = tmp_path("kept.log");
    tt_config good = { .error_log = path, .log_level = TT_LOG_INFO };
    tt_errbuf err = { "" };

    unlink(path);
    assert_int_equal(tt_log_open(&good, &err), 0);

    tt_config bad = { .error_log = "/nonexistent-dir/e.log", .log_level = TT_LOG_INFO };
    assert_int_equal(tt_log_open(&bad, &err), -1);
    assert_string_equal(err.msg, "cannot open error log /nonexistent-dir/e.log: "
                                 "No such file or directory");

    tt_config bad_access = { .error_log = "stderr", .access_log = tmpdir,
                             .log_level = TT_LOG_INFO };
    assert_int_equal(tt_log_open(&bad_access, &err), -1);
    char want[256];
    snprintf(want, sizeof(want), "cannot open access log %s: Is a directory", tmpdir);
    assert_string_equal(err.msg, want);

    /* a failed open changes nothing: the old error log is still in use */
    tt_log(TT_LOG_ERROR, "still here");
    assert_non_null(strstr(slurp(path), ": still here\n"));
    tt_log_close();
}

static void test_reopen(void **state)
{
    (void)state;
    char elog[128], alog[128], moved_e[160], moved_a[160];
    snprintf(elog, sizeof(elog), "%s", tmp_path("r-error.log"));
    snprintf(alog, sizeof(alog), "%s", tmp_path("r-access.log"));
    snprintf(moved_e, sizeof(moved_e), "%s.1", elog);
    snprintf(moved_a, sizeof(moved_a), "%s.1", alog);
    unlink(elog);
    unlink(alog);

    tt_config cf = { .error_log = elog, .access_log = alog, .log_level = TT_LOG_INFO,
                     .access_log_format = TT_ACCESS_COMBINED };
    tt_errbuf err = { "" };
    assert_int_equal(tt_log_open(&cf, &err), 0);
    tt_access_entry e = entry();

    tt_log(TT_LOG_INFO, "before rotation");
    tt_access_log(&e);
    /* what logrotate does: move the files, then send USR1 */
    assert_int_equal(rename(elog, moved_e), 0);
    assert_int_equal(rename(alog, moved_a), 0);
    tt_log_reopen();
    tt_log(TT_LOG_INFO, "after rotation");
    e.target = "/after";
    tt_access_log(&e);

    assert_non_null(strstr(slurp(moved_e), "before rotation"));
    assert_null(strstr(slurp(moved_e), "after rotation"));
    assert_non_null(strstr(slurp(elog), "after rotation"));
    assert_null(strstr(slurp(elog), "before rotation"));
    assert_string_equal(slurp(moved_a), fmt(&(tt_access_entry){ .remote_addr = "127.0.0.1",
        .method = "GET", .target = "/x", .version = 11, .status = 200, .bytes_sent = 13,
        .user_agent = "curl/7.88.1", .duration_usec = 1000, .time_usec = T_2026 },
        TT_ACCESS_COMBINED));
    assert_string_equal(slurp(alog), fmt(&e, TT_ACCESS_COMBINED));

    /* the path cannot be opened any more: keep the old file, say why there */
    assert_int_equal(rename(elog, moved_e), 0);
    assert_int_equal(mkdir(elog, 0755), 0);
    tt_log_reopen();
    tt_log(TT_LOG_INFO, "kept writing");
    char pat[256];
    snprintf(pat, sizeof(pat), "\\[error\\] [0-9]+#[^:]*: cannot reopen error log %s: "
             "Is a directory; still writing to the old file\n.*kept writing\n$", elog);
    assert_matches(slurp(moved_e), pat);
    rmdir(elog);
    tt_log_close();
    unlink(moved_e);
    unlink(moved_a);
    unlink(alog);
}

/* ---- access log ---- */

static void test_combined(void **state)
{
    (void)state;
    tt_access_entry e = entry();
    assert_string_equal(fmt(&e, TT_ACCESS_COMBINED),
        "127.0.0.1 - - [22/Nov/2026:10:00:00 +0000] \"GET /x HTTP/1.1\" 200 13 \"-\" "
        "\"curl/7.88.1\" 0.001\n");

    e.version = 10;
    e.status = 404;
    e.bytes_sent = 0;
    e.referer = "https://example.com/";
    e.user_agent = NULL;
    e.duration_usec = 61234567;         /* ms precision, not rounded up */
    e.time_usec = T_2026 + 59 * 1000000 + 999999;
    assert_string_equal(fmt(&e, TT_ACCESS_COMBINED),
        "127.0.0.1 - - [22/Nov/2026:10:00:59 +0000] \"GET /x HTTP/1.0\" 404 0 "
        "\"https://example.com/\" \"-\" 61.234\n");

    /* a connection that never sent a readable request */
    tt_access_entry bad = { .remote_addr = "::1", .status = 400, .time_usec = T_2026 };
    assert_string_equal(fmt(&bad, TT_ACCESS_COMBINED),
        "::1 - - [22/Nov/2026:10:00:00 +0000] \"-\" 400 0 \"-\" \"-\" 0.000\n");
}

static void test_combined_local_time(void **state)
{
    (void)state;
    /* the time is local time with its offset, as nginx's $time_local */
    setenv("TZ", "XST-05:30", 1);
    tzset();
    tt_access_entry e = entry();
    e.time_usec = T_2026 + 3600ull * 1000000;   /* a second not cached under UTC */
    assert_non_null(strstr(fmt(&e, TT_ACCESS_COMBINED), "[22/Nov/2026:16:30:00 +0530]"));
    assert_non_null(strstr(fmt(&e, TT_ACCESS_JSON), "\"time\":\"2026-11-22T16:30:00+05:30\""));
    setenv("TZ", "UTC", 1);
    tzset();
}

static void test_combined_escaping(void **state)
{
    (void)state;
    tt_access_entry e = entry();
    e.target = "/a\"b\\c\x01\x7f\xc3\xa9 d";
    e.user_agent = "evil\" 200 0 \"x";
    e.referer = "line\nbreak";
    assert_string_equal(fmt(&e, TT_ACCESS_COMBINED),
        "127.0.0.1 - - [22/Nov/2026:10:00:00 +0000] \"GET /a\\x22b\\x5Cc\\x01\\x7F\\xC3\\xA9 d HTTP/1.1\" "
        "200 13 \"line\\x0Abreak\" \"evil\\x22 200 0 \\x22x\" 0.001\n");
}

static void test_json(void **state)
{
    (void)state;
    tt_access_entry e = entry();
    assert_string_equal(fmt(&e, TT_ACCESS_JSON),
        "{\"time\":\"2026-11-22T10:00:00+00:00\",\"remote_addr\":\"127.0.0.1\","
        "\"method\":\"GET\",\"target\":\"/x\",\"protocol\":\"HTTP/1.1\",\"status\":200,"
        "\"bytes\":13,\"referer\":\"\",\"user_agent\":\"curl/7.88.1\","
        "\"host\":\"example.com\",\"request_time\":0.001}\n");
}

/* Modules' fields (the proxy's upstream_*): after the request time, a
 * value with a space quoted, quotes in a value escaped; JSON keys. */
static void test_module_fields(void **state)
{
    (void)state;
    tt_access_entry e = entry();
    tt_log_field t = { NULL, "upstream_time", "0.003" };
    tt_log_field a = { &t, "upstream_addr", "127.0.0.1:9000, 127.0.0.1:9001" };
    tt_log_field q = { &a, "note", "a\"b" };
    e.fields = &q;
    assert_string_equal(fmt(&e, TT_ACCESS_COMBINED),
        "127.0.0.1 - - [22/Nov/2026:10:00:00 +0000] \"GET /x HTTP/1.1\" 200 13 \"-\" "
        "\"curl/7.88.1\" 0.001 note=a\\x22b "
        "upstream_addr=\"127.0.0.1:9000, 127.0.0.1:9001\" upstream_time=0.003\n");
    e.fields = &a;
    assert_string_equal(fmt(&e, TT_ACCESS_JSON),
        "{\"time\":\"2026-11-22T10:00:00+00:00\",\"remote_addr\":\"127.0.0.1\","
        "\"method\":\"GET\",\"target\":\"/x\",\"protocol\":\"HTTP/1.1\",\"status\":200,"
        "\"bytes\":13,\"referer\":\"\",\"user_agent\":\"curl/7.88.1\","
        "\"host\":\"example.com\",\"request_time\":0.001,"
        "\"upstream_addr\":\"127.0.0.1:9000, 127.0.0.1:9001\",\"upstream_time\":\"0.003\"}\n");
}

static void test_json_escaping(void **state)
{
    (void)state;
    tt_access_entry e = entry();
    /* quote, backslash, controls; valid UTF-8 kept; each byte that is not
     * valid UTF-8 (stray, cut, overlong, surrogate) becomes \u00XX */
    e.target = "/\"\\\n\r\t\x01\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    e.user_agent = "\xff\xc3";
    e.referer = "\xc0\xaf\xed\xa0\x80z";
    e.host = "\xf4\x90\x80\x80";
    const char *line = fmt(&e, TT_ACCESS_JSON);
    assert_non_null(strstr(line,
        "\"target\":\"/\\\"\\\\\\n\\r\\t\\u0001\\u007f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","));
    assert_non_null(strstr(line, "\"user_agent\":\"\\u00ff\\u00c3\","));
    assert_non_null(strstr(line, "\"referer\":\"\\u00c0\\u00af\\u00ed\\u00a0\\u0080z\","));
    assert_non_null(strstr(line, "\"host\":\"\\u00f4\\u0090\\u0080\\u0080\","));
}

/* A huge target is cut with "...", and the line stays whole and parseable. */
static void test_truncation(void **state)
{
    (void)state;
    static char target[20001];
    memset(target, 'a', sizeof(target) - 1);
    target[0] = '/';
    tt_access_entry e = entry();
    e.target = target;

    for (int format = 0; format < 2; format++) {
        char *buf = malloc(8192);       /* exact size: ASan watches the end */
        assert_non_null(buf);
        size_t n = tt_access_format(&e, format, buf, 8192);
        assert_true(n < 8192);
        assert_int_equal(buf[n - 1], '\n');
        assert_non_null(strstr(buf, "aaa..."));
        assert_non_null(strstr(buf, format ? "\"request_time\":0.001}\n" : "\" 0.001\n"));
        assert_non_null(strstr(buf, "curl/7.88.1"));
        free(buf);
    }

    /* every byte escaped: an escape is never cut in half */
    memset(target + 1, '"', sizeof(target) - 2);
    char *buf = malloc(8192);
    assert_non_null(buf);
    size_t n = tt_access_format(&e, TT_ACCESS_COMBINED, buf, 8192);
    assert_matches(buf, "^127\\.0\\.0\\.1 - - \\[[^]]*\\] \"GET /(\\\\x22)+\\.\\.\\. HTTP/1\\.1\" 200 13 ");
    assert_int_equal(buf[n - 1], '\n');
    n = tt_access_format(&e, TT_ACCESS_JSON, buf, 8192);
    assert_matches(buf, "\"target\":\"/(\\\\\")+\\.\\.\\.\",\"protocol\"");
    free(buf);

    /* a tiny buffer: no overflow, still one line */
    for (size_t len = 0; len < 64; len++) {
        char *small = malloc(len ? len : 1);
        assert_non_null(small);
        n = tt_access_format(&e, TT_ACCESS_JSON, small, len);
        if (len >= 2) {
            assert_true(n <= len - 1);
            assert_int_equal(small[n - 1], '\n');
        } else {
            assert_int_equal(n, 0);
        }
        free(small);
    }
}

static void test_access_log_off_and_file(void **state)
{
    (void)state;
    char *alog = tmp_path("json-access.log");
    unlink(alog);
    tt_config cf = { .error_log = "stderr", .access_log = alog, .log_level = TT_LOG_INFO,
                     .access_log_format = TT_ACCESS_JSON };
    tt_errbuf err = { "" };
    assert_int_equal(tt_log_open(&cf, &err), 0);

    tt_access_entry e = entry();
    tt_access_log(&e);
    e.status = 500;
    tt_access_log(&e);
    char want[1024];
    snprintf(want, sizeof(want), "%s", fmt(&(tt_access_entry){ .remote_addr = "127.0.0.1",
        .method = "GET", .target = "/x", .version = 11, .status = 200, .bytes_sent = 13,
        .user_agent = "curl/7.88.1", .host = "example.com", .duration_usec = 1000,
        .time_usec = T_2026 }, TT_ACCESS_JSON));
    strcat(want, fmt(&e, TT_ACCESS_JSON));
    assert_string_equal(slurp(alog), want);

    /* access_log: off writes nothing */
    tt_config off = { .error_log = "stderr", .access_log = NULL, .log_level = TT_LOG_INFO };
    assert_int_equal(tt_log_open(&off, &err), 0);
    tt_access_log(&e);
    assert_string_equal(slurp(alog), want);
    tt_log_close();
    unlink(alog);
}

static int setup(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tt-test-log-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    unlink(tmp_path("stderr.txt"));
    unlink(tmp_path("error.log"));
    unlink(tmp_path("kept.log"));
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stderr_before_open),
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_error_log_file),
        cmocka_unit_test(test_open_failures),
        cmocka_unit_test(test_reopen),
        cmocka_unit_test(test_combined),
        cmocka_unit_test(test_combined_local_time),
        cmocka_unit_test(test_combined_escaping),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_module_fields),
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_access_log_off_and_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
