/* Process chores: the pid file, detaching, dropping root, the fd limit, and
 * `tutti -s` sending a signal to the running master.
 *
 * Daemonizing and standard streams. The parent of tt_daemonize() stays on the
 * terminal until the master says start-up is done, so the user sees the one
 * line that explains a failure. The detached child points stdin and stdout at
 * /dev/null at once, but keeps stderr as it was, like nginx: with
 * `error_log: stderr` the user asked for the log there (a supervisor
 * capturing it, `tutti -d 2>>file`); with a log file, main redirects stderr
 * into that file (tt_redirect_stderr) so whatever a library or the sanitizer
 * prints lands in the log instead of a terminal that may be gone.
 *
 * Privileges, like nginx: the master stays root and each worker becomes
 * `user:` right after fork. So a reload can bind a new port below 1024, the
 * master can reopen the logs and remove its pid file, while nothing that
 * serves a request (or runs an application) ever runs as root. The master
 * hands the log files to the user (tt_chown_logs), or a worker could not
 * reopen them after a rotation.
 */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>
#include "log.h"
#include "process.h"

/* ---------------------------------------------------------------- pid file */

int tt_pidfile_write(const char *path, tt_errbuf *err)
{
    /* write a temporary file and rename it over the old one: a reader never
     * sees an empty or half-written pid file */
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        snprintf(err->msg, sizeof(err->msg), "pid file %s: name too long", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err->msg, sizeof(err->msg), "cannot write pid file %.900s: %s",
                 tmp, strerror(errno));
        return -1;
    }
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    int bad = write(fd, buf, (size_t)n) != n;
    int e = errno;
    if (close(fd) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        unlink(tmp);
        snprintf(err->msg, sizeof(err->msg), "cannot write pid file %.900s: %s",
                 tmp, strerror(e));
        return -1;
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        snprintf(err->msg, sizeof(err->msg), "cannot write pid file %.900s: %s",
                 path, strerror(e));
        return -1;
    }
    return 0;
}

pid_t tt_pidfile_read(const char *path, tt_errbuf *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s: %s", path, strerror(errno));
        return -1;
    }
    long pid = 0;
    char extra;
    int n = fscanf(f, "%ld%c", &pid, &extra);
    fclose(f);
    if (n < 1 || pid <= 0 || (n == 2 && extra != '\n')) {
        snprintf(err->msg, sizeof(err->msg), "%s: no process id in it", path);
        return -1;
    }
    return (pid_t)pid;
}

void tt_pidfile_remove(const char *path)
{
    /* only our own: a second instance started since may have replaced it */
    tt_errbuf err;
    if (path != NULL && tt_pidfile_read(path, &err) == getpid())
        unlink(path);
}

int tt_process_is_tutti(pid_t pid)
{
    if (pid <= 0 || pid == getpid())
        return 0;
    if (kill(pid, 0) != 0 && errno != EPERM)
        return 0;
    /* a recycled pid must not make us refuse to start, nor get our signal */
    char path[64], comm[64] = "";
    snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 1;               /* no /proc: trust kill() */
    if (fgets(comm, sizeof(comm), f) == NULL)
        comm[0] = '\0';
    fclose(f);
    return strstr(comm, "tutti") != NULL;
}

/* ---------------------------------------------------------------- daemon */

static void parent_wait(int fd, pid_t child) __attribute__((noreturn));

static void parent_wait(int fd, pid_t child)
{
    char buf[1200];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(buf, '\n', len) != NULL || len == sizeof(buf) - 1)
            break;
    }
    buf[len] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl != NULL)
        *nl = '\0';
    if (strcmp(buf, "OK") == 0)
        _exit(0);
    if (strncmp(buf, "ERR ", 4) == 0)
        fprintf(stderr, "tutti: %s\n", buf + 4);
    else
        fprintf(stderr, "tutti: the daemon (pid %ld) exited during start-up\n",
                (long)child);
    _exit(2);
}

int tt_daemonize(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid > 0) {
        close(p[1]);
        parent_wait(p[0], pid);
    }
    close(p[0]);
    setsid();
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        if (null > STDERR_FILENO)
            close(null);
    }
    return p[1];
}

