/* Module loader: finds NAME.so in the module path, checks that it was built
 * for this tutti before trusting any of it, keeps the registry of loaded
 * modules in load order, and enforces what modules say about each other.
 *
 * The order of the checks matters. `abi` is the first member of every
 * descriptor ever shipped, so it is the only field we may read from a module
 * of unknown vintage; the signature (type sizes, struct field counts) comes
 * next, and only then do we believe the rest of the descriptor.
 */
#include "config.h"             /* autoconf: TT_SANITIZERS */

#include <dirent.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "module.h"

/* Under ASan a dlclose'd module leaves "<unknown module>" frames in leak
 * reports, which makes them useless; the process ends soon anyway. */
static void module_dlclose(void *handle)
{
#ifndef TT_SANITIZERS
    if (handle != NULL)
        dlclose(handle);
#else
    (void)handle;
#endif
}

static int valid_name(const char *name)
{
    if (*name == '\0')
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    return 1;
}

/* "file:line:col: " when we know where the module was named, else nothing
 * (modules found by scanning the module path have no line). */
static void module_error(tt_errbuf *err, const tt_conf_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void module_error(tt_errbuf *err, const tt_conf_node *at, const char *fmt, ...)
{
    size_t off = 0;
    va_list ap;

    if (at != NULL && at->file != NULL) {
        int n = snprintf(err->msg, sizeof(err->msg), "%s:%u:%u: ",
                         at->file, at->line, at->col);
        off = n < 0 ? 0 : (size_t)n < sizeof(err->msg) ? (size_t)n : sizeof(err->msg) - 1;
    }
    va_start(ap, fmt);
    vsnprintf(err->msg + off, sizeof(err->msg) - off, fmt, ap);
    va_end(ap);
}

/* Set when a module file was found but could not be used: at start-up that
 * is a start-up failure (exit 2), not a mistake in the config (exit 1). */
int tt_module_load_failed;

/* ---- looking at a shared object ---- */

/* Open path and check it is a tutti module of our ABI named `name`. On
 * success *handle and *mod are set; on failure err says why (path first,
 * like the compiler does for a file it cannot use). */
static int open_checked(const char *path, const char *name, void **handle,
                        const tt_module **mod, tt_errbuf *err)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *why = dlerror();
        snprintf(err->msg, sizeof(err->msg), "%s", why ? why : path);
        tt_module_load_failed = 1;
        return -1;
    }
    dlerror();
    const tt_module *m = dlsym(h, TT_MODULE_SYMBOL);
    if (m == NULL) {
        snprintf(err->msg, sizeof(err->msg),
                 "%s: no symbol '%s'; is it a tutti module? (see doc/modules.md)",
                 path, TT_MODULE_SYMBOL);
        module_dlclose(h);
        tt_module_load_failed = 1;
        return -1;
    }
    /* the only field we may read before we know the layout */
    if (m->abi != TT_MODULE_ABI) {
        snprintf(err->msg, sizeof(err->msg),
                 "%s: module ABI %u, this tutti speaks ABI %u; rebuild the module",
                 path, (unsigned)m->abi, (unsigned)TT_MODULE_ABI);
        module_dlclose(h);
        tt_module_load_failed = 1;
        return -1;
    }
    if (m->signature == NULL || strcmp(m->signature, TT_MODULE_SIGNATURE) != 0) {
        snprintf(err->msg, sizeof(err->msg),
                 "%s: module built as '%s', this tutti is '%s'; rebuild the module",
                 path, m->signature ? m->signature : "(none)", TT_MODULE_SIGNATURE);
        module_dlclose(h);
        tt_module_load_failed = 1;
        return -1;
    }
    if (m->name == NULL || strcmp(m->name, name) != 0) {
        snprintf(err->msg, sizeof(err->msg),
                 "%s: the module calls itself '%s'; a module's file must be NAME.so "
                 "after its name: rename it to %s.so",
                 path, m->name ? m->name : "(null)", m->name ? m->name : "NAME");
        module_dlclose(h);
        tt_module_load_failed = 1;
        return -1;
    }
    *handle = h;
    *mod = m;
    return 0;
}

/* ---- the registry ---- */

const tt_loaded_module *tt_module_find(const tt_config *cf, const char *name)
{
    for (size_t i = 0; i < cf->nmodules; i++)
        if (strcmp(cf->modules[i]->mod->name, name) == 0)
            return cf->modules[i];
    return NULL;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static const tt_module *builtin_find(const tt_module *builtins, size_t n,
                                     const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(builtins[i].name, name) == 0)
            return &builtins[i];
    return NULL;
}

