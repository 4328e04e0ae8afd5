/* tutti — keep-alive policy, as the keepalive module hands it to the core.
 *
 * The core owns connections, so it enforces the policy; a module whose
 * descriptor has TT_MODULE_KEEPALIVE_POLICY says what it is: its main_conf
 * (and each server_conf) is one of these. */
#ifndef TUTTI_KEEPALIVE_H
#define TUTTI_KEEPALIVE_H

#include <stdint.h>

typedef struct {
    uint64_t timeout_ms;        /* idle time between requests; 0: close after each */
    uint32_t max_requests;      /* per connection; 0: no limit */
    uint32_t max_idle;          /* idle connections per worker; 0: no limit (main only) */
    uint32_t max_connections;   /* open connections per worker; 0: no limit (main only) */
} tt_keepalive;

#endif