int tt_redirect_stderr(const char *path)
{
    if (path == NULL || strcmp(path, "stderr") == 0)
        return 0;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (fd != STDERR_FILENO) {
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    return 0;
}

/* ---------------------------------------------------------------- privileges */

int tt_drop_privileges(const char *user, tt_errbuf *err)
{
    if (user == NULL || geteuid() != 0)
        return 0;
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        if (errno != 0 && errno != ENOENT && errno != ESRCH)
            snprintf(err->msg, sizeof(err->msg), "user '%s': %s", user, strerror(errno));
        else
            snprintf(err->msg, sizeof(err->msg), "user '%s' does not exist", user);
        return -1;
    }
    /* groups first: once setuid() ran we may no longer change them */
    if (initgroups(pw->pw_name, pw->pw_gid) != 0) {
        snprintf(err->msg, sizeof(err->msg), "user '%s': initgroups: %s", user, strerror(errno));
        return -1;
    }
    if (setgid(pw->pw_gid) != 0) {
        snprintf(err->msg, sizeof(err->msg), "user '%s': setgid(%ld): %s", user,
                 (long)pw->pw_gid, strerror(errno));
        return -1;
    }
    if (setuid(pw->pw_uid) != 0) {
        snprintf(err->msg, sizeof(err->msg), "user '%s': setuid(%ld): %s", user,
                 (long)pw->pw_uid, strerror(errno));
        return -1;
    }
    return 0;
}

void tt_chown_logs(const tt_config *cf)
{
    if (cf->user == NULL || geteuid() != 0)
        return;
    struct passwd *pw = getpwnam(cf->user);
    if (pw == NULL)
        return;
    const char *paths[] = { cf->error_log, cf->access_log };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        /* "stderr", "stdout" and off are not files */
        if (paths[i] != NULL && paths[i][0] == '/' && chown(paths[i], pw->pw_uid, (gid_t)-1) != 0)
            tt_log(TT_LOG_WARN, "cannot hand %s to user '%s': %s", paths[i], cf->user,
                   strerror(errno));
    }
}

void tt_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = rl.rlim_max;
    /* the kernel refuses "unlimited" for files; nr_open is its real ceiling */
    if (want == RLIM_INFINITY) {
        want = 1048576;
        FILE *f = fopen("/proc/sys/fs/nr_open", "re");
        if (f != NULL) {
            unsigned long v;
            if (fscanf(f, "%lu", &v) == 1)
                want = (rlim_t)v;
            fclose(f);
        }
    }
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want;
    setrlimit(RLIMIT_NOFILE, &rl);
}

/* ---------------------------------------------------------------- tutti -s */

int tt_signal_number(const char *name)
{
    if (strcmp(name, "reload") == 0) return SIGHUP;
    if (strcmp(name, "stop") == 0)   return SIGTERM;
    if (strcmp(name, "quit") == 0)   return SIGQUIT;
    if (strcmp(name, "reopen") == 0) return SIGUSR1;
    return -1;
}

int tt_signal_master(const tt_config *cf, const char *signame)
{
    int sig = tt_signal_number(signame);
    if (sig < 0) {
        fprintf(stderr, "tutti: unknown signal '%s'; use reload, stop, quit or reopen\n",
                signame);
        return 1;
    }
    if (cf->pid_file == NULL) {
        fprintf(stderr, "tutti: %s sets no pid_file, so the master cannot be found; "
                "add 'pid_file: tutti.pid'\n", cf->file);
        return 1;
    }
    tt_errbuf err;
    pid_t pid = tt_pidfile_read(cf->pid_file, &err);
    if (pid < 0) {
        fprintf(stderr, "tutti: no running master: %s\n", err.msg);
        return 1;
    }
    if (!tt_process_is_tutti(pid)) {
        fprintf(stderr, "tutti: no running master: %s: process %ld is not running\n",
                cf->pid_file, (long)pid);
        return 1;
    }
    if (kill(pid, sig) != 0) {
        fprintf(stderr, "tutti: cannot signal the master (pid %ld): %s\n",
                (long)pid, strerror(errno));
        return 1;
    }
    return 0;
}
