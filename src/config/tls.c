/* A server's `tls:` block -> an OpenSSL context, checked before start.
 *
 *   tls: {cert: certs/site.pem, key: certs/site.key, protocols: [TLSv1.2, TLSv1.3]}
 *
 * Everything that can be wrong with the files is found here, in the master,
 * with the config's file:line:col: a missing or unreadable file, a chain
 * OpenSSL cannot parse, a key that needs a password or does not match the
 * certificate. A certificate past its date is only a warning: the operator
 * may be replacing it, and refusing to start would take a site down.
 *
 * The context is made once per (re)load, before the workers fork. Session
 * tickets are sealed with keys all workers share and the master rotates
 * (tickets.c): a client resumes on whichever worker it reaches.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "config/config.h"
#include "http/http.h"
#include "log.h"

static const char *const tls_keys[] = {
    "cert", "key", "password_file", "protocols", "ciphers", "prefer_server_ciphers",
    "hsts", "ocsp", NULL
};

/* Mozilla's "intermediate" list for TLS 1.2 (TLS 1.3 has its own, fixed) */
#define TT_TLS_CIPHERS                                                  \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"        \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"        \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"        \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"              \
    "DHE-RSA-CHACHA20-POLY1305"

/* OpenSSL's last error as text, and its queue emptied. */
static const char *ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, len, "%s", r ? r : "unknown error");
    ERR_clear_error();
    return buf;
}

static int readable(const char *path, tt_errbuf *err, const tt_conf_node *at, const char *what)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        tt_conf_error(err, at, "cannot read the %s '%s': %s", what, path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

/* The key's password: the first line of password_file. */
static int password_cb(char *buf, int size, int rwflag, void *userdata)
{
    (void)rwflag;
    const char *pw = userdata;
    if (pw == NULL)
        return 0;
    int n = (int)strlen(pw);
    if (n > size)
        n = size;
    memcpy(buf, pw, (size_t)n);
    return n;
}

static int read_password(const tt_conf_node *v, const char *path, char *out, size_t len,
                         tt_errbuf *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        tt_conf_error(err, v, "cannot read the password file '%s': %s", path, strerror(errno));
        return -1;
    }
    if (fgets(out, (int)len, f) == NULL)
        out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

/* Does the PEM file hold an encrypted key (PKCS#8 or the old Proc-Type)? */
static int pem_encrypted(const char *path)
{
    char line[256];
    int found = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, "ENCRYPTED") != NULL;
    fclose(f);
    return found;
}

static int parse_protocols(const tt_conf_node *v, int *min, int *max, tt_errbuf *err)
{
    if (v->type != TT_CONF_SEQ || v->n == 0) {
        tt_conf_error(err, v, "'protocols' is a list, such as protocols: [TLSv1.2, TLSv1.3]");
        return -1;
    }
    *min = 0;
    *max = 0;
    for (size_t i = 0; i < v->n; i++) {
        const tt_conf_node *p = v->items[i];
        int ver;
        if (p->type != TT_CONF_SCALAR)
            ver = -1;
        else if (strcmp(p->value, "TLSv1.2") == 0)
            ver = TLS1_2_VERSION;
        else if (strcmp(p->value, "TLSv1.3") == 0)
            ver = TLS1_3_VERSION;
        else if (strcmp(p->value, "TLSv1") == 0 || strcmp(p->value, "TLSv1.0") == 0 ||
                 strcmp(p->value, "TLSv1.1") == 0 || strncmp(p->value, "SSLv", 4) == 0) {
            tt_conf_error(err, p, "'%s' is broken and not offered; use TLSv1.2 and TLSv1.3",
                          p->value);
            return -1;
        } else
            ver = -1;
        if (ver < 0) {
            tt_conf_error(err, p, "'%s': expected TLSv1.2 or TLSv1.3",
                          p->type == TT_CONF_SCALAR ? p->value : "(not a name)");
            return -1;
        }
        if (*min == 0 || ver < *min)
            *min = ver;
        if (ver > *max)
            *max = ver;
    }
    return 0;
}

