/* Process chores: pid file, daemonizing, dropping privileges, rlimits. */
#ifndef TT_PROCESS_H
#define TT_PROCESS_H

#include <sys/types.h>
#include "config/config.h"

int   tt_pidfile_write(const char *path, tt_errbuf *err);
pid_t tt_pidfile_read(const char *path, tt_errbuf *err);
/* removes it only while it still names this process */
void  tt_pidfile_remove(const char *path);
/* 1 if pid is alive, not us, and (when /proc tells) a tutti process */
int   tt_process_is_tutti(pid_t pid);
/* fork; the parent waits on a pipe for the child's "OK"/"ERR" and exits with
 * 0 / 2; the child returns the write end of that pipe */
int   tt_daemonize(void);
/* point fd 2 at the error log file (a no-op for "stderr"), for a daemon */
int   tt_redirect_stderr(const char *path);
/* become user (setgid, initgroups, setuid); does nothing unless root or
 * when user is NULL. The master keeps root; each worker calls this. */
int   tt_drop_privileges(const char *user, tt_errbuf *err);
/* as root with `user:` set: chown the log files to that user, so its
 * workers can reopen them on USR1 */
void  tt_chown_logs(const tt_config *cf);
void  tt_raise_nofile(void);
/* reload|stop|quit|reopen -> SIGHUP|SIGTERM|SIGQUIT|SIGUSR1, or -1 */
int   tt_signal_number(const char *name);
/* `tutti -s reload|stop|quit|reopen`: returns exit status */
int   tt_signal_master(const tt_config *cf, const char *signame);

#endif
