/*
 * test_store_pg_server.c - store tests that need a PostgreSQL server of their own:
 *   `test_store_pg_server restart`  (store_pg_restart) the server is stopped and started under
 *       an open store: calls fail with STORE_UNAVAILABLE during the outage and succeed after
 *       it, on the same store object and the same pooled connections;
 *   `test_store_pg_server tls`      (store_pg_tls) a CA and a server certificate made with the
 *       openssl CLI, a server with ssl=on, a verify-full connection that works and one with
 *       the wrong CA that is refused.
 * Each run starts its own server with scripts/pg-test-server.sh in a temp dir on a free
 * loopback port, so it never disturbs the shared CI database. Missing PostgreSQL binaries
 * FAIL the test unless TW_TEST_ALLOW_SKIP_PG=1 (then exit 77 = skipped).
 */
#include "store_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#ifndef TW_PG_TEST_SCRIPT
#error "TW_PG_TEST_SCRIPT must name scripts/pg-test-server.sh"
#endif

static char g_dir[256]; /* server dir handed to the script */
static char g_tls[320]; /* certificates (tls mode) */
static int g_port;
static char g_url[1024];

static void quiet_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (level >= STORE_LOG_WARN)
        fprintf(stderr, "store log: %s\n", msg);
}

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Runs a shell command built from our own temp paths (no outside input); 0 on success. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

/* Starts the server; extra = " ssl=on ..." or "". Fills g_url with the script's URL. */
static int server_start(const char *extra)
{
    char cmd[1024], line[512] = "";
    snprintf(cmd, sizeof(cmd), "%s start %s %d%s", TW_PG_TEST_SCRIPT, g_dir, g_port, extra);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    if (fgets(line, sizeof(line), p) == NULL)
        line[0] = '\0';
    int rc = pclose(p);
    line[strcspn(line, "\n")] = '\0';
    if (rc != 0 || strncmp(line, "postgresql://", 13) != 0) {
        fprintf(stderr, "server start failed (%d): %s\n", rc, cmd);
        return -1;
    }
    snprintf(g_url, sizeof(g_url), "%s", line);
    return 0;
}

static int server_stop(void)
{
    return sh("%s stop %s", TW_PG_TEST_SCRIPT, g_dir);
}

/* ---- restart ------------------------------------------------------------------------------ */

