/* vault.h - public API of the Tradewink key vault (prefix vault_).
 *
 * Secret buffers, Fernet tokens (exactly as the Fernet spec, interoperable with Python's
 * cryptography), PBKDF2-HMAC-SHA256 per-user key derivation, versioned master keys, a bounded
 * derived-key cache in locked never-dumped memory, masks for display and log redaction.
 *
 * Conventions: every function returns a vault_rc (VAULT_OK == 0); results come back through
 * out-parameters that are only written on success. Ownership is stated on each declaration.
 * Nothing here ever formats a secret into a string: there is no printf path for plaintext.
 * This library depends only on OpenSSL's libcrypto and pthreads; it never includes server
 * headers.
 */
#ifndef VAULT_VAULT_H
#define VAULT_VAULT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- result codes (append only, never renumber) ---------------------------------------- */
typedef enum vault_rc {
    VAULT_OK = 0,
    VAULT_ERR_INVALID_ARG = 1,     /* a NULL or out-of-range argument */
    VAULT_ERR_NOMEM = 2,           /* allocation failed */
    VAULT_ERR_TOKEN = 3,           /* the one generic "token invalid" answer (no oracle) */
    VAULT_ERR_CRYPTO = 4,          /* OpenSSL failed (RNG, cipher init): not the caller's fault */
    VAULT_ERR_MASTER_KEY = 5,      /* master key configuration is malformed */
    VAULT_ERR_UNKNOWN_VERSION = 6, /* no master key with the record's version */
    VAULT_ERR_IO = 7,              /* reading/writing the master key file failed */
    VAULT_ERR_PERMISSION = 8,      /* master key file readable by group/others, or not ours */
    VAULT_ERR_BUSY = 9,            /* waited too long for a derivation slot */
    VAULT_ERR_WEAK_PARAMS = 10,    /* PBKDF2 iterations below the floor */
} vault_rc;

/* Static, never NULL, never contains secret material. */
const char *vault_strerror(vault_rc rc);

/* ---- secret buffer ---------------------------------------------------------------------- */
/* Opaque heap buffer holding plaintext. Stored in OpenSSL's secure heap when it has room
 * (locked, excluded from core dumps), else on the normal heap; always wiped with
 * OPENSSL_cleanse on destroy. The bytes are followed by one NUL so a text secret can be handed
 * to an API wanting a C string; the length does not count it. */
typedef struct vault_secret vault_secret;

/* Copies len bytes of src. *out is owned by the caller: release with vault_secret_destroy. */
vault_rc vault_secret_create(const void *src, size_t len, vault_secret **out);
/* Like vault_secret_create, then wipes src[0..len) (e.g. a decoded protobuf field), also on
 * failure, so the plaintext never outlives this call outside the secret buffer. */
vault_rc vault_secret_take(void *src, size_t len, vault_secret **out);
/* Borrowed view; valid until vault_secret_destroy. Never log it. */
const unsigned char *vault_secret_data(const vault_secret *s);
size_t vault_secret_len(const vault_secret *s);
/* Constant-time (in the length of s) comparison with a candidate; 1 equal, 0 different. */
int vault_secret_equals(const vault_secret *s, const void *candidate, size_t len);
/* Wipes and frees. NULL is a no-op. */
void vault_secret_destroy(vault_secret *s);

/* ---- mask ------------------------------------------------------------------------------- */
/* Size of a buffer that always holds a mask: 2 + 3 (U+2026 in UTF-8) + 4 + NUL. */
#define VAULT_MASK_MAX 10
/* "PKAB12CD34EF9XQ2" -> "PK…9XQ2": first 2, an ellipsis, last 4. Values shorter than
 * VAULT_MASK_MIN_LEN, or with non-printable ASCII in the shown part, become "…" alone so
 * nothing is revealed. out must hold VAULT_MASK_MAX bytes; it is always NUL terminated. */
