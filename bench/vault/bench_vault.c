/* bench_vault.c - vault micro-benchmarks, driven by bench/vault/run.sh.
 *   bench_vault pbkdf2 RUNS      median seconds of one 600,000-iteration PBKDF2 (32 bytes)
 *   bench_vault fernet SECONDS   encrypt and decrypt ops/s through the vault with a warm key
 *                                cache (the path PutBrokerKey / a broker call takes)
 * Output is "name value" lines for the script to tabulate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vault/vault.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int bench_pbkdf2(int runs)
{
    unsigned char out[32];
    double t[64];
    int i;

    if (runs < 1 || runs > 64)
        return 2;
    for (i = 0; i < runs; i++) {
        double s = now_s();
        if (vault_pbkdf2_sha256("benchmark-master-secret", 23, "0123456789abcdef", 16,
                                VAULT_PBKDF2_DEFAULT_ITERATIONS, out, sizeof(out)) != VAULT_OK)
            return 1;
        t[i] = now_s() - s;
    }
    qsort(t, (size_t)runs, sizeof(t[0]), cmp_double);
    printf("pbkdf2_600k_s %.4f\n", t[runs / 2]);
    for (i = 0; i < 32; i++)
        printf("%02x", out[i]);
    printf("\n");
    return 0;
}

static int bench_fernet(double seconds)
{
    static const char spec[] = "v1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    static const unsigned char salt[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    vault_masterkeys *mk = NULL;
    vault_secret *pt = NULL;
    vault_config cfg;
    vault *v = NULL;
    char *tok = NULL;
    double s, el;
    long n;
    int ver = 0;

    if (vault_masterkeys_parse(spec, strlen(spec), &mk, NULL, 0) != VAULT_OK)
        return 1;
    vault_config_default(&cfg); /* 600k: derived once below, then cached */
    if (vault_create(&cfg, mk, &v) != VAULT_OK)
        return 1;
    /* a 40-character secret, like an Alpaca secret key */
    if (vault_secret_create("abcdefghijklmnopqrstuvwxyz0123456789ABCD", 40, &pt) != VAULT_OK)
        return 1;
    if (vault_encrypt_secret(v, "bench-user", salt, 16, pt, &tok, &ver) != VAULT_OK)
        return 1; /* warms the cache */
    free(tok);
    for (n = 0, s = now_s(); (el = now_s() - s) < seconds; n++) {
        if (vault_encrypt_secret(v, "bench-user", salt, 16, pt, &tok, &ver) != VAULT_OK)
            return 1;
        free(tok);
    }
    printf("fernet_encrypt_ops %.0f\n", (double)n / el);
    if (vault_encrypt_secret(v, "bench-user", salt, 16, pt, &tok, &ver) != VAULT_OK)
        return 1;
    for (n = 0, s = now_s(); (el = now_s() - s) < seconds; n++) {
        vault_secret *back = NULL;
        if (vault_decrypt_secret(v, "bench-user", salt, 16, ver, tok, &back, NULL) != VAULT_OK)
            return 1;
        vault_secret_destroy(back);
    }
    printf("fernet_decrypt_ops %.0f\n", (double)n / el);
    free(tok);
    vault_secret_destroy(pt);
    vault_destroy(v);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "pbkdf2") == 0)
        return bench_pbkdf2((int)strtol(argv[2], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "fernet") == 0)
        return bench_fernet(strtod(argv[2], NULL));
    fprintf(stderr, "usage: %s pbkdf2 RUNS | fernet SECONDS\n", argv[0]);
    return 2;
}
