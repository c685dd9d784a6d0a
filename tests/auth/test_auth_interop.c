/*
 * test_auth_interop.c - dev tokens against an implementation we did not write (python3-jwt):
 * a token it mints with the dev key file is accepted by our verifier, and a token we mint
 * verifies there (signature, alg, kid = RFC 7638 thumbprint, iss, exp). Also: two verifiers
 * racing to create the same missing dev key file end up with one key.
 */
#include "auth_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[] = "/tmp/test_auth_interop.XXXXXX";
static char keyfile[128];

static int py(const char *args, char *out, size_t outlen)
{
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s/pyjwt_interop.py' %s", TW_AUTH_TEST_DIR, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    out[strcspn(out, "\n")] = '\0';
    return pclose(p);
}

static void test_pyjwt_token_accepted(void **state)
{
    (void)state;
    char err[256], args[512], tok[4096];
    int64_t now = (int64_t)time(NULL);
    auth_config cfg;
    auth_config_defaults(&cfg);
    cfg.dev_key_file = keyfile;
    auth_verifier *v = auth_verifier_create(&cfg, err, sizeof(err));
    assert_non_null(v);
    snprintf(args, sizeof(args), "mint '%s' carol admin %lld", keyfile, (long long)now);
    assert_int_equal(py(args, tok, sizeof(tok)), 0);
    char *authz = tu_join("Bearer ", "", tok);
    auth_principal p;
    const char *why;
    if (auth_verify(v, authz, now, &p, &why) != AUTH_OK)
        fail_msg("python3-jwt token refused: %s", why);
    assert_string_equal(p.subject, "carol");
    assert_int_equal(p.role, AUTH_ROLE_ADMIN);
    free(authz);
    auth_verifier_destroy(v);
}

static void test_our_token_verifies_in_pyjwt(void **state)
{
    (void)state;
    char err[256], args[4096], out[256];
    int64_t now = (int64_t)time(NULL);
    auth_devkey *k = auth_devkey_load_or_create(keyfile, err, sizeof(err));
    assert_non_null(k);
    char *tok = NULL;
    assert_int_equal(auth_devkey_mint(k, NULL, "dave", AUTH_ROLE_USER, 600, now, &tok), 0);
    snprintf(args, sizeof(args), "verify '%s' '%s' %lld", keyfile, tok, (long long)now);
    assert_int_equal(py(args, out, sizeof(out)), 0);
    assert_string_equal(out, "dave user");
    /* and a tampered one does not */
    tok[strlen(tok) - 5] = tok[strlen(tok) - 5] == 'A' ? 'B' : 'A';
    snprintf(args, sizeof(args), "verify '%s' '%s' %lld 2>/dev/null", keyfile, tok, (long long)now);
    assert_int_not_equal(py(args, out, sizeof(out)), 0);
    free(tok);
    auth_devkey_destroy(k);
}

static void test_concurrent_creation_yields_one_key(void **state)
{
    (void)state;
    char path[160], err[256];
    snprintf(path, sizeof(path), "%s/race.pem", dir);
    pid_t pid = fork();
    if (pid == 0) {
        auth_devkey *c = auth_devkey_load_or_create(path, err, sizeof(err));
        _exit(c ? 0 : 1);
    }
    auth_devkey *a = auth_devkey_load_or_create(path, err, sizeof(err));
    int status;
    waitpid(pid, &status, 0);
    assert_non_null(a);
    assert_int_equal(status, 0);
    auth_devkey *b = auth_devkey_load_or_create(path, err, sizeof(err));
    assert_non_null(b);
    assert_string_equal(auth_devkey_kid(a), auth_devkey_kid(b));
    auth_devkey_destroy(a);
    auth_devkey_destroy(b);
}

static int setup(void **state)
{
    (void)state;
    char err[256];
    if (!mkdtemp(dir))
        return -1;
    snprintf(keyfile, sizeof(keyfile), "%s/dev.pem", dir);
    auth_devkey *k = auth_devkey_load_or_create(keyfile, err, sizeof(err));
    auth_devkey_destroy(k);
    return k ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pyjwt_token_accepted),
        cmocka_unit_test(test_our_token_verifies_in_pyjwt),
        cmocka_unit_test(test_concurrent_creation_yields_one_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
