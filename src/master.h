/* The master: binds listeners, forks workers, supervises, handles signals. */
#ifndef TT_MASTER_H
#define TT_MASTER_H

#include "config/config.h"

/* Bind every listener of cf, reusing sockets of old (may be NULL) that have
 * the same address. On failure: a message naming the listen line in err. */
int tt_master_bind(tt_config *cf, const tt_config *old, tt_errbuf *err);
/* Block the signals the master reads (HUP QUIT TERM INT USR1 CHLD), so one
 * that arrives during start-up waits for the loop instead of killing us. */
void tt_master_block_signals(void);
/* The master runs detached with stderr on the error log file: point stderr
 * at the new file again on USR1. */
void tt_master_set_detached(int detached);
/* Run until stopped. `file` is re-read on HUP. Returns the exit status.
 * Takes cf over (frees it, and every later config) and removes the pid file.
 * status_fd >= 0: write "OK\n" or "ERR ...\n" once start-up is done (-d);
 * otherwise a start-up failure is printed on stderr as "tutti: ...". */
int tt_master_run(tt_config *cf, const char *file, int status_fd);

#endif