/* hsts: 1y | {max_age: 1y, include_subdomains: true, preload: false} */
static int parse_hsts(tt_config *cf, const tt_conf_node *v, const char **out, tt_errbuf *err)
{
    uint64_t ms = 0;
    int sub = 0, preload = 0;
    if (v->type == TT_CONF_MAP) {
        static const char *const keys[] = { "max_age", "include_subdomains", "preload", NULL };
        const tt_conf_node *x;
        if (tt_conf_check_keys(v, "hsts", keys, err) != 0)
            return -1;
        if ((x = tt_conf_get(v, "max_age")) == NULL) {
            tt_conf_error(err, v, "'hsts' needs max_age, such as hsts: {max_age: 1y}");
            return -1;
        }
        if (tt_conf_duration(x, &ms, err) != 0)
            return -1;
        if ((x = tt_conf_get(v, "include_subdomains")) != NULL && tt_conf_bool(x, &sub, err) != 0)
            return -1;
        if ((x = tt_conf_get(v, "preload")) != NULL && tt_conf_bool(x, &preload, err) != 0)
            return -1;
    } else if (tt_conf_duration(v, &ms, err) != 0) {
        return -1;
    }
    char buf[128];
    snprintf(buf, sizeof(buf), "max-age=%llu%s%s", (unsigned long long)(ms / 1000),
             sub ? "; includeSubDomains" : "", preload ? "; preload" : "");
    *out = tt_arena_strdup(cf->arena, buf);
    return *out != NULL ? 0 : -1;
}

/* ALPN: HTTP/1.1 is what tutti speaks; a client offering only h2 gets no
 * ALPN answer and may still go on with HTTP/1.1. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned int i = 0; i + 1 <= inlen;) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen)
            break;
        if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

/* SNI: the connection started with the default server's context (the
 * first on its address); the name the client asks for picks the server, as
 * Host does for requests, and with it the certificate. */
static int servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    const tt_listen *l = SSL_get_app_data(ssl);
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (l == NULL || name == NULL)
        return SSL_TLSEXT_ERR_OK;
    tt_server *s = tt_route_server(l, name, strlen(name));
    if (s != NULL && s->tls != NULL && s->tls->ctx != (void *)SSL_get_SSL_CTX(ssl))
        SSL_set_SSL_CTX(ssl, s->tls->ctx);
    return SSL_TLSEXT_ERR_OK;
}

/* OCSP stapling: the DER response read from `ocsp:` goes to every client
 * that asks for the certificate's status (a copy: OpenSSL frees it). */
static int staple(SSL *ssl, void *arg)
{
    const tt_tls *t = arg;
    if (t == NULL || t->ocsp_len == 0)
        return SSL_TLSEXT_ERR_NOACK;
    unsigned char *copy = OPENSSL_malloc(t->ocsp_len);
    if (copy == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    memcpy(copy, t->ocsp, t->ocsp_len);
    SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)t->ocsp_len);
    return SSL_TLSEXT_ERR_OK;
}

/* Read and check a stapled OCSP response: a successful response about this
 * certificate; one past its nextUpdate only warns (fetch a new one and
 * reload), like an expired certificate. */
