/*
 * bench_auth.c - JWT verifications per second, uncached and cached, single thread.
 *
 * Design: a dev key in a temporary directory mints one RS256 token; the same token is verified
 * in a loop for a fixed wall time, first by a verifier whose token cache is off (every call does
 * the full JWS + RSA + claims work), then by one with the cache on (every call after the first
 * is a hit). Output is "name value" lines for bench/auth/run.sh. Each loop checks the result,
 * so a broken verifier cannot produce a fast number.
 */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double run(auth_verifier *v, const char *bearer, int64_t now, double seconds)
{
    auth_principal p;
    const char *why;
    unsigned long n = 0;
    double start = now_s(), t = start;
    while (t - start < seconds) {
        for (int i = 0; i < 256; i++, n++)
            if (auth_verify(v, bearer, now, &p, &why) != AUTH_OK) {
                fprintf(stderr, "verify failed: %s\n", why);
                exit(1);
            }
        t = now_s();
    }
    return (double)n / (t - start);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? strtod(argv[1], NULL) : 3.0;
    char dir[] = "/tmp/bench_auth.XXXXXX", path[64], err[256], bearer[8300];
    char *token = NULL;
    int64_t now = (int64_t)time(NULL);
    auth_config cfg;
    auth_verifier *uncached = NULL, *cached = NULL;
    int rc = 1;
    if (seconds <= 0 || !mkdtemp(dir))
        return 1;
    snprintf(path, sizeof(path), "%s/dev.pem", dir);
    auth_config_defaults(&cfg);
    cfg.dev_key_file = path;
    cfg.cache_entries = 0;
    uncached = auth_verifier_create(&cfg, err, sizeof(err));
    cfg.cache_entries = 4096;
    cached = auth_verifier_create(&cfg, err, sizeof(err));
    if (!uncached || !cached ||
        auth_mint_dev_token(uncached, "bench-user-0001", AUTH_ROLE_USER, 3600, now, &token) != 0) {
        fprintf(stderr, "setup failed: %s\n", err);
        goto out;
    }
    snprintf(bearer, sizeof(bearer), "Bearer %s", token);
    printf("token_bytes %zu\n", strlen(token));
    printf("uncached_verify_per_s %.0f\n", run(uncached, bearer, now, seconds));
    printf("cached_verify_per_s %.0f\n", run(cached, bearer, now, seconds));
    rc = 0;
out:
    free(token);
    auth_verifier_destroy(uncached);
    auth_verifier_destroy(cached);
    unlink(path);
    rmdir(dir);
    return rc;
}
