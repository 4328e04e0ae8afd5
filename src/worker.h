/* A worker process: one libevent loop serving every listener. */
#ifndef TT_WORKER_H
#define TT_WORKER_H

#include "config/config.h"

struct event_base;

/* The loop of the running worker, for modules (tt_api.event_base). */
extern struct event_base *tt_worker_base;

/* Run a worker; never returns. ready_fd: after modules' init_worker and
 * before accepting, write "OK\n" there, or "ERR <one line>\n" and exit 2. */
void tt_worker_run(tt_config *cf, int id, int ready_fd) __attribute__((noreturn));

/* the running worker's config; NULL outside a worker */
const tt_config *tt_worker_config(void);

/* workers of the running config; 1 outside a worker (tutti -t) */
int tt_worker_count(void);

#endif
