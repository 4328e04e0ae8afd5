/* A module of the right ABI built with other sizes or options: the loader
 * must refuse it by its signature before it calls anything. */
#include <tutti/tutti.h>

static int badsig_load(const tt_api *api)
{
    (void)api;
    return -1;                  /* never reached: the signature is checked first */
}

TT_MODULE_DEFINE = {
    .abi = TT_MODULE_ABI,
    .signature = "bogus",
    .name = "badsig",
    .version = "0.1.0",
    .load = badsig_load,
};
