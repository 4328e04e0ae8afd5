/* One client connection: a bufferevent driven by the HTTP/1.1 state machine. */
#ifndef TT_CONN_H
#define TT_CONN_H

#include <event2/util.h>
#include "config/config.h"

struct event_base;
struct sockaddr;

/* Take a freshly accepted socket of listener l. */
void   tt_conn_accept(struct event_base *base, const tt_config *cf, tt_listen *l,
                      evutil_socket_t fd, const struct sockaddr *sa, int salen);
/* connections open in this worker */
size_t tt_conn_active(void);
/* graceful stop: idle connections close now, busy ones after their response */
void   tt_conn_graceful(void);
/* fast stop: close everything now */
void   tt_conn_close_all(void);
/* called each time a connection closes (the worker checks for "all done") */
void   tt_conn_on_closed(void (*cb)(void));

/* rate.c: the speed limits' bucket configs, at worker exit */
void tt_rate_free_all(void);

#endif
