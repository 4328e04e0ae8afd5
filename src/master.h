/* The master: binds listeners, forks workers, supervises, handles signals. */
#ifndef TT_MASTER_H
#define TT_MASTER_H

#include "config/config.h"

/* Bind every listener of cf, reusing sockets of old (may be NULL) that have
 * the same address. On failure: a message naming the listen line in err. */
int tt_master_bind(tt_config *cf, const tt_config *old, tt_errbuf *err);
/* Run until stopped. `file` is re-read on HUP. Returns the exit status.
 * status_fd >= 0: write "OK\n" or "ERR ...\n" once start-up is done (-d). */
int tt_master_run(tt_config *cf, const char *file, int status_fd);

#endif