#define VAULT_MASK_MIN_LEN 12
void vault_mask(const char *value, size_t len, char out[VAULT_MASK_MAX]);
void vault_mask_secret(const vault_secret *s, char out[VAULT_MASK_MAX]);

/* ---- Fernet ------------------------------------------------------------------------------ */
#define VAULT_KEY_LEN 32               /* Fernet key: signing key (16) || encryption key (16) */
#define VAULT_SALT_LEN 16              /* per-user salt */
#define VAULT_FERNET_MAX_CLOCK_SKEW 60 /* seconds a token may be in the future */
#define VAULT_FERNET_MAX_TOKEN 65536   /* longer tokens are refused before decoding */

/* Why a token was refused: for logs only. Callers must answer every one of these with the
 * same generic error to their own callers (decryption must not become an oracle). */
typedef enum vault_token_reason {
    VAULT_REASON_NONE = 0,
    VAULT_REASON_TOO_LONG,
    VAULT_REASON_BASE64,
    VAULT_REASON_TOO_SHORT,
    VAULT_REASON_VERSION,
    VAULT_REASON_EXPIRED,
    VAULT_REASON_FUTURE,
    VAULT_REASON_BLOCK_SIZE,
    VAULT_REASON_MAC,
    VAULT_REASON_PADDING,
    VAULT_REASON_INTERNAL,
} vault_token_reason;
const char *vault_token_reason_str(vault_token_reason r);

/* Encrypts msg under key with a random IV (RAND_bytes) and the current time.
 * *token_out is a NUL-terminated base64url token owned by the caller: release with free(). */
vault_rc vault_fernet_encrypt(const unsigned char key[VAULT_KEY_LEN], const void *msg,
                              size_t msg_len, char **token_out);
/* Deterministic variant for test vectors: caller supplies time (seconds since the epoch) and
 * IV. Never reuse an IV with the same key in production. */
vault_rc vault_fernet_encrypt_at(const unsigned char key[VAULT_KEY_LEN], const void *msg,
                                 size_t msg_len, uint64_t now, const unsigned char iv[16],
                                 char **token_out);
/* Verifies and decrypts. ttl_s <= 0 means no age limit; tokens more than
 * VAULT_FERNET_MAX_CLOCK_SKEW seconds in the future are always refused. The MAC is checked
 * (constant time) before any decryption. On failure returns VAULT_ERR_TOKEN (or NOMEM /
 * INVALID_ARG) and, if reason is not NULL, stores why. *out is owned by the caller
 * (vault_secret_destroy). */
vault_rc vault_fernet_decrypt(const unsigned char key[VAULT_KEY_LEN], const char *token,
                              size_t token_len, int64_t ttl_s, vault_secret **out,
                              vault_token_reason *reason);
vault_rc vault_fernet_decrypt_at(const unsigned char key[VAULT_KEY_LEN], const char *token,
                                 size_t token_len, int64_t ttl_s, uint64_t now, vault_secret **out,
                                 vault_token_reason *reason);
/* Decodes a base64url Fernet key (44 chars) into key. Wipes key on failure. */
vault_rc vault_fernet_key_decode(const char *b64, size_t len, unsigned char key[VAULT_KEY_LEN]);

/* ---- PBKDF2 ------------------------------------------------------------------------------ */
/* The floor for production. The library functions below take any iteration count >= 1 so
 * that test vectors can run; the floor is enforced by vault_create (and should be by the
 * config layer through vault_iterations_ok). Iterations are configurable upward only. */
#define VAULT_PBKDF2_MIN_ITERATIONS 600000u
#define VAULT_PBKDF2_DEFAULT_ITERATIONS 600000u
/* 1 if n may be used in production (n >= VAULT_PBKDF2_MIN_ITERATIONS), else 0. */
int vault_iterations_ok(uint32_t n);
/* PBKDF2-HMAC-SHA256(password, salt, iterations) -> out[out_len]. Pure; thread safe. */
vault_rc vault_pbkdf2_sha256(const void *password, size_t password_len, const void *salt,
                             size_t salt_len, uint32_t iterations, unsigned char *out,
                             size_t out_len);