/* Is module `name` available at all: in the builtins, or as dir/name.so? */
static int available(const tt_config *cf, const tt_module *builtins,
                     size_t nbuiltins, const char *name)
{
    if (builtins != NULL)
        return builtin_find(builtins, nbuiltins, name) != NULL;
    char *path = tt_arena_printf(cf->arena, "%s/%s.so", cf->module_path, name);
    return path != NULL && file_exists(path);
}

static void not_found(const tt_config *cf, const char *name,
                      const tt_module *builtins, size_t nbuiltins,
                      const tt_conf_node *at, tt_errbuf *err)
{
    const char **known;
    char **names = NULL;
    size_t n;

    if (builtins != NULL) {
        n = nbuiltins;
        known = calloc(n + 1, sizeof(*known));
        for (size_t i = 0; known != NULL && i < n; i++)
            known[i] = builtins[i].name;
    } else {
        n = tt_module_scan(cf->module_path, &names);
        known = calloc(n + 1, sizeof(*known));
        for (size_t i = 0; known != NULL && i < n; i++)
            known[i] = names[i];
    }
    const char *guess = known ? tt_suggest(name, known) : NULL;
    if (guess != NULL)
        module_error(err, at, "module '%s' not found in %s; did you mean '%s'?",
                     name, cf->module_path, guess);
    else
        module_error(err, at, "module '%s' not found in %s", name, cf->module_path);
    free(known);
    tt_module_free_names(names, n);
}

/* What a module says about the others: its needs came first, and no two
 * modules claim the same route key (a route could not tell them apart). */
static int check_relations(const tt_config *cf, const tt_module *m,
                           const char *path, const tt_module *builtins,
                           size_t nbuiltins, const tt_conf_node *at,
                           tt_errbuf *err)
{
    if (m->route_key != NULL) {
        if (m->route_kind != TT_MODULE_HANDLER && m->route_kind != TT_MODULE_FILTER) {
            module_error(err, NULL, "%s: module '%s' has a route key but its route_kind "
                         "is neither TT_MODULE_HANDLER nor TT_MODULE_FILTER; fix the "
                         "module", path, m->name);
            return -1;
        }
        for (size_t i = 0; i < cf->nmodules; i++) {
            const tt_module *o = cf->modules[i]->mod;
            if (o->route_key != NULL && strcmp(o->route_key, m->route_key) == 0) {
                module_error(err, NULL, "%s: module '%s' handles the route key '%s', "
                             "which module '%s' already handles; load only one of them",
                             path, m->name, m->route_key, o->name);
                return -1;
            }
        }
    }
    for (const char *const *need = m->needs; need != NULL && *need != NULL; need++) {
        if (tt_module_find(cf, *need) != NULL)
            continue;
        if (!available(cf, builtins, nbuiltins, *need)) {
            module_error(err, at, "module '%s' needs module '%s', which is not "
                         "installed in %s", m->name, *need, cf->module_path);
            return -1;
        }
        module_error(err, at, "module '%s' needs module '%s'; add '%s' before '%s' "
                     "in 'modules'", m->name, *need, *need, m->name);
        return TT_MODULE_NOT_YET;
    }
    return 0;
}

static int registry_add(tt_config *cf, const tt_module *m, void *handle,
                        const char *path)
{
    tt_loaded_module *lm = tt_arena_alloc(cf->arena, sizeof(*lm));
    tt_loaded_module **grown = tt_arena_alloc(cf->arena,
                                              (cf->nmodules + 1) * sizeof(*grown));
    if (lm == NULL || grown == NULL)
        return -1;
    /* a handful of modules: copying the array beats a growth policy */
    if (cf->nmodules > 0)
        memcpy(grown, cf->modules, cf->nmodules * sizeof(*grown));
    lm->mod = m;
    lm->handle = handle;
    lm->path = path;
    lm->index = (int)cf->nmodules;
    grown[cf->nmodules++] = lm;
    cf->modules = grown;
    return 0;
}

