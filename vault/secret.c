/* secret.c - the plaintext buffer type and display masks.
 *
 * A vault_secret is one allocation: header plus bytes plus a trailing NUL. It is taken from
 * OpenSSL's secure heap when that has room (locked, never dumped) and from the normal heap
 * otherwise; either way the bytes are wiped with OPENSSL_cleanse before the memory is freed.
 * The type is opaque and has no formatting function, so plaintext has no printf path.
 * Invariant: data[len] == '\0'.
 */
#include "vault/vault_int.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

struct vault_secret {
    size_t len;
    size_t alloc; /* total bytes of this allocation, for the wipe */
    int in_secure_heap;
    unsigned char data[];
};

/* One zeroed allocation for len bytes + NUL: secure heap if it has room, else the heap. */
static vault_rc secret_alloc(size_t len, vault_secret **out)
{
    vault_secret *s = NULL;
    size_t total;

    if (len > SIZE_MAX - sizeof(*s) - 1)
        return VAULT_ERR_INVALID_ARG;
    total = sizeof(*s) + len + 1;
    if (CRYPTO_secure_malloc_initialized())
        s = CRYPTO_secure_zalloc(total, OPENSSL_FILE, OPENSSL_LINE);
    if (s != NULL) {
        s->in_secure_heap = 1;
    } else {
        s = vault_calloc(1, total);
        if (s == NULL)
            return VAULT_ERR_NOMEM;
        s->in_secure_heap = 0;
    }
    s->len = len;
    s->alloc = total;
    *out = s;
    return VAULT_OK;
}

vault_rc vault_secret_create(const void *src, size_t len, vault_secret **out)
{
    vault_rc rc;

    if (out == NULL || (src == NULL && len > 0))
        return VAULT_ERR_INVALID_ARG;
    rc = secret_alloc(len, out);
    if (rc == VAULT_OK && len > 0)
        memcpy((*out)->data, src, len);
    return rc;
}

vault_rc vault_secret_take(void *src, size_t len, vault_secret **out)
{
    vault_rc rc = vault_secret_create(src, len, out);
    if (src != NULL && len > 0)
        OPENSSL_cleanse(src, len);
    return rc;
}

const unsigned char *vault_secret_data(const vault_secret *s)
{
    return s != NULL ? s->data : NULL;
}

size_t vault_secret_len(const vault_secret *s)
{
    return s != NULL ? s->len : 0;
}

int vault_secret_equals(const vault_secret *s, const void *candidate, size_t len)
{
    if (s == NULL || candidate == NULL || s->len != len)
        return 0;
    return CRYPTO_memcmp(s->data, candidate, len) == 0;
}

void vault_secret_destroy(vault_secret *s)
{
    if (s == NULL)
        return;
    if (s->in_secure_heap) {
        CRYPTO_secure_clear_free(s, s->alloc, OPENSSL_FILE, OPENSSL_LINE);
    } else {
        OPENSSL_cleanse(s, s->alloc);
        free(s);
    }
}

/* U+2026 HORIZONTAL ELLIPSIS in UTF-8. */
static const char ellipsis[] = "\xe2\x80\xa6";

static int printable(char c)
{
    return c > 0x20 && c < 0x7f;
}

void vault_mask(const char *value, size_t len, char out[VAULT_MASK_MAX])
{
    size_t o = 0, i;

    if (value == NULL || len < VAULT_MASK_MIN_LEN)
        goto full;
    for (i = 0; i < 2; i++)
        if (!printable(value[i]))
            goto full;
    for (i = len - 4; i < len; i++)
        if (!printable(value[i]))
            goto full;
    out[o++] = value[0];
    out[o++] = value[1];
    memcpy(out + o, ellipsis, 3);
    o += 3;
    memcpy(out + o, value + len - 4, 4);
    o += 4;
    out[o] = '\0';
    return;
full:
    memcpy(out, ellipsis, sizeof(ellipsis));
}

void vault_mask_secret(const vault_secret *s, char out[VAULT_MASK_MAX])
{
    if (s == NULL) {
        vault_mask(NULL, 0, out);
        return;
    }
    vault_mask((const char *)s->data, s->len, out);
}

vault_rc vault_secret_new(size_t len, vault_secret **out)
{
    if (out == NULL)
        return VAULT_ERR_INVALID_ARG;
    return secret_alloc(len, out);
}

unsigned char *vault_secret_mut(vault_secret *s)
{
    return s != NULL ? s->data : NULL;
}

void vault_secret_truncate(vault_secret *s, size_t new_len)
{
    if (s == NULL || new_len > s->len)
        return;
    OPENSSL_cleanse(s->data + new_len, s->len - new_len);
    s->len = new_len;
    s->data[new_len] = '\0';
}