/* ---- master keys ------------------------------------------------------------------------- */
#define VAULT_MASTER_MIN_BYTES 32
/* Parsed TW_VAULT_MASTER_KEYS: "v2:BASE64,v1:BASE64", newest (highest version) first;
 * versions are unique positive integers in strictly descending order; each key decodes
 * (standard or url-safe base64, padding optional) to >= 32 bytes. Key bytes live in secure
 * memory. Opaque; owned by whoever parsed it until handed to vault_create. */
typedef struct vault_masterkeys vault_masterkeys;

/* Parses spec[0..len). On error returns VAULT_ERR_MASTER_KEY and writes a message naming the
 * bad entry by position (and version once it parsed) into err (if not NULL): the message
 * never contains key material. *out owned by caller: vault_masterkeys_destroy. */
vault_rc vault_masterkeys_parse(const char *spec, size_t len, vault_masterkeys **out, char *err,
                                size_t err_len);
/* Dev mode: loads the master key file at path, or creates it (mode 0600, O_EXCL, one fresh
 * 32-byte key as "v1:BASE64") if it does not exist. Refuses (VAULT_ERR_PERMISSION) an existing
 * file that is not a regular file owned by this user or that group/others can access. */
vault_rc vault_masterkeys_load_or_create(const char *path, vault_masterkeys **out, char *err,
                                         size_t err_len);
size_t vault_masterkeys_count(const vault_masterkeys *mk);
/* Version of entry i (0 = newest); 0 if out of range. */
int vault_masterkeys_version(const vault_masterkeys *mk, size_t i);
/* Wipes and frees. NULL is a no-op. */
void vault_masterkeys_destroy(vault_masterkeys *mk);

/* ---- secure memory ----------------------------------------------------------------------- */
typedef enum vault_smem_mode {
    VAULT_SMEM_NONE = 0,     /* not initialised yet */
    VAULT_SMEM_OPENSSL = 1,  /* OpenSSL secure heap, locked and MADV_DONTDUMP */
    VAULT_SMEM_FALLBACK = 2, /* our own mmap'd pages, mlock + MADV_DONTDUMP */
    VAULT_SMEM_UNLOCKED = 3, /* mlock refused (RLIMIT_MEMLOCK): DONTDUMP only */
} vault_smem_mode;
/* Initialises key memory once per process (idempotent, thread safe): OpenSSL's secure heap of
 * heap_bytes (a power of two; 0 = 256 KiB), or the mmap fallback if that fails. An already
 * initialised OpenSSL secure heap is reused. vault_create calls it. */
vault_smem_mode vault_secure_memory_init(size_t heap_bytes);
vault_smem_mode vault_secure_memory_mode(void);

/* ---- derived-key cache ------------------------------------------------------------------- */
typedef struct vault_keycache vault_keycache;
/* Derives the 32-byte key for (master_version, salt) into out. Returns VAULT_OK or an error;
 * called without the cache lock held, at most max_concurrent of them at a time. */
typedef vault_rc (*vault_derive_fn)(void *ctx, int master_version, const unsigned char *salt,
                                    size_t salt_len, unsigned char out[VAULT_KEY_LEN]);
/* Monotonic milliseconds; injectable for tests. */
typedef int64_t (*vault_clock_fn)(void *ctx);

typedef struct vault_keycache_config {
    size_t capacity;         /* max cached keys (LRU beyond); default 1024 */
    int64_t ttl_ms;          /* a key is re-derived this long after its derivation; 15 min */
    unsigned max_concurrent; /* concurrent derivations across the process; default 1 */
    int64_t max_wait_ms;     /* longest wait for a slot or another thread's derivation
                              * before VAULT_ERR_BUSY; 0 = forever; default 30000 */
    vault_derive_fn derive;  /* required */
    void *derive_ctx;
    vault_clock_fn clock; /* NULL = CLOCK_MONOTONIC */
    void *clock_ctx;
} vault_keycache_config;

