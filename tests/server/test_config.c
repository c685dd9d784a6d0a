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

/* A well-formed TW_VAULT_MASTER_KEYS value (32 bytes 01..20). */
#define MASTER_KEY "v1:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="

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
        {"TW_TRUSTED_FRONTS", "", "TW_TRUSTED_FRONTS: must be 1-8 IP addresses"},
        {"TW_TRUSTED_FRONTS", "localhost", "TW_TRUSTED_FRONTS:"},
        {"TW_TRUSTED_FRONTS", "127.0.0.1:8080", "TW_TRUSTED_FRONTS:"},
        {"TW_TRUSTED_FRONTS", "127.0.0.1,,::1", "TW_TRUSTED_FRONTS:"},
        {"TW_TRUSTED_FRONTS", "10.0.0.0/8", "TW_TRUSTED_FRONTS:"},
        {"TW_TRUSTED_FRONTS",
         "1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5,6.6.6.6,7.7.7.7,8.8.8.8,9.9.9.9",
         "TW_TRUSTED_FRONTS:"},
        /* Parsed by the code that uses them, at load time (issue 20 part 4). */
        {"TW_RATE_API", "lots", "TW_RATE_API:"},
        {"TW_RATE_ORDERS", "10/fortnight", "TW_RATE_ORDERS:"},
        {"TW_RATE_PUBLIC", "", "TW_RATE_PUBLIC:"},
        {"TW_WEBHOOK_SECRETS", "broker", "TW_WEBHOOK_SECRETS:"},
        {"TW_VAULT_MASTER_KEYS", "v1:AAAA", "TW_VAULT_MASTER_KEYS: "},
        {"TW_VAULT_MASTER_KEYS", "nonsense", "TW_VAULT_MASTER_KEYS: "},
        {"TW_SECTOR_MAP_FILE", "/nonexistent.csv", "TW_SECTOR_MAP_FILE: cannot read file"},
        {"TW_SECTOR_MAP_FILE", "/etc/hostname", "TW_SECTOR_MAP_FILE: "},
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

static void late_values_are_all_reported_in_one_load(void **state)
{
    (void)state;
    tw_config c;
    char err[4096];
    const char *env[] = {"TW_RATE_API",
                         "lots",
                         "TW_WEBHOOK_SECRETS",
                         "broker:whsec_!!",
                         "TW_VAULT_MASTER_KEYS",
                         "v1:hunter2hunter2",
                         "TW_SECTOR_MAP_FILE",
                         "/etc/hostname",
                         NULL};
    assert_int_equal(load(env, &c, err, sizeof(err)), 4);
    assert_non_null(strstr(err, "TW_RATE_API: "));
    assert_non_null(strstr(err, "TW_WEBHOOK_SECRETS: "));
    assert_non_null(strstr(err, "TW_VAULT_MASTER_KEYS: "));
    assert_non_null(strstr(err, "TW_SECTOR_MAP_FILE: "));
    assert_null(strstr(err, "hunter2"));
    tw_config_free(&c);
    /* Good values of the same variables load. */
    const char *good[] = {"TW_RATE_API",
                          "5/s:10",
                          "TW_VAULT_MASTER_KEYS",
                          MASTER_KEY,
                          "TW_WEBHOOK_SECRETS",
                          "broker:whsec_"
                          "MDEyMzQ1Njc4OWFiY2RlZg==",
                          NULL};
    if (load(good, &c, err, sizeof(err)) != 0)
        fail_msg("good values refused: %s", err);
    tw_config_free(&c);
}

static void unknown_names_get_the_nearest_setting(void **state)
{
    (void)state;
    assert_true(tw_config_is_setting("TW_LISTEN"));
    assert_false(tw_config_is_setting("TW_LISTNE"));
    assert_string_equal(tw_config_nearest("TW_LISTNE"), "TW_LISTEN"); /* a swap */
    assert_string_equal(tw_config_nearest("TW_MAX_MESAGE_BYTES"), "TW_MAX_MESSAGE_BYTES");
    assert_string_equal(tw_config_nearest("TW_RATE_APIS"), "TW_RATE_API");
    assert_string_equal(tw_config_nearest("TW_DATABSE_URL"), "TW_DATABASE_URL");
    assert_null(tw_config_nearest("TW_ZZZ_QQQ"));
    assert_null(tw_config_nearest("TW_TEST_PG_URL"));
}

static void plaintext_on_public_address_is_refused(void **state)
{
    (void)state;
    tw_config c;
    char err[2048];
    const char *env[] = {
        "TW_LISTEN",     "0.0.0.0:50051",        "TW_AUTH_MODE", "pem", "TW_JWT_PUBLIC_KEY_FILE",
        "/etc/hostname", "TW_VAULT_MASTER_KEYS", MASTER_KEY,     NULL};
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
        cmocka_unit_test(late_values_are_all_reported_in_one_load),
        cmocka_unit_test(unknown_names_get_the_nearest_setting),
        cmocka_unit_test(plaintext_on_public_address_is_refused),
        cmocka_unit_test(dev_auth_on_public_address_is_refused),
        cmocka_unit_test(tls_files_go_together),
        cmocka_unit_test(secrets_are_not_echoed),
        cmocka_unit_test(loopback_detection),
        cmocka_unit_test(help_lists_every_variable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
