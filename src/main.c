/* tutti: the command line, start-up and exit status.
 *
 *   0  a clean stop (or -t, -V, -h, -s succeeded)
 *   1  a bad command line or config
 *   2  start-up failed: a port in use, a log that cannot be opened, a worker
 *      that could not start (a module's or an app's error)
 *
 * Start-up runs in the order that lets each step fail with the clearest
 * message and no half-started server: config, a running instance named by
 * the pid file, listeners, logs, detaching, the pid file; then the master
 * forks the workers, which drop root to `user:` (see process.c).
 */
#include "config.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "master.h"
#include "module.h"
#include "process.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: tutti [-c FILE]            run in the foreground\n"
        "       tutti -t [-c FILE]         check the config and every module it names\n"
        "       tutti -V [-c FILE]         version, build options, the modules found\n"
        "                                  (in FILE's module_path with -c)\n"
        "       tutti -s SIGNAL [-c FILE]  send reload | stop | quit | reopen to the master\n"
        "       tutti -d [-c FILE]         detach once start-up succeeded\n"
        "       tutti -h                   this help\n"
        "FILE defaults to ./tutti.yaml, then " TT_SYSCONFDIR "/tutti/tutti.yaml\n");
}

static int bad_usage(const char *fmt, const char *arg)
{
    fputs("tutti: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    usage(stderr);
    return 1;
}

/* The modules found in the compiled-in module path, or with -c in the
 * module_path of that config (so a build tree can be looked at too). */
static int show_version(const char *file)
{
    const char *dir = TT_MODULE_DIR;
    tt_config *cf = NULL;
    if (file != NULL) {
        tt_errbuf err = {{0}};
        if ((cf = tt_config_load(file, &err)) == NULL) {
            fprintf(stderr, "tutti: %s\n", err.msg);
            return 1;
        }
        dir = cf->module_path;
    }
    char **names = NULL;
    size_t n = tt_module_scan(dir, &names);

    printf("tutti version %s\n", PACKAGE_VERSION);
    printf("built with: %s\n", TT_BUILD_OPTS);
    printf("module ABI %d\n", TT_MODULE_ABI);
    printf("module path: %s%s\n", dir, n ? "" : " (no modules found)");
    for (size_t i = 0; i < n; i++) {
        char path[4096], desc[1024];
        snprintf(path, sizeof(path), "%s/%s.so", dir, names[i]);
        tt_module_describe(path, desc, sizeof(desc));
        printf("  %s\n", desc);
    }
    tt_module_free_names(names, n);
    tt_config_free(cf);
    return 0;
}

static int test_config(const char *file)
{
    tt_errbuf err = {{0}};
    tt_config *cf = tt_config_load(file, &err);
    if (cf == NULL) {
        fprintf(stderr, "tutti: %s\n", err.msg);
        return 1;
    }
    tt_config_free(cf);
    printf("configuration OK\n");
    return 0;
}

static int send_signal(const char *file, const char *signame)
{
    tt_errbuf err = {{0}};
    tt_config *cf = tt_config_load(file, &err);
    if (cf == NULL) {
        fprintf(stderr, "tutti: %s\n", err.msg);
        return 1;
    }
    int rc = tt_signal_master(cf, signame);
    tt_config_free(cf);
    return rc;
}

static void close_listens(tt_config *cf)
{
    for (size_t i = 0; i < cf->nlistens; i++) {
        if (cf->listens[i].fd >= 0)
            close(cf->listens[i].fd);
        cf->listens[i].fd = -1;
    }
}

static int run(const char *file, int detach)
{
    tt_errbuf err = {{0}};

    /* a signal during start-up waits for the master's loop */
    tt_master_block_signals();
    tt_module_load_failed = 0;
    tt_config *cf = tt_config_load(file, &err);
    if (cf == NULL) {
        fprintf(stderr, "tutti: %s\n", err.msg);
        /* CONFIG.md: a module that failed to load is a start-up failure */
        return tt_module_load_failed ? 2 : 1;
    }
    if (cf->pid_file != NULL) {
        pid_t pid = tt_pidfile_read(cf->pid_file, &err);
        if (pid > 0 && tt_process_is_tutti(pid)) {
            fprintf(stderr, "tutti: already running: %s names process %ld; "
                    "stop it first (tutti -s stop)\n", cf->pid_file, (long)pid);
            tt_config_free(cf);
            return 2;
        }
    }
    if (tt_master_bind(cf, NULL, &err) != 0) {
        fprintf(stderr, "tutti: %s\n", err.msg);
        tt_config_free(cf);
        return 2;
    }
    if (tt_log_open(cf, &err) != 0) {
        fprintf(stderr, "tutti: %s\n", err.msg);
        close_listens(cf);
        tt_config_free(cf);
        return 2;
    }
    if (cf->user != NULL && geteuid() != 0)
        tt_log(TT_LOG_WARN, "'user: %s' is ignored: tutti does not run as root", cf->user);
    tt_chown_logs(cf);
    tt_raise_nofile();

    int status_fd = -1;
    if (detach || cf->daemon) {
        status_fd = tt_daemonize();
        if (status_fd < 0) {
            fprintf(stderr, "tutti: cannot detach: %s\n", strerror(errno));
            goto fail;
        }
        /* see process.c: keep stderr only when it is the error log */
        if (cf->error_log != NULL && strcmp(cf->error_log, "stderr") != 0 &&
            tt_redirect_stderr(cf->error_log) == 0)
            tt_master_set_detached(1);
    }
    if (cf->pid_file != NULL && tt_pidfile_write(cf->pid_file, &err) != 0)
        goto fail_msg;
    return tt_master_run(cf, file, status_fd);

fail_msg:
    /* after detaching, the waiting parent prints it */
    if (status_fd >= 0) {
        dprintf(status_fd, "ERR %s\n", err.msg);
        close(status_fd);
    } else {
        fprintf(stderr, "tutti: %s\n", err.msg);
    }
fail:
    close_listens(cf);
    tt_config_free(cf);
    return 2;
}

int main(int argc, char **argv)
{
    const char *file = NULL, *signame = NULL;
    int test = 0, version = 0, detach = 0, help = 0, c;

    opterr = 0;
    while ((c = getopt(argc, argv, ":c:tVs:dh")) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 't': test = 1; break;
        case 'V': version = 1; break;
        case 's': signame = optarg; break;
        case 'd': detach = 1; break;
        case 'h': help = 1; break;
        case ':': {
            char opt[3] = { '-', (char)optopt, '\0' };
            return bad_usage("option %s needs an argument", opt);
        }
        default: {
            char opt[3] = { '-', (char)optopt, '\0' };
            return bad_usage("unknown option %s", opt);
        }
        }
    }
    if (optind < argc)
        return bad_usage("unexpected argument '%s'", argv[optind]);
    if (help) {
        usage(stdout);
        return 0;
    }
    if (version)
        return show_version(file);
    if (test + (signame != NULL) + detach > 1)
        return bad_usage("%s", "-t, -s and -d go one at a time");
    if (signame != NULL && tt_signal_number(signame) < 0)
        return bad_usage("unknown signal '%s'; use reload, stop, quit or reopen", signame);
    if (file == NULL)
        file = tt_config_default_file();

    /* a client that hangs up must not kill a worker, nor a status write
     * to a parent that is gone the master */
    signal(SIGPIPE, SIG_IGN);

    int rc;
    if (test)
        rc = test_config(file);
    else if (signame != NULL)
        rc = send_signal(file, signame);
    else
        rc = run(file, detach);
    tt_log_close();
    return rc;
}
