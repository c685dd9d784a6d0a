/* Config validation: defaults give the embedded mode; every bad value is one clear line naming
 * its variable; secrets are never echoed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"

/* A fake environment: NULL-terminated name/value pairs. */
static const char *const *fake_env;

static const char *fake_lookup(const char *name)
{
    for (const char *const *p = fake_env; p && *p; p += 2)
        if (strcmp(p[0], name) == 0)
            return p[1];
    return NULL;
}

static int load(const char *const *env, tw_config *cfg, char *err, size_t errlen)
{
    fake_env = env;
    memset(err, 0, errlen);
    FILE *f = fmemopen(err, errlen - 1, "w");
    int bad = tw_config_load(cfg, fake_lookup, f);
    fclose(f);
    return bad;
}

static void defaults_are_embedded_mode(void **state)
{
    (void)state;
    tw_config c;
    char err[1024];
    const char *env[] = {NULL};
    assert_int_equal(load(env, &c, err, sizeof(err)), 0);
    assert_string_equal(c.listen, "127.0.0.1:50051");
    assert_string_equal(c.ops_listen, "127.0.0.1:9090");
    assert_string_equal(c.database_url, "sqlite:./tradewink.db");
    assert_null(c.redis_url);
    assert_int_equal(c.auth_mode, TW_AUTH_DEV);
    assert_int_equal(c.pbkdf2_iterations, 600000);
    assert_string_equal(c.broker, "sim");
    assert_int_equal(c.sim_enabled, 1);
    assert_null(c.tls_cert_file);
    tw_config_free(&c);
}

struct bad_case {
    const char *name, *value, *expect;
};