typedef struct vault_keycache_stats {
    uint64_t hits, misses, derivations, failures, evictions, expirations, waits, busy;
    size_t size;
} vault_keycache_stats;

/* Fills cfg with defaults (derive left NULL). */
void vault_keycache_config_default(vault_keycache_config *cfg);
/* Key slots come from secure memory (vault_secure_memory_init is called if needed).
 * *out owned by caller: vault_keycache_destroy. */
vault_rc vault_keycache_create(const vault_keycache_config *cfg, vault_keycache **out);
/* Looks up (master_version, user_id, salt); on a miss derives it exactly once however many
 * threads ask at the same time (single flight), waiting for a derivation slot if needed.
 * Copies the key into key_out, which the caller must OPENSSL_cleanse after use (keep it on
 * the stack). user_id may be NULL (treated as ""); longer than VAULT_USER_ID_MAX bytes, or a
 * salt of 0 or more than 64 bytes, is VAULT_ERR_INVALID_ARG. */
#define VAULT_USER_ID_MAX 255
vault_rc vault_keycache_get(vault_keycache *c, int master_version, const char *user_id,
                            const unsigned char *salt, size_t salt_len,
                            unsigned char key_out[VAULT_KEY_LEN]);
/* Wipes and drops every expired key now (expired keys are also dropped on lookup). */
void vault_keycache_sweep(vault_keycache *c);
/* Wipes and drops every key (e.g. after a master key is retired). */
void vault_keycache_clear(vault_keycache *c);
void vault_keycache_stats_get(vault_keycache *c, vault_keycache_stats *out);
/* 1 if the key slots are in secure memory (OpenSSL secure heap or locked fallback pages). */
int vault_keycache_is_secure(const vault_keycache *c);
/* Wipes every key and frees. Must not race with get. NULL is a no-op. */
void vault_keycache_destroy(vault_keycache *c);

/* ---- the vault ----------------------------------------------------------------------------- */
typedef struct vault vault;

typedef struct vault_config {
    uint32_t iterations;   /* PBKDF2 iterations; >= VAULT_PBKDF2_MIN_ITERATIONS */
    size_t cache_capacity; /* see vault_keycache_config */
    int64_t cache_ttl_ms;
    unsigned max_concurrent_derivations;
    int64_t max_wait_ms;
    size_t secure_heap_bytes; /* 0 = default */
    /* TEST ONLY: lets vault_create accept iterations below the floor. Never set it from
     * configuration; production code leaves it 0. */
    int unsafe_allow_low_iterations_for_tests;
    vault_clock_fn clock; /* NULL = CLOCK_MONOTONIC (cache TTL only) */
    void *clock_ctx;
} vault_config;

void vault_config_default(vault_config *cfg);
/* Takes ownership of keys (even on failure). Returns VAULT_ERR_WEAK_PARAMS for iterations
 * below the floor. *out owned by caller: vault_destroy. */
vault_rc vault_create(const vault_config *cfg, vault_masterkeys *keys, vault **out);
/* Newest master version: the one every new token is made under. */
int vault_current_version(const vault *v);
/* Encrypts plaintext for the user under the newest master key. *token_out: free();
 * *version_out: the master version to store next to the token. */
vault_rc vault_encrypt_secret(vault *v, const char *user_id, const unsigned char *salt,
                              size_t salt_len, const vault_secret *plaintext, char **token_out,
                              int *version_out);
/* Decrypts a stored token made under master version `version`. Stored tokens have no TTL;
 * the clock-skew check applies. *out: vault_secret_destroy. reason may be NULL. */
vault_rc vault_decrypt_secret(vault *v, const char *user_id, const unsigned char *salt,
                              size_t salt_len, int version, const char *token, vault_secret **out,
                              vault_token_reason *reason);
/* Decrypts old_token (under old_version) and re-encrypts it under the newest version.
 * *new_token_out: free(). The plaintext exists only inside this call. */
