/*
 * edge_redis_tls: the limiter reaching a TLS-only Redis through a stunnel client sidecar,
 * the deployment shape of deploy/stunnel/ (Debian's hiredis 0.14 has no TLS).
 *
 * The test makes a throw-away CA and a server certificate for IP 127.0.0.1 with the openssl
 * CLI, starts redis-server with --port 0 (no plaintext listener) and a --tls-port, starts
 * stunnel in client mode on another loopback port verifying the server against that CA, and
 * checks: the limiter trips at its burst through the tunnel with Redis answering, two limiter
 * instances share one limit, a plaintext connection straight to the TLS port does not work
 * (falls back), and a sidecar that trusts a different CA does not get through either.
 * Everything is stopped by PID. Skipped (exit 77, with a message) only when redis-server was
 * built without TLS.
 */
#include "edge/ratelimit.h"
#include "edge_test_proc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];
static int tls_port;
static pid_t redis_pid = -1;
static pid_t stunnel_pid = -1; /* stopped by teardown even when an assertion fails */

static void path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static int write_file(const char *name, const char *text)
{
    char p[512];
    path(p, sizeof p, name);
    FILE *f = fopen(p, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int make_ca(const char *key, const char *crt, const char *cn)
{
    char k[512], c[512], log[512], subj[64];
    path(k, sizeof k, key);
    path(c, sizeof c, crt);
    path(log, sizeof log, "openssl.log");
    snprintf(subj, sizeof subj, "/CN=%s", cn);
    const char *argv[] = {
        "openssl", "req",     "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes",  "-keyout", k,       "-out",    c,    "-days",    "1",
        "-subj",   subj,      NULL};
    return etp_run(argv, log);
}

static int make_certs(void)
{
    char key[512], csr[512], crt[512], ca[512], cakey[512], ext[512], log[512];
    if (make_ca("ca.key", "ca.crt", "tw-test-ca") != 0 ||
        make_ca("other-ca.key", "other-ca.crt", "tw-other-ca") != 0)
        return -1;
    path(key, sizeof key, "redis.key");
    path(csr, sizeof csr, "redis.csr");
    path(crt, sizeof crt, "redis.crt");
    path(ca, sizeof ca, "ca.crt");
    path(cakey, sizeof cakey, "ca.key");
    path(ext, sizeof ext, "ext.cnf");
    path(log, sizeof log, "openssl.log");
    if (write_file("ext.cnf", "subjectAltName=IP:127.0.0.1\n") != 0)
        return -1;
    const char *req[] = {
        "openssl",       "req",     "-newkey", "ec",   "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes",        "-keyout", key,       "-out", csr,        "-subj",
        "/CN=127.0.0.1", NULL};
    const char *sign[] = {
        "openssl",         "x509", "-req", "-in",   csr, "-CA",      ca,  "-CAkey", cakey,
        "-CAcreateserial", "-out", crt,    "-days", "1", "-extfile", ext, NULL};
    if (etp_run(req, log) != 0 || etp_run(sign, log) != 0)
        return -1;
    return 0;
}

/* Starts stunnel in client mode trusting cafile; returns its pid, *port set. */
static pid_t start_stunnel(const char *name, const char *cafile, int *port)
{
    char conf[2048], cfgname[64], cfgpath[512], ca[512], log[512];
    *port = etp_free_port();
    path(ca, sizeof ca, cafile);
    snprintf(conf, sizeof conf,
             "foreground = yes\n"
             "pid =\n"
             "debug = notice\n"
             "[redis]\n"
             "client = yes\n"
             "accept = 127.0.0.1:%d\n"
             "connect = 127.0.0.1:%d\n"
             "verifyChain = yes\n"
             "CAfile = %s\n"
             "checkIP = 127.0.0.1\n",
             *port, tls_port, ca);
    snprintf(cfgname, sizeof cfgname, "%s.conf", name);
    assert_int_equal(write_file(cfgname, conf), 0);
    path(cfgpath, sizeof cfgpath, cfgname);
    path(log, sizeof log, "stunnel.log");
    const char *argv[] = {etp_have("stunnel4") ? "stunnel4" : "stunnel", cfgpath, NULL};
    pid_t pid = etp_spawn(argv, log);
    assert_true(pid > 0);
    stunnel_pid = pid;
    if (etp_wait_port(*port, 5000) != 0)
        fail_msg("stunnel did not listen (see %s)", log);
    return pid;
}

static edge_rl *limiter(int port)
{
    edge_rl_config cfg;
    edge_rl *rl = NULL;
    char url[64], err[256], prefix[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", port);
    snprintf(prefix, sizeof prefix, "twtls:%ld:", (long)getpid());
    edge_rl_config_defaults(&cfg);
    cfg.redis_url = url;
    cfg.key_prefix = prefix;
    cfg.redis_timeout_ms = 1000; /* first TLS handshake through the sidecar */
    cfg.rules[EDGE_RL_ORDERS] = (edge_rl_rule){20, 20 * 1000, 20};
    assert_int_equal(edge_rl_create(&cfg, &rl, err, sizeof err), 0);
    return rl;
}

static void test_limits_work_through_stunnel_to_tls_only_redis(void **state)
{
    (void)state;
    int port;
    pid_t st = start_stunnel("good", "ca.crt", &port);
    edge_rl *a = limiter(port), *b = limiter(port);
    edge_rl_stats s;
    int allowed = 0;
    for (int i = 0; i < 40; i++)
        allowed += edge_rl_check(i % 2 ? a : b, EDGE_RL_ORDERS, "tls-user", NULL) == EDGE_RL_ALLOW;
    assert_int_equal(allowed, 20);
    edge_rl_stats_get(a, &s);
    assert_int_equal(s.fallback, 0);
    assert_int_equal(s.local_checks, 0);
    assert_int_equal(s.redis_checks, 20);
    edge_rl_destroy(a);
    edge_rl_destroy(b);
    (void)st;
}

static void test_plaintext_to_the_tls_port_does_not_work(void **state)
{
    (void)state;
    edge_rl *rl = limiter(tls_port);
    edge_rl_check(rl, EDGE_RL_ORDERS, "plain", NULL);
    assert_int_equal(edge_rl_fallback_active(rl), 1);
    edge_rl_destroy(rl);
}

static void test_sidecar_trusting_another_ca_is_refused(void **state)
{
    (void)state;
    int port;
    pid_t st = start_stunnel("wrongca", "other-ca.crt", &port);
    edge_rl *rl = limiter(port);
    edge_rl_check(rl, EDGE_RL_ORDERS, "mitm", NULL);
    edge_rl_stats s;
    edge_rl_stats_get(rl, &s);
    assert_int_equal(s.fallback, 1);
    assert_int_equal(s.redis_checks, 0);
    edge_rl_destroy(rl);
    (void)st;
}

static int stop_stunnel(void **state)
{
    (void)state;
    etp_stop(stunnel_pid);
    stunnel_pid = -1;
    return 0;
}

static int start_tls_redis(void)
{
    char crt[512], key[512], ca[512], portstr[16], log[512];
    path(crt, sizeof crt, "redis.crt");
    path(key, sizeof key, "redis.key");
    path(ca, sizeof ca, "ca.crt");
    path(log, sizeof log, "redis.log");
    tls_port = etp_free_port();
    snprintf(portstr, sizeof portstr, "%d", tls_port);
    const char *argv[] = {"redis-server",
                          "--bind",
                          "127.0.0.1",
                          "--port",
                          "0",
                          "--tls-port",
                          portstr,
                          "--tls-cert-file",
                          crt,
                          "--tls-key-file",
                          key,
                          "--tls-ca-cert-file",
                          ca,
                          "--tls-auth-clients",
                          "no",
                          "--save",
                          "",
                          "--appendonly",
                          "no",
                          "--dir",
                          dir,
                          "--daemonize",
                          "no",
                          NULL};
    redis_pid = etp_spawn(argv, log);
    if (redis_pid <= 0)
        return -1;
    return etp_wait_port(tls_port, 5000);
}

static int redis_log_says_no_tls(void)
{
    char p[512], buf[4096] = "";
    path(p, sizeof p, "redis.log");
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, "TLS") && (strstr(buf, "not supported") || strstr(buf, "Unrecognized") ||
                                  strstr(buf, "Bad directive"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_limits_work_through_stunnel_to_tls_only_redis, stop_stunnel),
        cmocka_unit_test(test_plaintext_to_the_tls_port_does_not_work),
        cmocka_unit_test_teardown(test_sidecar_trusting_another_ca_is_refused, stop_stunnel),
    };
    int rc;
    const char *need[] = {"redis-server", "openssl", NULL};
    for (int i = 0; need[i]; i++)
        if (!etp_have(need[i])) {
            fprintf(stderr, "edge_redis_tls: %s not on PATH\n", need[i]);
            return 1;
        }
    if (!etp_have("stunnel4") && !etp_have("stunnel")) {
        fprintf(stderr, "edge_redis_tls: stunnel not on PATH (apt-get install stunnel4)\n");
        return 1;
    }
    if (etp_tempdir(dir, sizeof dir) != 0 || make_certs() != 0) {
        fprintf(stderr, "edge_redis_tls: cannot make test certificates in %s\n", dir);
        return 1;
    }
    if (start_tls_redis() != 0) {
        etp_stop(redis_pid);
        if (redis_log_says_no_tls()) {
            fprintf(stderr,
                    "edge_redis_tls: SKIPPED: this redis-server was built without TLS "
                    "(BUILD_TLS); see %s/redis.log\n",
                    dir);
            return 77;
        }
        fprintf(stderr, "edge_redis_tls: TLS redis-server did not start; see %s/redis.log\n", dir);
        return 1;
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    etp_stop(redis_pid);
    if (rc == 0)
        etp_rmdir(dir);
    return rc;
}