static int load_ocsp(tt_config *cf, tt_tls *t, SSL_CTX *ctx, const tt_conf_node *v,
                     const char *path, tt_errbuf *err)
{
    char why[256];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        tt_conf_error(err, v, "cannot read the OCSP response '%s': %s", path, strerror(errno));
        return -1;
    }
    unsigned char buf[16384];
    size_t len = fread(buf, 1, sizeof(buf), f);
    int more = fgetc(f) != EOF;
    fclose(f);
    const unsigned char *p = buf;
    OCSP_RESPONSE *resp = more ? NULL : d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    if (resp == NULL || OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        tt_conf_error(err, v, "'%s' is not a successful OCSP response in DER (%s); fetch "
                      "one with: openssl ocsp -issuer CA.pem -cert CERT.pem -url URL "
                      "-respout FILE", path, resp ? "status not successful"
                                                   : ssl_reason(why, sizeof(why)));
        OCSP_RESPONSE_free(resp);
        return -1;
    }
    /* is it about our certificate? find its issuer in the chain */
    X509 *leaf = SSL_CTX_get0_certificate(ctx), *issuer = NULL;
    STACK_OF(X509) *chain = NULL;
    SSL_CTX_get0_chain_certs(ctx, &chain);
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++)
        if (X509_check_issued(sk_X509_value(chain, i), leaf) == X509_V_OK)
            issuer = sk_X509_value(chain, i);
    OCSP_BASICRESP *basic = OCSP_response_get1_basic(resp);
    int status = -1;
    ASN1_GENERALIZEDTIME *next = NULL;
    if (basic != NULL && issuer != NULL) {
        OCSP_CERTID *id = OCSP_cert_to_id(NULL, leaf, issuer);
        int reason;
        ASN1_GENERALIZEDTIME *rev, *thisupd;
        if (id == NULL || OCSP_resp_find_status(basic, id, &status, &reason, &rev, &thisupd,
                                                &next) != 1)
            status = -1;
        OCSP_CERTID_free(id);
    }
    int stale = next != NULL && X509_cmp_current_time(next) < 0;
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(resp);
    if (status == -1) {
        tt_conf_error(err, v, "the OCSP response '%s' is not about the certificate in 'cert'%s",
                      path, issuer == NULL ? " (its issuer must follow it in the chain file)"
                                           : "");
        return -1;
    }
    if (status == V_OCSP_CERTSTATUS_REVOKED)
        tt_log(TT_LOG_WARN, "the OCSP response '%s' says the certificate is revoked", path);
    if (stale)
        tt_log(TT_LOG_WARN, "the OCSP response '%s' is past its next update: clients may "
               "ignore it; fetch a new one and reload", path);
    t->ocsp = tt_arena_alloc(cf->arena, len);
    if (t->ocsp == NULL)
        return -1;
    memcpy(t->ocsp, buf, len);
    t->ocsp_len = len;
    SSL_CTX_set_tlsext_status_cb(ctx, staple);
    SSL_CTX_set_tlsext_status_arg(ctx, t);
    return 0;
}

static void warn_expiry(SSL_CTX *ctx, const char *cert)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    if (x == NULL)
        return;
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
        tt_log(TT_LOG_WARN, "the certificate in '%s' has expired: clients will refuse it; "
               "renew it and reload", cert);
    else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
        tt_log(TT_LOG_WARN, "the certificate in '%s' is not valid yet", cert);
}

