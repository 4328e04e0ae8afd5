/* TLS session-ticket keys: one set for all workers, rotated by the master.
 *
 * A ticket is a client's session, encrypted with a key only the server
 * knows; any worker must be able to open any worker's ticket, or a client
 * resumes only when it happens to reach the same process. So the keys live
 * in one page of shared memory made before the first fork (it survives
 * reloads), the master writes it, the workers read it in the handshake.
 *
 * Every rotation (12 h) makes a new key for new tickets and keeps the
 * previous one to open tickets made with it (which are then re-issued), so
 * a ticket lives at most two periods: a stolen key opens at most a day of
 * sessions (forward secrecy of resumed sessions, the reason to rotate).
 *
 * The master writes while workers may read: a sequence counter, odd while
 * a write is under way, tells a reader to read again (a seqlock).
 */
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include "config/config.h"
#include "log.h"

#define TT_TICKET_ROTATE_MS (12ULL * 3600 * 1000)

typedef struct {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
} tt_ticket_key;

typedef struct {
    unsigned      seq;          /* odd: being written */
    tt_ticket_key cur, prev;
} tt_ticket_keys;

static tt_ticket_keys *shared;      /* in every process after the first fork */
static uint64_t next_rotation_ms;   /* the master's; 0 before its first tick */
static uint64_t rotate_ms = TT_TICKET_ROTATE_MS;

static int new_key(tt_ticket_key *k)
{
    return RAND_bytes((unsigned char *)k, sizeof(*k)) == 1 ? 0 : -1;
}

int tt_tickets_init(void)
{
    if (shared != NULL)
        return 0;
    void *p = mmap(NULL, sizeof(tt_ticket_keys), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    shared = p;
    if (new_key(&shared->cur) != 0 || new_key(&shared->prev) != 0)
        return -1;
    /* for the tests: rotations seconds apart instead of hours */
    const char *env = getenv("TUTTI_TICKET_ROTATE_MS");
    if (env != NULL && atoll(env) > 0)
        rotate_ms = (uint64_t)atoll(env);
    return 0;
}

static uint64_t tt_tickets_lifetime_s(void)
{
    return 2 * rotate_ms / 1000;
}

/* The master, from its loop, with its monotonic clock: a new current key
 * when it is time (the first call only sets the time). */
void tt_tickets_tick(uint64_t now_ms)
{
    if (shared == NULL)
        return;
    if (next_rotation_ms == 0)
        next_rotation_ms = now_ms + rotate_ms;
    if (now_ms < next_rotation_ms)
        return;
    tt_ticket_key k;
    if (new_key(&k) != 0)
        return;                         /* try again next time */
    __atomic_add_fetch(&shared->seq, 1, __ATOMIC_ACQ_REL);
    shared->prev = shared->cur;
    shared->cur = k;
    __atomic_add_fetch(&shared->seq, 1, __ATOMIC_ACQ_REL);
    next_rotation_ms = now_ms + rotate_ms;
    tt_log(TT_LOG_DEBUG, "rotated the TLS session-ticket keys");
}

uint64_t tt_tickets_next_ms(void)
{
    return shared != NULL && next_rotation_ms != 0 ? next_rotation_ms : UINT64_MAX;
}

static void read_keys(tt_ticket_keys *out)
{
    for (;;) {
        unsigned s1 = __atomic_load_n(&shared->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1)
            continue;
        memcpy(&out->cur, &shared->cur, sizeof(out->cur));
        memcpy(&out->prev, &shared->prev, sizeof(out->prev));
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&shared->seq, __ATOMIC_ACQUIRE) == s1)
            return;
    }
}

static int use_key(const tt_ticket_key *k, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                   EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof(k->hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"sha256", 0),
        OSSL_PARAM_construct_end()
    };
    if (EVP_MAC_CTX_set_params(hctx, params) != 1)
        return -1;
    /* fetched once: OpenSSL 3 looks a cipher up by name (locks, string
     * compares) every time EVP_aes_256_cbc() is handed to an init */
    static EVP_CIPHER *aes;
    if (aes == NULL && (aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)) == NULL)
        return -1;
    int ok = enc ? EVP_EncryptInit_ex(cctx, aes, NULL, k->aes, iv)
                 : EVP_DecryptInit_ex(cctx, aes, NULL, k->aes, iv);
    return ok == 1 ? 0 : -1;
}

/* OpenSSL's ticket callback: 1 = done, 2 = opened with the previous key
 * (issue a new ticket), 0 = not ours (a full handshake), -1 = failure. */
static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    (void)ssl;
    tt_ticket_keys k;
    read_keys(&k);
    if (enc) {
        if (RAND_bytes(iv, 16) != 1)                /* AES's block */
            return -1;
        memcpy(name, k.cur.name, 16);
        return use_key(&k.cur, iv, cctx, hctx, 1) == 0 ? 1 : -1;
    }
    if (memcmp(name, k.cur.name, 16) == 0)
        return use_key(&k.cur, iv, cctx, hctx, 0) == 0 ? 1 : -1;
    if (memcmp(name, k.prev.name, 16) == 0)
        return use_key(&k.prev, iv, cctx, hctx, 0) == 0 ? 2 : -1;
    return 0;
}

void tt_tickets_attach(void *ssl_ctx)
{
    if (tt_tickets_init() != 0) {
        tt_log(TT_LOG_WARN, "no shared memory for TLS session tickets: each worker keeps "
               "its own keys");
        return;
    }
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ssl_ctx, ticket_cb);
    SSL_CTX_set_timeout(ssl_ctx, (long)tt_tickets_lifetime_s());
}
