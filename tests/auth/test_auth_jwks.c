/*
 * test_auth_jwks.c - the JWKS key source against a real local HTTPS provider.
 *
 * The test makes its own CA and server certificate with the openssl CLI, starts
 * jwks_server.py (python3 http.server + ssl, loopback, random port) and drives it by rewriting
 * jwks.json and reading the request counter the server writes to a file. The verifier clock is
 * injected (fake_now) and the background refresher is off except in the test that checks it,
 * so TTL expiry, refetch rate limits and staleness are exercised without sleeping.
 */
#include "auth_test_util.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define T0 1700000000
#define ISS "tw-jwks-test"
#define CLAIMS "{\"iss\":\"" ISS "\",\"sub\":\"u1\",\"exp\":1800000000}"

static char dir[] = "/tmp/test_auth_jwks.XXXXXX";
static pid_t server_pid = -1;
static char url[128];
static EVP_PKEY *k1, *k2, *weak;
static int64_t fake_now;

static int64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

static char *path_in(const char *name)
{
    static char p[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
    return p[i];
}

static int run(const char *cmd)
{
    char full[1024];
    snprintf(full, sizeof(full), "cd '%s' && %s >/dev/null 2>&1", dir, cmd);
    return system(full);
}

static void serve_keys(EVP_PKEY *a, const char *kida, EVP_PKEY *b, const char *kidb)
{
    char *ja = a ? auth_rsa_jwk_json(a, kida) : NULL, *jb = b ? auth_rsa_jwk_json(b, kidb) : NULL;
    char doc[8192];
    snprintf(doc, sizeof(doc), "{\"keys\":[%s%s%s]}", ja ? ja : "", ja && jb ? "," : "",
             jb ? jb : "");
    assert_int_equal(tu_write_file(path_in("jwks.json.tmp"), doc), 0);
    assert_int_equal(rename(path_in("jwks.json.tmp"), path_in("jwks.json")), 0);
    free(ja);
    free(jb);
}

static int requests(void)
{
    char *s = tu_read_file(path_in("count"), NULL);
    int n = s ? (int)strtol(s, NULL, 10) : 0;
    free(s);
    return n;
}

static int start_server(void)
{
    unlink(path_in("port"));
    unlink(path_in("count")); /* a new server counts from zero */
    server_pid = fork();
    if (server_pid == 0) {
        execl("/usr/bin/python3", "python3", TW_AUTH_TEST_DIR "/jwks_server.py", dir, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        char *port = tu_read_file(path_in("port"), NULL);
        if (port) {
            snprintf(url, sizeof(url), "https://127.0.0.1:%ld/.well-known/jwks.json",
                     strtol(port, NULL, 10));
            free(port);
            return 0;
        }
        usleep(50 * 1000);
    }
    return -1;
}

static void stop_server(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
}

static auth_verifier *make(int background, int ttl, const char *ca)
{
    auth_config cfg;
    char err[256];
    auth_config_defaults(&cfg);
    cfg.mode = AUTH_MODE_JWKS;
    cfg.jwks_url = url;
    cfg.jwks_ca_file = ca;
    cfg.issuer = ISS;
    cfg.jwks_cache_ttl_s = ttl;
    cfg.jwks_min_refetch_s = 30;
    cfg.jwks_max_stale_s = 3600;
    cfg.jwks_timeout_ms = 2000;
    cfg.jwks_background = background;
    if (!background) {
        cfg.clock = fake_clock;
    }
    auth_verifier *v = auth_verifier_create(&cfg, err, sizeof(err));
    if (!v)
        fail_msg("create: %s", err);
    return v;
}

static char *bearer(EVP_PKEY *k, const char *kid)
{
    char hdr[256];
    snprintf(hdr, sizeof(hdr), "{\"alg\":\"RS256\",\"kid\":\"%s\"}", kid);
    char *t = tu_rs256(k, hdr, CLAIMS), *b = tu_join("Bearer ", "", t);
    free(t);
    return b;
}

static void expect(auth_verifier *v, const char *authz, int64_t now, const char *reason)
{
    auth_principal p;
    const char *why;
    auth_result r = auth_verify(v, authz, now, &p, &why);
    if (strcmp(why, reason) != 0)
        fail_msg("at T0%+lld: want \"%s\", got \"%s\"", (long long)(now - T0), reason, why);
    assert_int_equal(r, strcmp(reason, "ok") == 0 ? AUTH_OK : AUTH_UNAUTHENTICATED);
}

static void test_rotation_new_kid_then_old_removed(void **state)
{
    (void)state;
    serve_keys(k1, "k1", NULL, NULL);
    fake_now = T0;
    int base = requests();
    auth_verifier *v = make(0, 300, path_in("ca.pem"));
    assert_int_equal(requests(), base + 1); /* first fetch at start */
    char *t1 = bearer(k1, "k1"), *t2 = bearer(k2, "k2");
    expect(v, t1, T0, "ok");
    expect(v, t1, T0 + 1, "ok");
    assert_int_equal(requests(), base + 1); /* cached */

    serve_keys(k1, "k1", k2, "k2");                          /* the provider adds k2 */
    expect(v, t2, T0 + 10, "unknown kid (not in the JWKS)"); /* refetch rate-limited */
    assert_int_equal(requests(), base + 1);
    expect(v, t2, T0 + 31, "ok"); /* unknown kid -> one refetch */
    assert_int_equal(requests(), base + 2);
    expect(v, t1, T0 + 32, "ok");

    serve_keys(k2, "k2", NULL, NULL); /* k1 retired */
    expect(v, t1, T0 + 100, "ok");    /* cache not expired yet: still served */
    assert_int_equal(requests(), base + 2);
    expect(v, t1, T0 + 31 + 300, "unknown kid (not in the JWKS)"); /* expired -> refetched */
    assert_int_equal(requests(), base + 3);
    expect(v, t2, T0 + 31 + 301, "ok");
    free(t1);
    free(t2);
    auth_verifier_destroy(v);
}

static void test_provider_down_serves_cached_keys_until_max_stale(void **state)
{
    (void)state;
    serve_keys(k1, "k1", NULL, NULL);
    fake_now = T0;
    auth_verifier *v = make(0, 300, path_in("ca.pem"));
    char *t1 = bearer(k1, "k1");
    expect(v, t1, T0, "ok");
    stop_server();
    auth_verifier_flush_cache(v);
    expect(v, t1, T0 + 400, "ok"); /* expired, refresh fails, cached keys still serve */
    auth_stats st;
    auth_verifier_stats(v, &st);
    assert_int_equal(st.jwks_fetch_failures, 1);
    expect(v, t1, T0 + 3000, "ok");
    expect(v, t1, T0 + 300 + 3600, "no JWKS keys available"); /* bounded staleness */
    free(t1);
    auth_verifier_destroy(v);
    assert_int_equal(start_server(), 0);
}

typedef struct {
    auth_verifier *v;
    int seed;
} storm_arg;

static void *storm(void *p)
{
    storm_arg *a = p;
    for (int i = 0; i < 25; i++) {
        char kid[32];
        snprintf(kid, sizeof(kid), "rnd-%d-%d", a->seed, i);
        char *t = bearer(k1, kid);
        auth_principal pr;
        const char *why;
        if (auth_verify(a->v, t, T0 + 40, &pr, &why) != AUTH_UNAUTHENTICATED)
            abort();
        free(t);
    }
    return NULL;
}

static void test_refetch_storm_is_bounded(void **state)
{
    (void)state;
    serve_keys(k1, "k1", NULL, NULL);
    fake_now = T0;
    int base = requests();
    auth_verifier *v = make(0, 300, path_in("ca.pem"));
    for (int i = 0; i < 100; i++) {
        char kid[32];
        snprintf(kid, sizeof(kid), "invented-%d", i);
        char *t = bearer(k1, kid);
        expect(v, t, T0 + 5, "unknown kid (not in the JWKS)");
        free(t);
    }
    assert_int_equal(requests(), base + 1); /* only the start-up fetch */
    pthread_t th[4];
    storm_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (storm_arg){v, i};
        assert_int_equal(pthread_create(&th[i], NULL, storm, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(requests(), base + 2); /* 100 concurrent misses shared one refetch */
    auth_verifier_destroy(v);
}

static void test_weak_key_served_by_provider_refused(void **state)
{
    (void)state;
    serve_keys(k1, "k1", weak, "weak");
    fake_now = T0;
    auth_verifier *v = make(0, 300, path_in("ca.pem"));
    char *tw = bearer(weak, "weak"), *t1 = bearer(k1, "k1");
    expect(v, tw, T0, "RSA key under 2048 bits refused");
    expect(v, t1, T0, "ok");
    free(tw);
    free(t1);
    auth_verifier_destroy(v);
}

static void test_untrusted_certificate_never_yields_keys(void **state)
{
    (void)state;
    serve_keys(k1, "k1", NULL, NULL);
    fake_now = T0;
    auth_verifier *v = make(0, 300, path_in("other-ca.pem")); /* not the server's CA */
    char *t1 = bearer(k1, "k1");
    expect(v, t1, T0 + 60, "no JWKS keys available");
    auth_stats st;
    auth_verifier_stats(v, &st);
    assert_int_equal(st.jwks_fetch_failures, st.jwks_fetches);
    free(t1);
    auth_verifier_destroy(v);
}

static void test_background_refresher_fetches_off_the_request_path(void **state)
{
    (void)state;
    serve_keys(k1, "k1", NULL, NULL);
    int base = requests();
    auth_verifier *v = make(1, 2, path_in("ca.pem")); /* real clock, ttl 2 s */
    assert_int_equal(requests(), base + 1);
    sleep(4); /* refresh due at 80% of ttl; no verify calls meanwhile */
    assert_true(requests() >= base + 2);
    char *t1 = bearer(k1, "k1");
    expect(v, t1, (int64_t)time(NULL), "ok");
    free(t1);
    auth_verifier_destroy(v); /* joins the refresher */
}

static int group_setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    if (tu_write_file(path_in("ext.cnf"), "subjectAltName=IP:127.0.0.1\n") != 0 ||
        run("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 "
            "-subj /CN=tw-test-ca") != 0 ||
        run("openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem "
            "-days 1 -subj /CN=tw-other-ca") != 0 ||
        run("openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr "
            "-subj /CN=127.0.0.1") != 0 ||
        run("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
            "-out srv.pem -days 1 -extfile ext.cnf") != 0)
        return -1;
    k1 = EVP_RSA_gen(2048);
    k2 = EVP_RSA_gen(2048);
    weak = EVP_RSA_gen(1024);
    serve_keys(k1, "k1", NULL, NULL);
    return k1 && k2 && weak ? start_server() : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[200];
    stop_server();
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(weak);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation_new_kid_then_old_removed),
        cmocka_unit_test(test_provider_down_serves_cached_keys_until_max_stale),
        cmocka_unit_test(test_refetch_storm_is_bounded),
        cmocka_unit_test(test_weak_key_served_by_provider_refused),
        cmocka_unit_test(test_untrusted_certificate_never_yields_keys),
        cmocka_unit_test(test_background_refresher_fetches_off_the_request_path),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
