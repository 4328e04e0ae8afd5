/* Module loader: dlopen, ABI and signature checks, registry, dependencies. */
#ifndef TT_MODULE_LOADER_H
#define TT_MODULE_LOADER_H

#include <tutti/tutti.h>
#include "config/config.h"

struct tt_loaded_module {
    const tt_module *mod;
    void            *handle;        /* dlopen handle */
    const char      *path;
    int              index;         /* position in tt_config.modules */
};

extern const tt_api tt_module_api;

/* Load `name` from dir (as dir/name.so). `at` is the config node naming it,
 * for messages. Checks ABI, signature, duplicates against already[0..n). */
int tt_module_load(tt_config *cf, const char *name, const tt_conf_node *at,
                   tt_errbuf *err);
/* Names of every NAME.so in dir, sorted; for `modules:` absent and -V.
 * Returns count, fills *names (malloc'ed array of malloc'ed strings). */
size_t tt_module_scan(const char *dir, char ***names);
void   tt_module_free_names(char **names, size_t n);
/* Checks a file without keeping it: for -V. Writes "name version" or why not. */
int    tt_module_describe(const char *path, char *out, size_t outlen);
/* Call dlclose on every handle of cf's modules */
void   tt_module_unload_all(tt_config *cf);
const tt_loaded_module *tt_module_find(const tt_config *cf, const char *name);

#endif