static void every_bad_value_names_its_variable(void **state)
{
    (void)state;
    static const struct bad_case cases[] = {
        {"TW_LISTEN", "nope", "TW_LISTEN: 'nope' is not host:port"},
        {"TW_LISTEN", "127.0.0.1:99999", "TW_LISTEN:"},
        {"TW_LISTEN", "127.0.0.1:", "TW_LISTEN:"},
        {"TW_LISTEN", "::1:80", "TW_LISTEN:"},
        {"TW_OPS_LISTEN", "host", "TW_OPS_LISTEN:"},
        {"TW_WORKERS", "-1", "TW_WORKERS: -1 is out of range"},
        {"TW_WORKERS", "abc", "TW_WORKERS: 'abc' is not an integer"},
        {"TW_WORKERS", "4x", "TW_WORKERS: '4x' is not an integer"},
        {"TW_WORKERS", "99999999999999999999", "TW_WORKERS:"},
        {"TW_WORKERS", "", "TW_WORKERS:"},
        {"TW_LOG_LEVEL", "loud", "TW_LOG_LEVEL: 'loud' is not one of: debug info warn error"},
        {"TW_AUTH_MODE", "foo", "TW_AUTH_MODE: 'foo' is not one of"},
        {"TW_MAX_MESSAGE_BYTES", "1", "TW_MAX_MESSAGE_BYTES: 1 is out of range"},
        {"TW_PBKDF2_ITERATIONS", "1000", "TW_PBKDF2_ITERATIONS: 1000 is out of range"},
        {"TW_JWT_CLOCK_SKEW_S", "3600", "TW_JWT_CLOCK_SKEW_S:"},
        {"TW_JWKS_CACHE_TTL_S", "0", "TW_JWKS_CACHE_TTL_S:"},
        {"TW_SHUTDOWN_GRACE_MS", "-5", "TW_SHUTDOWN_GRACE_MS:"},
        {"TW_TLS_CERT_FILE", "/nonexistent/cert.pem", "TW_TLS_CERT_FILE: cannot read file"},
        {"TW_TLS_CLIENT_CA_FILE", "/nonexistent/ca.pem", "TW_TLS_CLIENT_CA_FILE:"},
        {"TW_JWKS_CA_FILE", "/nonexistent", "TW_JWKS_CA_FILE:"},
        {"TW_DATABASE_URL", "mysql://x", "TW_DATABASE_URL: must start with"},
        {"TW_REDIS_URL", "rediss://h:6380", "stunnel"},
        {"TW_REDIS_URL", "http://h", "TW_REDIS_URL: must start with redis://"},
        {"TW_AUTH_MODE", "jwks", "TW_JWKS_URL: required when TW_AUTH_MODE=jwks"},
        {"TW_AUTH_MODE", "pem", "TW_JWT_PUBLIC_KEY_FILE: required"},
        {"TW_SIM_ENABLED", "maybe", "TW_SIM_ENABLED: 'maybe' is not a boolean"},
        {"TW_BROKER", "robinhood", "TW_BROKER: 'robinhood' is not one of"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tw_config c;
        char err[2048];
        const char *env[] = {cases[i].name, cases[i].value, NULL};
        int bad = load(env, &c, err, sizeof(err));
        if (bad < 1 || !strstr(err, cases[i].expect))
            fail_msg("%s=%s: got %d errors: %s", cases[i].name, cases[i].value, bad, err);
        tw_config_free(&c);
    }
}

static void plaintext_on_public_address_is_refused(void **state)
{
    (void)state;
    tw_config c;
    char err[2048];
    const char *env[] = {
        "TW_LISTEN",     "0.0.0.0:50051",        "TW_AUTH_MODE", "pem", "TW_JWT_PUBLIC_KEY_FILE",
        "/etc/hostname", "TW_VAULT_MASTER_KEYS", "v1:AAAA",      NULL};
    assert_int_equal(load(env, &c, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "refusing plaintext gRPC on non-loopback"));
    tw_config_free(&c);
}

static void dev_auth_on_public_address_is_refused(void **state)
{
    (void)state;
    tw_config c;
    char err[2048];
    const char *env[] = {"TW_LISTEN",
                         "0.0.0.0:50051",
                         "TW_TLS_CERT_FILE",
                         "/etc/hostname",
                         "TW_TLS_KEY_FILE",
                         "/etc/hostname",
                         NULL};
    assert_int_equal(load(env, &c, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "dev mode is refused on non-loopback"));
    tw_config_free(&c);
}

static void tls_files_go_together(void **state)
{
    (void)state;
    tw_config c;
    char err[2048];
    const char *env[] = {"TW_TLS_CERT_FILE", "/etc/hostname", NULL};
    assert_int_equal(load(env, &c, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "must be set together"));
    tw_config_free(&c);
    const char *env2[] = {"TW_TLS_CLIENT_CA_FILE", "/etc/hostname", NULL};
    assert_int_equal(load(env2, &c, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "TW_TLS_CLIENT_CA_FILE needs"));
    tw_config_free(&c);
}

static void secrets_are_not_echoed(void **state)
{
    (void)state;
    tw_config c;
    char err[2048];
    const char *env[] = {"TW_DATABASE_URL", "mysql://u:hunter2@db", NULL};
    assert_true(load(env, &c, err, sizeof(err)) >= 1);
    assert_null(strstr(err, "hunter2"));
    tw_config_free(&c);
}

static void loopback_detection(void **state)
{
    (void)state;
    assert_true(tw_config_addr_is_loopback("127.0.0.1:1"));
    assert_true(tw_config_addr_is_loopback("127.9.8.7:1"));
    assert_true(tw_config_addr_is_loopback("localhost:1"));
    assert_true(tw_config_addr_is_loopback("[::1]:1"));
    assert_false(tw_config_addr_is_loopback("0.0.0.0:1"));
    assert_false(tw_config_addr_is_loopback("10.0.0.1:1"));
    assert_false(tw_config_addr_is_loopback("128.0.0.1:1"));
    assert_false(tw_config_addr_is_loopback("[::]:1"));
    assert_false(tw_config_addr_is_loopback("example.com:1"));
}

static void help_lists_every_variable(void **state)
{
    (void)state;
    char buf[16384];
    memset(buf, 0, sizeof(buf));
    FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
    tw_config_print_help(f);
    fclose(f);
    const char *names[] = {
        "TW_LISTEN",        "TW_OPS_LISTEN",   "TW_DATABASE_URL",       "TW_REDIS_URL",
        "TW_AUTH_MODE",     "TW_JWKS_URL",     "TW_JWKS_CA_FILE",       "TW_JWT_PUBLIC_KEY_FILE",
        "TW_JWT_ISSUER",    "TW_JWT_AUDIENCE", "TW_DEV_KEY_FILE",       "TW_VAULT_MASTER_KEYS",
        "TW_TLS_CERT_FILE", "TW_TLS_KEY_FILE", "TW_TLS_CLIENT_CA_FILE", "TW_WEBHOOK_SECRETS",
        "TW_WORKERS",       "TW_LOG_LEVEL"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strstr(buf, names[i]))
            fail_msg("--help does not list %s", names[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_embedded_mode),
        cmocka_unit_test(every_bad_value_names_its_variable),
        cmocka_unit_test(plaintext_on_public_address_is_refused),
        cmocka_unit_test(dev_auth_on_public_address_is_refused),
        cmocka_unit_test(tls_files_go_together),
        cmocka_unit_test(secrets_are_not_echoed),
        cmocka_unit_test(loopback_detection),
        cmocka_unit_test(help_lists_every_variable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
