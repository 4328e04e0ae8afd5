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
/* a module file was found but failed to load (ABI, signature, dlopen, load()) */
extern int tt_module_load_failed;

/* Load `name` from cf->module_path (as module_path/name.so) and append it
 * to cf->modules. `at` is the config node naming it, for messages (NULL when
 * found by scanning the module path). Checks the name, duplicates, ABI,
 * signature, the name inside, route keys claimed twice and `needs`, then
 * calls the module's load(&tt_module_api). Returns 0, -1, or
 * TT_MODULE_NOT_YET when a needed module exists but is not loaded yet
 * (err says to list it first; a caller ordering modules itself may retry). */
int tt_module_load(tt_config *cf, const char *name, const tt_conf_node *at,
                   tt_errbuf *err);
#define TT_MODULE_NOT_YET (-2)
/* The same, but when builtins is not NULL the module is looked up among
 * those descriptors instead of dlopen'ed, and neither load() nor anything
 * else of it is called: the config checker without modules (tests, fuzzer)
 * registers stand-ins for the bundled modules this way. */
int tt_module_load_from(tt_config *cf, const char *name, const tt_conf_node *at,
                        const tt_module *builtins, size_t nbuiltins,
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
