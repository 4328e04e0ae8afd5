/* throttle — the `throttle:` key of a route, checked and turned into a
 * tt_throttle_conf once per config load. Every error points at the value
 * and says what to write instead. */
#include <string.h>
#include "throttle.h"

#define TT_THROTTLE_EXAMPLE \
    "download: 512KB/s, upload: 1MB/s, requests: 20/s or connections: 10"

/* A byte rate: download, upload. */
static int conf_byte_rate(const tt_conf_node *v, const char *key, uint64_t *out,
                          tt_errbuf *err)
{
    const tt_api *api = tt_throttle_api;
    tt_rate rate;

    if (api->conf_rate(v, &rate, err) != 0)
        return -1;
    if (!rate.bytes) {
        api->conf_error(err, v, "'%s: %s' counts requests; %s is a speed in bytes, "
                        "such as %s: 512KB/s", key, v->value, key, key);
        return -1;
    }
    if (rate.per_sec < 1.0) {
        api->conf_error(err, v, "'%s: %s': write a speed of at least 1B/s, such as "
                        "%s: 512KB/s, or remove the key for no limit", key, v->value, key);
        return -1;
    }
    /* beyond 2^63 bytes/s is no limit at all; keep the cast defined */
    *out = rate.per_sec >= 9.2e18 ? UINT64_MAX / 2 : (uint64_t)(rate.per_sec + 0.5);
    return 0;
}

static int conf_requests(const tt_conf_node *v, tt_throttle_conf *conf, tt_errbuf *err)
{
    const tt_api *api = tt_throttle_api;
    tt_rate rate;

    if (api->conf_rate(v, &rate, err) != 0)
        return -1;
    if (rate.bytes) {
        api->conf_error(err, v, "'requests: %s' is a speed in bytes; requests is a "
                        "number of requests per second or minute, such as requests: "
                        "20/s or requests: 600/m", v->value);
        return -1;
    }
    if (rate.per_sec <= 0.0) {
        api->conf_error(err, v, "'requests: %s' would refuse every request; write a "
                        "rate such as 20/s or 600/m, or remove the key for no limit",
                        v->value);
        return -1;
    }
    if (rate.per_sec > TT_BUCKET_MAX_RATE) {
        api->conf_error(err, v, "'requests: %s' is more than tutti can count; write at "
                        "most 1000000/s, or remove the key for no limit", v->value);
        return -1;
    }
    conf->requests = rate.per_sec;
    conf->requests_text = v->value;
    return 0;
}

/* "remote_addr" (the default) or "header:NAME". */
static int conf_key(const tt_conf_node *v, tt_throttle_conf *conf, tt_errbuf *err)
{
    /* RFC 9110 token characters: what a header name may be made of */
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const tt_api *api = tt_throttle_api;
    const char *s;

    if (api->conf_string(v, &s, err) != 0)
        return -1;
    if (strcmp(s, "remote_addr") == 0) {
        conf->key_header = NULL;
        return 0;
    }
    if (strncmp(s, "header:", 7) == 0) {
        const char *name = s + 7;
        while (*name == ' ')
            name++;
        size_t len = strlen(name);
        if (len > 0 && len < 256 && strspn(name, tchar) == len) {
            conf->key_header = name;
            return 0;
        }
    }
    api->conf_error(err, v, "'key: %s': write remote_addr (the client's address, the "
                    "default) or header:NAME for the header in which your proxy passes "
                    "the client's address, such as key: header:X-Real-IP", s);
    return -1;
}

