/*
 * fuzz_jwks - the JWK Set parser that JWKS loading uses (auth_keyset_from_jwks): JSON with
 * duplicate keys refused, key-type/use/alg filtering, RSA modulus and exponent decoding and
 * the key checks (size bounds, exponent, ROCA). Input: byte 0 picks the allowed algorithm set,
 * the rest is the document.
 * Properties: a returned set has at most AUTH_JWKS_MAX_KEYS keys, each with a kid that is
 * NUL-terminated inside its buffer and either a key or a refusal reason; a refusal of the whole
 * document gives a reason.
 */
#include "fuzz.h"

#include <string.h>

#include "auth_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned algsets[4] = {
        AUTH_ALG_BIT(AUTH_ALG_RS256),
        AUTH_ALG_BIT(AUTH_ALG_RS256) | AUTH_ALG_BIT(AUTH_ALG_PS256),
        (1u << AUTH_ALG_COUNT) - 1,
        AUTH_ALG_BIT(AUTH_ALG_PS512),
    };
    if (size < 1)
        return 0;
    const char *reason = NULL;
    auth_keyset *ks =
        auth_keyset_from_jwks((const char *)data + 1, size - 1, algsets[data[0] & 3], &reason);
    if (!ks) {
        FUZZ_CHECK(reason != NULL);
        return 0;
    }
    FUZZ_CHECK(ks->n <= AUTH_JWKS_MAX_KEYS);
    for (size_t i = 0; i < ks->n; i++) {
        const auth_key *k = &ks->keys[i];
        FUZZ_CHECK(memchr(k->kid, 0, sizeof(k->kid)) != NULL);
        FUZZ_CHECK(k->pkey != NULL || k->refused != NULL);
        /* Every key must be findable by its own kid. */
        if (k->kid[0])
            FUZZ_CHECK(auth_keyset_find(ks, k->kid) != NULL);
    }
    auth_keyset_unref(ks);
    return 0;
}
