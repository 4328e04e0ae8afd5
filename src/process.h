/* Process chores: pid file, daemonizing, dropping privileges, rlimits. */
#ifndef TT_PROCESS_H
#define TT_PROCESS_H

#include <sys/types.h>
#include "config/config.h"

int   tt_pidfile_write(const char *path, tt_errbuf *err);
pid_t tt_pidfile_read(const char *path, tt_errbuf *err);
void  tt_pidfile_remove(const char *path);
/* fork; the parent waits on a pipe for the child's "OK"/"ERR" and exits with
 * 0 / 2; the child returns the write end of that pipe */
int   tt_daemonize(void);
int   tt_drop_privileges(const char *user, tt_errbuf *err);
void  tt_raise_nofile(void);
/* `tutti -s reload|stop|quit|reopen`: returns exit status */
int   tt_signal_master(const tt_config *cf, const char *signame);

#endif