static void store_pg_restart_unavailable_during_outage_then_recovers(void **state)
{
    (void)state;
    char err[512] = "";
    store *st = NULL;
    store_conn *c = NULL, *held = NULL, *in_tx = NULL;
    store_user u;
    store_broker_key *keys = NULL;
    size_t n = 0;

    assert_int_equal(server_start(""), 0);
    assert_int_equal(store_open(g_url, quiet_log, NULL, &st, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_migrate(st, NULL, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_conn_acquire(st, &c), STORE_OK);
    assert_int_equal(store_user_get_or_create(c, "restart-a", STORE_ROLE_USER, &u, NULL), STORE_OK);
    store_broker_key k;
    memset(&k, 0, sizeof(k));
    snprintf(k.broker, sizeof(k.broker), "sim");
    snprintf(k.environment, sizeof(k.environment), "paper");
    snprintf(k.ciphertext, sizeof(k.ciphertext), "gAAAAA-restart");
    assert_int_equal(store_key_put(c, u.id, &k, NULL), STORE_OK);
    store_conn_release(c);
    /* Two more conns with prepared statements: one idle, one inside a transaction. */
    assert_int_equal(store_conn_acquire(st, &held), STORE_OK);
    assert_int_equal(store_key_list(held, u.id, &keys, &n), STORE_OK);
    free(keys);
    assert_int_equal(store_conn_acquire(st, &in_tx), STORE_OK);
    assert_int_equal(store_tx_begin_user(in_tx, u.id), STORE_OK);

    /* Outage. */
    assert_int_equal(server_stop(), 0);
    assert_int_equal(store_ping(st, err, sizeof(err)), STORE_UNAVAILABLE);
    assert_int_equal(store_key_list(held, u.id, &keys, &n), STORE_UNAVAILABLE);
    assert_int_equal(store_key_put(held, u.id, &k, NULL), STORE_UNAVAILABLE);
    assert_int_equal(store_risk_state_get(in_tx, u.id, &(store_risk_state){0}), STORE_UNAVAILABLE);
    assert_int_equal(store_tx_rollback(in_tx), STORE_OK);
    /* The pool holds the (dead) in_tx conn again: acquiring it works, using it does not. */
    store_conn_release(in_tx);
    assert_int_equal(store_conn_acquire(st, &c), STORE_OK);
    assert_ptr_equal(c, in_tx);
    assert_int_equal(store_user_get_or_create(c, "restart-b", STORE_ROLE_USER, &u, NULL),
                     STORE_UNAVAILABLE);
    store_conn_release(c);
    /* With the pool empty, opening a new connection fails the same way. */
    store_conn *c2 = NULL;
    assert_int_equal(store_conn_acquire(st, &c), STORE_OK);
    assert_int_equal(store_conn_acquire(st, &c2), STORE_UNAVAILABLE);
    assert_null(c2);
    store_conn_release(c);
    assert_int_equal(store_ping(st, err, sizeof(err)), STORE_UNAVAILABLE);

    /* Back: the first call on every conn succeeds, on the same store. */
    assert_int_equal(server_start(""), 0);
    assert_int_equal(store_ping(st, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_user_get_or_create(held, "restart-a", STORE_ROLE_USER, &u, NULL),
                     STORE_OK);
    assert_int_equal(store_key_list(held, u.id, &keys, &n), STORE_OK);
    assert_int_equal(n, 1); /* the failed put during the outage wrote nothing */
    assert_string_equal(keys[0].ciphertext, "gAAAAA-restart");
    free(keys);
    assert_int_equal(store_conn_acquire(st, &in_tx), STORE_OK);
    assert_int_equal(store_tx_begin_user(in_tx, u.id), STORE_OK);
    assert_int_equal(store_key_put(in_tx, u.id, &k, NULL), STORE_OK);
    assert_int_equal(store_tx_commit(in_tx), STORE_OK);
    store_conn_release(in_tx);

    /* A restart while connections sit idle: the very first call after it succeeds. */
    assert_int_equal(server_stop(), 0);
    assert_int_equal(server_start(""), 0);
    assert_int_equal(store_key_list(held, u.id, &keys, &n), STORE_OK);
    assert_int_equal(n, 2);
    free(keys);
    store_conn_release(held);
    assert_int_equal(store_ping(st, err, sizeof(err)), STORE_OK);
    store_close(st);
}

/* ---- TLS --------------------------------------------------------------------------------------
 */

static int make_certs(void)
{
    static const char ec[] = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    if (mkdir(g_tls, 0755) != 0)
        return -1;
    if (sh("cd %s && openssl req -x509 %s -keyout ca.key -out ca.crt -days 2 "
           "-subj /CN=tw-test-ca 2>/dev/null",
           g_tls, ec) != 0 ||
        sh("cd %s && openssl req %s -keyout server.key -out server.csr -subj /CN=localhost "
           "2>/dev/null",
           g_tls, ec) != 0 ||
        sh("cd %s && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf && "
           "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
           "-out server.crt -days 2 -extfile ext.cnf 2>/dev/null",
           g_tls) != 0 ||
        sh("cd %s && openssl req -x509 %s -keyout wrong.key -out wrong.crt -days 2 "
           "-subj /CN=localhost 2>/dev/null",
           g_tls, ec) != 0 ||
        sh("chmod 600 %s/server.key", g_tls) != 0)
        return -1;
    return 0;
}

static void store_pg_tls_verify_full_connects_and_wrong_ca_is_refused(void **state)
{
    (void)state;
    char err[512] = "", extra[1024], url[2048];
    store *st = NULL;
    store_conn *c = NULL;
    db_res r;

    assert_int_equal(make_certs(), 0);
    snprintf(extra, sizeof(extra), " ssl=on ssl_cert_file=%s/server.crt ssl_key_file=%s/server.key",
             g_tls, g_tls);
    assert_int_equal(server_start(extra), 0);

    snprintf(url, sizeof(url), "%s?sslmode=verify-full&sslrootcert=%s/ca.crt", g_url, g_tls);
    assert_int_equal(store_open(url, quiet_log, NULL, &st, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_migrate(st, NULL, err, sizeof(err)), STORE_OK);
    assert_int_equal(store_conn_acquire(st, &c), STORE_OK);
    db_res_init(&r);
    assert_int_equal(
        db_exec(c, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", NULL, 0, &r),
        STORE_OK);
    assert_int_equal(r.nrows, 1);
    assert_int_equal(db_int(&r, 0, 0), 1); /* this session is encrypted */
    db_res_clear(&r);
    store_user u;
    assert_int_equal(store_user_get_or_create(c, "tls-user", STORE_ROLE_USER, &u, NULL), STORE_OK);
    store_conn_release(c);
    store_close(st);

    /* The server's certificate does not chain to this CA: refused before any query. */
    st = NULL;
    snprintf(url, sizeof(url), "%s?sslmode=verify-full&sslrootcert=%s/wrong.crt", g_url, g_tls);
    assert_int_equal(store_open(url, quiet_log, NULL, &st, err, sizeof(err)), STORE_UNAVAILABLE);
    assert_null(st);
    /* Right CA but a host name the certificate does not carry: verify-full refuses, while
     * verify-ca (chain only) accepts, so the refusal is the name check. */
    char other[1024];
    snprintf(other, sizeof(other), "postgresql://postgres@tw-db.test:%d/tradewink_test", g_port);
    snprintf(url, sizeof(url), "%s?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert=%s/ca.crt",
             other, g_tls);
    assert_int_equal(store_open(url, quiet_log, NULL, &st, err, sizeof(err)), STORE_UNAVAILABLE);
    assert_null(st);
    snprintf(url, sizeof(url), "%s?hostaddr=127.0.0.1&sslmode=verify-ca&sslrootcert=%s/ca.crt",
             other, g_tls);
    assert_int_equal(store_open(url, quiet_log, NULL, &st, err, sizeof(err)), STORE_OK);
    store_close(st);
    st = NULL;
    /* verify-full without any root certificate available: refused too. */
    snprintf(url, sizeof(url), "%s?sslmode=verify-full&sslrootcert=%s/missing.crt", g_url, g_tls);
    assert_int_equal(store_open(url, quiet_log, NULL, &st, err, sizeof(err)), STORE_UNAVAILABLE);
    assert_null(st);
}

int main(int argc, char **argv)
{
    int rc;
    bool tls;
    if (argc != 2 || (strcmp(argv[1], "restart") != 0 && strcmp(argv[1], "tls") != 0)) {
        fprintf(stderr, "usage: test_store_pg_server restart|tls\n");
        return 2;
    }
    tls = strcmp(argv[1], "tls") == 0;
    if (system("ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || "
               "command -v pg_ctl >/dev/null 2>&1") != 0) {
        const char *skip = getenv("TW_TEST_ALLOW_SKIP_PG");
        if (skip != NULL && strcmp(skip, "1") == 0) {
            fprintf(stderr, "SKIPPED: no PostgreSQL server binaries\n");
            return 77;
        }
        fprintf(stderr, "FAIL: no PostgreSQL server binaries (apt-get install postgresql)\n");
        return 1;
    }
    snprintf(g_dir, sizeof(g_dir), "/tmp/tw-store-pgsrv-XXXXXX");
    if (mkdtemp(g_dir) == NULL)
        return 1;
    snprintf(g_tls, sizeof(g_tls), "%s/tls", g_dir);
    g_port = free_port();
    if (g_port <= 0)
        return 1;

    const struct CMUnitTest restart_tests[] = {
        cmocka_unit_test(store_pg_restart_unavailable_during_outage_then_recovers),
    };
    const struct CMUnitTest tls_tests[] = {
        cmocka_unit_test(store_pg_tls_verify_full_connects_and_wrong_ca_is_refused),
    };
    if (tls)
        rc = cmocka_run_group_tests_name("store_pg_tls", tls_tests, NULL, NULL);
    else
        rc = cmocka_run_group_tests_name("store_pg_restart", restart_tests, NULL, NULL);
    server_stop();
    sh("rm -rf %s", g_dir);
    return rc;
}