vault_rc vault_rewrap(vault *v, const char *user_id, const unsigned char *salt, size_t salt_len,
                      int old_version, const char *old_token, char **new_token_out,
                      int *new_version_out, vault_token_reason *reason);
void vault_keycache_stats_of(vault *v, vault_keycache_stats *out);
/* Decryptions so far (vault_decrypt_secret, and the decrypt step of vault_rewrap), by outcome,
 * for metrics. Any thread; v NULL gives zeros. */
void vault_decrypt_counts(vault *v, uint64_t *ok, uint64_t *failed);
/* Wipes master keys and every cached key, frees. NULL is a no-op. */
void vault_destroy(vault *v);

/* ---- log redaction --------------------------------------------------------------------- */
#define VAULT_REDACTED "[REDACTED]"
/* 1 if a field name is sensitive after normalisation (lowercase; '-', '_', '.' and spaces
 * removed): exact names like token, authorization, password, api_key and suffixes like
 * *secret, *password, *apikey, *accesstoken. Harmless look-alikes (author, token_count,
 * tokens_used) are not. */
int vault_redact_is_sensitive_name(const char *name, size_t len);
/* Redacts secret-shaped values in free text: JWTs, Fernet tokens, PEM blocks, bearer/basic
 * credentials, passwords in URLs, whsec_ secrets and name=value / name: value pairs with a
 * sensitive name. *out is NUL terminated, owned by the caller (free()). */
vault_rc vault_redact_text(const char *in, size_t len, char **out);
/* Redacts one JSON log line: values of sensitive keys (any type) become "[REDACTED]", every
 * other string value goes through vault_redact_text. Input that is not valid JSON is redacted
 * as free text. *out owned by the caller (free()). */
vault_rc vault_redact_json_line(const char *in, size_t len, char **out);

/* ---- sealed submission (seal.c) ---------------------------------------------------------------
 * A client seals a broker secret to the server's P-256 sealing key (ECDH, HKDF-SHA256 with the
 * ephemeral point as salt and info "tradewink-seal-v1", AES-256-GCM); the associated data is
 * the fields "tradewink-seal-v1", user, broker, key_id, environment, version (decimal), each
 * an 8-byte big-endian length and its bytes. Sealed bytes: ephemeral point (65, uncompressed)
 * || IV (12) || ciphertext || tag (16). */
#define VAULT_SEAL_PUB_LEN 65

typedef struct vault_sealer vault_sealer;

typedef struct {
    const char *user;        /* the caller's subject (JWT sub) */
    const char *broker;      /* "alpaca", "sim" */
    const char *key_id;      /* the broker key id stored with it */
    const char *environment; /* "paper", "live" */
} vault_seal_binding;

/* Parses "vN:BASE64[@UNTIL],..." (newest first; 32-byte P-256 private scalars; @UNTIL = Unix
 * seconds an older key keeps opening sealed secrets). NULL or "" = no sealing: *out = NULL,
 * VAULT_OK. VAULT_ERR_INVALID_ARG with a reason (never key material) in why otherwise. */
vault_rc vault_sealer_parse(const char *text, vault_sealer **out, char *why, size_t why_cap);
void vault_sealer_destroy(vault_sealer *s); /* NULL is a no-op */
/* The newest key's version and public point (uncompressed). -1 when s is NULL. */
int vault_sealer_current(const vault_sealer *s, uint32_t *version,
                         unsigned char pub[VAULT_SEAL_PUB_LEN]);
/* Opens a sealed secret: *out is the NUL-terminated plaintext (malloc'd; the caller wipes
 * and frees it). VAULT_ERR_UNKNOWN_VERSION for a version not configured or past its grace
 * period; VAULT_ERR_TOKEN for anything else (wrong binding, tampered, malformed, a NUL). */
vault_rc vault_unseal(const vault_sealer *s, uint32_t version, const unsigned char *sealed,
                      size_t len, const vault_seal_binding *b, int64_t now_s, char **out);

#ifdef __cplusplus
}
#endif
#endif