static int conf_trusted(const tt_conf_node *v, tt_throttle_conf *conf, tt_errbuf *err)
{
    const tt_api *api = tt_throttle_api;
    size_t n = v->type == TT_CONF_SEQ ? v->n : 1;

    if (v->type == TT_CONF_MAP || n == 0) {
        api->conf_error(err, v, "'trusted_proxies' is a list of addresses and "
                        "networks, such as trusted_proxies: [127.0.0.1, \"::1\", "
                        "10.0.0.0/8]");
        return -1;
    }
    conf->trusted = api->conf_alloc(n * sizeof(*conf->trusted));
    if (conf->trusted == NULL) {
        api->conf_error(err, v, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const tt_conf_node *item = v->type == TT_CONF_SEQ ? v->items[i] : v;
        const char *s;
        char net[TT_ADDR_TEXT_MAX];

        if (api->conf_string(item, &s, err) != 0)
            return -1;
        switch (tt_cidr_parse(s, &conf->trusted[i])) {
        case TT_CIDR_OK:
            break;
        case TT_CIDR_HOST_BITS:
            api->conf_error(err, item, "'%s' has bits set past its /%u prefix; write "
                            "the network, %s/%u", s, conf->trusted[i].prefix,
                            tt_addr_format(&conf->trusted[i].net, net, sizeof(net)),
                            conf->trusted[i].prefix);
            return -1;
        default:
            api->conf_error(err, item, "'%s' is not an IP address or network; write "
                            "one such as 127.0.0.1, \"::1\", 10.0.0.0/8 or "
                            "\"fd00::/8\"", s);
            return -1;
        }
    }
    conf->ntrusted = n;
    return 0;
}

/* Keys that only mean something beside another one. */
static int needs(const tt_conf_node *node, const char *key, const char *other1,
                 const char *other2, const char *hint, tt_errbuf *err)
{
    const tt_api *api = tt_throttle_api;
    const tt_conf_node *v = api->conf_get(node, key);

    if (v == NULL || api->conf_get(node, other1) != NULL ||
        (other2 != NULL && api->conf_get(node, other2) != NULL))
        return 0;
    /* point at the key itself, not its value */
    for (size_t i = 0; i < node->n; i++)
        if (node->items[i] == v)
            v = node->keys[i];
    api->conf_error(err, v, "'%s' %s", key, hint);
    return -1;
}

static int check_combinations(const tt_conf_node *node, const tt_throttle_conf *conf,
                              tt_errbuf *err)
{
    const tt_api *api = tt_throttle_api;

    if (needs(node, "burst", "requests", NULL, "is how many requests the requests: "
              "limit lets through at once; add requests: 20/s beside it, or remove it", err) != 0 ||
        needs(node, "download_after", "download", NULL, "is how much goes before the "
              "download: limit starts; add download: 512KB/s beside it, or remove it",
              err) != 0 ||
        needs(node, "key", "requests", "connections", "picks whose requests count for "
              "requests: and connections:; add one of them, or remove it", err) != 0 ||
        needs(node, "trusted_proxies", "requests", "connections", "only matters for "
              "requests: and connections:; add one of them, or remove it", err) != 0 ||
        needs(node, "clients", "requests", "connections", "sizes the table of "
              "requests: and connections:; add one of them, or remove it", err) != 0)
        return -1;

    const tt_conf_node *key = api->conf_get(node, "key");
    if (conf->key_header != NULL && conf->ntrusted == 0) {
        api->conf_error(err, key, "'key: header:%s' is believed only from the proxies "
                        "in trusted_proxies; add the ones in front of tutti, such as "
                        "trusted_proxies: [127.0.0.1]", conf->key_header);
        return -1;
    }
    if (conf->key_header == NULL && conf->ntrusted > 0) {
        api->conf_error(err, api->conf_get(node, "trusted_proxies"),
                        "'trusted_proxies' are believed about the header named in key; "
                        "add key: header:X-Real-IP (or the header your proxy sets), or "
                        "remove trusted_proxies");
        return -1;
    }
    return 0;
}

static int conf_count(const tt_conf_node *v, long max, unsigned long *out, tt_errbuf *err)
{
    long n;
    if (tt_throttle_api->conf_int(v, 1, max, &n, err) != 0)
        return -1;
    *out = (unsigned long)n;
    return 0;
}

int tt_throttle_configure(const tt_conf_node *node, void *main_conf,
                          void **route_conf, tt_errbuf *err)
{
    static const char *const keys[] = {
        "download", "download_after", "upload", "requests", "burst", "key",
        "trusted_proxies", "connections", "clients", NULL
    };
    const tt_api *api = tt_throttle_api;
    const tt_conf_node *v;
    tt_throttle_conf *conf = api->conf_alloc(sizeof(*conf));

    (void)main_conf;
    if (conf == NULL) {
        api->conf_error(err, node, "out of memory");
        return -1;
    }
    conf->clients = TT_THROTTLE_DEFAULT_CLIENTS;

    /* `throttle:` alone or `throttle: {}` limits nothing: surely a mistake */
    if (node->type == TT_CONF_SCALAR && !node->quoted && node->len == 0) {
        api->conf_error(err, node, "'throttle' sets no limit; add at least one of "
                        TT_THROTTLE_EXAMPLE);
        return -1;
    }
    if (node->type != TT_CONF_MAP) {
        api->conf_error(err, node, "'throttle' is a map of limits, such as "
                        "throttle: {download: 512KB/s, requests: 20/s}");
        return -1;
    }
    if (api->conf_check_keys(node, "throttle", keys, err) != 0)
        return -1;

    if ((v = api->conf_get(node, "download")) != NULL &&
        conf_byte_rate(v, "download", &conf->download, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "download_after")) != NULL &&
        api->conf_size(v, &conf->download_after, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "upload")) != NULL &&
        conf_byte_rate(v, "upload", &conf->upload, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "requests")) != NULL && conf_requests(v, conf, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "burst")) != NULL &&
        conf_count(v, (long)TT_BUCKET_MAX_BURST, &conf->burst, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "connections")) != NULL &&
        conf_count(v, TT_THROTTLE_MAX_CONNECTIONS, &conf->connections, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "clients")) != NULL &&
        conf_count(v, TT_THROTTLE_MAX_CLIENTS, &conf->clients, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "key")) != NULL && conf_key(v, conf, err) != 0)
        return -1;
    if ((v = api->conf_get(node, "trusted_proxies")) != NULL &&
        conf_trusted(v, conf, err) != 0)
        return -1;

    /* a key that needs another says which first: more useful than "no limit" */
    if (check_combinations(node, conf, err) != 0)
        return -1;
    if (conf->download == 0 && conf->upload == 0 && conf->requests == 0 &&
        conf->connections == 0) {
        api->conf_error(err, node, "'throttle' sets no limit; add at least one of "
                        TT_THROTTLE_EXAMPLE);
        return -1;
    }
    if (conf->requests > 0 && conf->burst == 0)
        conf->burst = tt_bucket_default_burst(conf->requests);

    *route_conf = conf;
    return 0;
}
