/* tutti — the one header a module includes. */
#ifndef TUTTI_TUTTI_H
#define TUTTI_TUTTI_H

#include <tutti/conf.h>
#include <tutti/keepalive.h>
#include <tutti/log.h>
#include <tutti/request.h>
#include <tutti/module.h>

#endif