int tt_module_load_from(tt_config *cf, const char *name, const tt_conf_node *at,
                        const tt_module *builtins, size_t nbuiltins,
                        tt_errbuf *err)
{
    if (!valid_name(name)) {
        module_error(err, at, "'%s' is not a module name; write the name alone, "
                     "such as static (letters a-z, digits, _)", name);
        return -1;
    }
    if (tt_module_find(cf, name) != NULL) {
        module_error(err, at, "module '%s' is listed twice in 'modules'; list it once",
                     name);
        return -1;
    }
    char *path = tt_arena_printf(cf->arena, "%s/%s.so", cf->module_path, name);
    if (path == NULL) {
        module_error(err, at, "out of memory");
        return -1;
    }

    if (builtins != NULL) {
        const tt_module *m = builtin_find(builtins, nbuiltins, name);
        if (m == NULL) {
            not_found(cf, name, builtins, nbuiltins, at, err);
            return -1;
        }
        int rc = check_relations(cf, m, path, builtins, nbuiltins, at, err);
        if (rc != 0)
            return rc;
        return registry_add(cf, m, NULL, path);
    }

    if (!file_exists(path)) {
        not_found(cf, name, NULL, 0, at, err);
        return -1;
    }
    void *handle;
    const tt_module *m;
    if (open_checked(path, name, &handle, &m, err) != 0)
        return -1;
    int rc = check_relations(cf, m, path, NULL, 0, at, err);
    if (rc != 0) {
        module_dlclose(handle);
        return rc;
    }
    if (m->flags & TT_MODULE_GLOBAL_SYMBOLS) {
        /* C extensions that an embedded interpreter imports later resolve
         * their Py* symbols globally: promote the object to RTLD_GLOBAL. */
        void *global = dlopen(path, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
        if (global == NULL) {
            const char *why = dlerror();
            snprintf(err->msg, sizeof(err->msg), "%s: cannot make its symbols global: %s",
                     path, why ? why : "dlopen failed");
            module_dlclose(handle);
            return -1;
        }
        module_dlclose(handle);
        handle = global;
    }
    if (m->load != NULL && m->load(&tt_module_api) != 0) {
        snprintf(err->msg, sizeof(err->msg),
                 "%s: module '%s' failed to start (its load() returned an error; "
                 "see the error log)", path, name);
        module_dlclose(handle);
        tt_module_load_failed = 1;
        return -1;
    }
    if (registry_add(cf, m, handle, path) != 0) {
        module_dlclose(handle);
        module_error(err, at, "out of memory");
        return -1;
    }
    return 0;
}

int tt_module_load(tt_config *cf, const char *name, const tt_conf_node *at,
                   tt_errbuf *err)
{
    return tt_module_load_from(cf, name, at, NULL, 0, err);
}

void tt_module_unload_all(tt_config *cf)
{
    for (size_t i = 0; i < cf->nmodules; i++) {
        tt_loaded_module *lm = cf->modules[i];
        module_dlclose(lm->handle);
        lm->handle = NULL;
    }
}

/* ---- the module path ---- */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t tt_module_scan(const char *dir, char ***names)
{
    DIR *d = opendir(dir);
    char **list = NULL;
    size_t n = 0, cap = 0;

    *names = NULL;
    if (d == NULL)
        return 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (len <= 3 || strcmp(e->d_name + len - 3, ".so") != 0)
            continue;
        char *name = strndup(e->d_name, len - 3);
        if (name == NULL)
            break;
        if (!valid_name(name)) {    /* libfoo.so.1 and friends are not ours */
            free(name);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **grown = realloc(list, ncap * sizeof(*grown));
            if (grown == NULL) {
                free(name);
                break;
            }
            list = grown;
            cap = ncap;
        }
        list[n++] = name;
    }
    closedir(d);
    if (n > 0)
        qsort(list, n, sizeof(*list), cmp_names);
    *names = list;
    return n;
}

void tt_module_free_names(char **names, size_t n)
{
    for (size_t i = 0; names != NULL && i < n; i++)
        free(names[i]);
    free(names);
}

int tt_module_describe(const char *path, char *out, size_t outlen)
{
    tt_errbuf err = {{0}};
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base);
    if (len <= 3 || strcmp(base + len - 3, ".so") != 0) {
        snprintf(out, outlen, "%s: not a module file (NAME.so)", path);
        return -1;
    }
    char *name = strndup(base, len - 3);
    if (name == NULL) {
        snprintf(out, outlen, "%s: out of memory", path);
        return -1;
    }
    void *handle;
    const tt_module *m;
    int rc = open_checked(path, name, &handle, &m, &err);
    free(name);
    if (rc != 0) {
        snprintf(out, outlen, "%s", err.msg);
        return -1;
    }
    snprintf(out, outlen, "%s %s", m->name, m->version ? m->version : "(no version)");
    module_dlclose(handle);
    return 0;
}
