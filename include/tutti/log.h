/* tutti — log levels shared by the core and modules. */
#ifndef TUTTI_LOG_H
#define TUTTI_LOG_H

#define TT_LOG_DEBUG 0
#define TT_LOG_INFO  1
#define TT_LOG_WARN  2
#define TT_LOG_ERROR 3

#endif
