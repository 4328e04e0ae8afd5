/* A module from a tutti with another ABI: the loader must refuse it by its
 * `abi` alone, without reading another field (their layout is unknown). */
#include <tutti/tutti.h>

TT_MODULE_DEFINE = {
    .abi = 999,
    .signature = TT_MODULE_SIGNATURE,
    .name = "badabi",
    .version = "0.1.0",
};