tt_tls *tt_tls_load(tt_config *cf, const tt_conf_node *node, tt_errbuf *err)
{
    char why[256];

    if (node->type != TT_CONF_MAP) {
        tt_conf_error(err, node, "'tls' is a map, such as tls: {cert: site.pem, key: site.key}");
        return NULL;
    }
    if (tt_conf_check_keys(node, "tls", tls_keys, err) != 0)
        return NULL;
    const tt_conf_node *cert_n = tt_conf_get(node, "cert"), *key_n = tt_conf_get(node, "key");
    if (cert_n == NULL || key_n == NULL) {
        tt_conf_error(err, node, "'tls' needs 'cert' (the certificate chain, PEM) and 'key' "
                      "(its private key), such as tls: {cert: site.pem, key: site.key}");
        return NULL;
    }
    const char *cert, *key, *pwfile = NULL;
    if (tt_conf_path(cert_n, &cert, err) != 0 || tt_conf_path(key_n, &key, err) != 0)
        return NULL;
    const tt_conf_node *v;
    char password[1024] = "";
    if ((v = tt_conf_get(node, "password_file")) != NULL) {
        if (tt_conf_path(v, &pwfile, err) != 0 || read_password(v, pwfile, password,
                                                                sizeof(password), err) != 0)
            return NULL;
    }
    int min = TLS1_2_VERSION, max = TLS1_3_VERSION;
    if ((v = tt_conf_get(node, "protocols")) != NULL && parse_protocols(v, &min, &max, err) != 0)
        return NULL;
    if (readable(cert, err, cert_n, "certificate chain") != 0 ||
        readable(key, err, key_n, "key") != 0)
        return NULL;

    tt_tls *t = tt_arena_alloc(cf->arena, sizeof(*t));
    if (t == NULL)
        return NULL;
    memset(t, 0, sizeof(*t));
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        tt_conf_error(err, node, "cannot make a TLS context: %s", ssl_reason(why, sizeof(why)));
        return NULL;
    }
    t->ctx = ctx;
    t->next = cf->tls_list;         /* freed with the config from here on */
    cf->tls_list = t;

    SSL_CTX_set_min_proto_version(ctx, min);
    SSL_CTX_set_max_proto_version(ctx, max);
    /* (OpenSSL 3 refuses client-initiated renegotiation by default) */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    /* a small write buffer per connection instead of 16 KiB + 16 KiB */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* Resumption is by tickets alone (TLS 1.2 and 1.3, any worker): a
     * server-side session cache would be per worker, cost memory per client
     * and a sweep of the whole cache every 255 handshakes. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    tt_tickets_attach(ctx);             /* tickets any worker can open */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"tutti", 5);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, servername);

    const char *ciphers = TT_TLS_CIPHERS;
    if ((v = tt_conf_get(node, "ciphers")) != NULL && tt_conf_string(v, &ciphers, err) != 0)
        return NULL;
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        tt_conf_error(err, v ? v : node, "'ciphers: %s': OpenSSL knows none of these (%s); "
                      "write an OpenSSL cipher list such as ECDHE-RSA-AES128-GCM-SHA256",
                      ciphers, ssl_reason(why, sizeof(why)));
        return NULL;
    }
    int prefer = 0;
    if ((v = tt_conf_get(node, "prefer_server_ciphers")) != NULL &&
        tt_conf_bool(v, &prefer, err) != 0)
        return NULL;
    if (prefer)
        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if ((v = tt_conf_get(node, "hsts")) != NULL && parse_hsts(cf, v, &t->hsts, err) != 0)
        return NULL;

    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        tt_conf_error(err, cert_n, "'%s' is not a PEM certificate chain (%s); give the "
                      "certificate, then its intermediates, in one PEM file", cert,
                      ssl_reason(why, sizeof(why)));
        return NULL;
    }
    SSL_CTX_set_default_passwd_cb(ctx, password_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, password);
    int ok = SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);  /* password is on the stack */
    OPENSSL_cleanse(password, sizeof(password));
    if (ok != 1) {
        ssl_reason(why, sizeof(why));
        if (strstr(why, "key values mismatch") != NULL) {
            tt_conf_error(err, key_n, "the key '%s' does not belong to the certificate in "
                          "'%s' (%s)", key, cert, why);
            return NULL;
        }
        if (pwfile != NULL || strstr(why, "bad decrypt") != NULL ||
            strstr(why, "password") != NULL || pem_encrypted(key))
            tt_conf_error(err, key_n, "cannot read the key '%s' (%s): %s", key, why,
                          pwfile ? "is password_file's first line its password?"
                                 : "it is encrypted: add password_file");
        else
            tt_conf_error(err, key_n, "'%s' is not a PEM private key (%s)", key, why);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tt_conf_error(err, key_n, "the key '%s' does not belong to the certificate in '%s' (%s)",
                      key, cert, ssl_reason(why, sizeof(why)));
        return NULL;
    }
    warn_expiry(ctx, cert);
    if ((v = tt_conf_get(node, "ocsp")) != NULL) {
        const char *path;
        if (tt_conf_path(v, &path, err) != 0 || load_ocsp(cf, t, ctx, v, path, err) != 0)
            return NULL;
    }
    return t;
}

void tt_tls_free_all(tt_config *cf)
{
    for (tt_tls *t = cf->tls_list; t != NULL; t = t->next) {
        SSL_CTX_free(t->ctx);
        t->ctx = NULL;
    }
    cf->tls_list = NULL;
}
