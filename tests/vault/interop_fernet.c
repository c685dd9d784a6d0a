/* interop_fernet.c - helper for interop_fernet.py (not a unit test on its own): exercises the
 * vault's real encrypt/decrypt path so Python's cryptography can check it independently.
 *   interop_fernet enc <master_b64> <salt_hex> <iterations> <message>
 *       prints the PBKDF2-derived Fernet key (base64url) and a token from vault_encrypt_secret
 *   interop_fernet dec <master_b64> <salt_hex> <iterations> <token>
 *       prints the plaintext from vault_decrypt_secret
 * Printing keys and plaintext is acceptable only because this is a test helper on test data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vault/vault_int.h"

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int main(int argc, char **argv)
{
    unsigned char salt[16], key[VAULT_KEY_LEN];
    char spec[512], kb64[64];
    vault_masterkeys *mk = NULL;
    vault_secret *pt = NULL;
    vault_config cfg;
    vault *v = NULL;
    char *tok = NULL, *end = NULL;
    unsigned long iters;
    size_t i, mlen = 0;
    int ver = 0, rc = 1;

    if (argc != 6 || strlen(argv[3]) != 32) {
        fprintf(stderr, "usage: %s enc|dec MASTER_B64 SALT_HEX ITERATIONS ARG\n", argv[0]);
        return 2;
    }
    for (i = 0; i < 16; i++) {
        int hi = hexv(argv[3][2 * i]), lo = hexv(argv[3][2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 2;
        salt[i] = (unsigned char)(hi << 4 | lo);
    }
    iters = strtoul(argv[4], &end, 10);
    if (end == argv[4] || *end != '\0' || iters == 0 || iters > 100000000ul)
        return 2;
    snprintf(spec, sizeof(spec), "v1:%s", argv[2]);
    if (vault_masterkeys_parse(spec, strlen(spec), &mk, NULL, 0) != VAULT_OK)
        return 3;
    vault_config_default(&cfg);
    cfg.iterations = (uint32_t)iters;
    cfg.unsafe_allow_low_iterations_for_tests = 1;
    if (vault_create(&cfg, mk, &v) != VAULT_OK)
        return 3;
    if (strcmp(argv[1], "enc") == 0) {
        const unsigned char *m = NULL;
        vault_rc r;
        vault_masterkeys *mk2 = NULL;
        if (vault_masterkeys_parse(spec, strlen(spec), &mk2, NULL, 0) != VAULT_OK)
            goto out;
        m = vault_masterkeys_lookup(mk2, 1, &mlen);
        r = vault_pbkdf2_sha256(m, mlen, salt, 16, (uint32_t)iters, key, sizeof(key));
        vault_masterkeys_destroy(mk2);
        if (r != VAULT_OK)
            goto out;
        vault_b64_encode(key, sizeof(key), 1, kb64);
        if (vault_secret_create(argv[5], strlen(argv[5]), &pt) != VAULT_OK ||
            vault_encrypt_secret(v, "interop-user", salt, 16, pt, &tok, &ver) != VAULT_OK)
            goto out;
        printf("%s\n%s\n", kb64, tok);
        rc = 0;
    } else if (strcmp(argv[1], "dec") == 0) {
        vault_token_reason why = VAULT_REASON_NONE;
        if (vault_decrypt_secret(v, "interop-user", salt, 16, 1, argv[5], &pt, &why) != VAULT_OK) {
            fprintf(stderr, "decrypt failed: %s\n", vault_token_reason_str(why));
            goto out;
        }
        fwrite(vault_secret_data(pt), 1, vault_secret_len(pt), stdout);
        putchar('\n');
        rc = 0;
    }
out:
    free(tok);
    vault_secret_destroy(pt);
    vault_destroy(v);
    return rc;
}
