/*
 * tests/risk/test_sectors.c — the CSV sector map: the shipped S&P 500 file, RFC 4180 quoting,
 * CRLF, BOM, hostile and malformed input (each must fail with a line number, never crash),
 * and the hash index agreeing with the sorted array for every symbol.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "risk/risk.h"
#include "risk/risk_int.h"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void test_shipped_sp500(void **state)
{
    size_t len;
    char *csv = read_file(TW_RISK_SECTORS_CSV_PATH, &len);
    risk_sector_map *m = NULL;
    char err[128] = "";
    (void)state;

    assert_int_equal(risk_sectors_parse(csv, len, &m, err, sizeof(err)), 0);
    assert_int_equal(risk_sectors_count(m), 503);
    assert_int_equal(risk_sectors_sector_count(m), 11);
    assert_string_equal(risk_sectors_name(m, risk_sectors_lookup(m, "AAPL")),
                        "Information Technology");
    assert_string_equal(risk_sectors_name(m, risk_sectors_lookup(m, "BRK.B")), "Financials");
    assert_string_equal(risk_sectors_name(m, risk_sectors_lookup(m, "BF.B")), "Consumer Staples");
    assert_string_equal(risk_sectors_name(m, risk_sectors_lookup(m, "XOM")), "Energy");
    assert_string_equal(risk_sectors_name(m, risk_sectors_lookup(m, "MMM")), "Industrials");
    /* Ids follow sorted names. */
    assert_string_equal(risk_sectors_name(m, 0), "Communication Services");
    assert_string_equal(risk_sectors_name(m, 10), "Utilities");
    assert_int_equal(risk_sectors_lookup(m, "NOPE"), RISK_SECTOR_UNKNOWN);
    assert_int_equal(risk_sectors_lookup(m, "aapl"), RISK_SECTOR_UNKNOWN); /* case-sensitive */
    assert_int_equal(risk_sectors_lookup(m, ""), RISK_SECTOR_UNKNOWN);
    assert_int_equal(risk_sectors_lookup(m, "AAAAAAAAAAAAAAAAAAAAAAA"), RISK_SECTOR_UNKNOWN);
    assert_string_equal(risk_sectors_name(m, RISK_SECTOR_UNKNOWN), "UNKNOWN");
    assert_string_equal(risk_sectors_name(m, 11), "UNKNOWN");

    /* The hash index used by the engine agrees with bsearch for every row's symbol. */
    const char *p = (const char *)memchr(csv, '\n', len) + 1;
    while (p < csv + len) {
        char sym[RISK_SYMBOL_MAX] = {0};
        size_t n = 0;
        while (p[n] != ',') {
            n++;
        }
        memcpy(sym, p, n);
        risk_symkey k;
        assert_int_equal(risk_symkey_make(sym, &k), 0);
        int a = risk_sectors_lookup(m, sym);
        assert_int_not_equal(a, RISK_SECTOR_UNKNOWN);
        assert_int_equal(risk_sectors_lookup_key(m, &k, risk_symkey_hash(&k)), a);
        p = memchr(p, '\n', (size_t)(csv + len - p));
        if (p == NULL) {
            break;
        }
        p++;
    }
    risk_sectors_destroy(m);
    free(csv);
}

static int parse(const char *csv, risk_sector_map **m, char *err, size_t cap)
{
    return risk_sectors_parse(csv, strlen(csv), m, err, cap);
}

static void test_quoting_crlf_bom_and_column_order(void **state)
{
    risk_sector_map *m = NULL;
    char err[128] = "";
    (void)state;
    assert_int_equal(parse("\xEF\xBB\xBFName,\"GICS Sector\",Symbol\r\n"
                           "\"Acme, \"\"Inc\"\"\",Energy,ACME\r\n"
                           "\"multi\nline\",\"Real Estate\",REIT\r\n"
                           "\r\n"
                           "x,Energy,BRK-A",
                           &m, err, sizeof(err)),
                     0);
    assert_int_equal(risk_sectors_count(m), 3);
    assert_string_equal(risk_sectors_name(m, risk_sectors_lookup(m, "ACME")), "Energy");
    assert_string_equal(risk_sectors_name(m, risk_sectors_lookup(m, "REIT")), "Real Estate");
    assert_string_equal(risk_sectors_name(m, risk_sectors_lookup(m, "BRK-A")), "Energy");
    risk_sectors_destroy(m);
}

typedef struct bad_case {
    const char *name;
    const char *csv;
    const char *err_has;
} bad_case;

static const bad_case bad_cases[] = {
    {"no header columns", "Ticker,Sector\nA,Energy\n", "header"},
    {"empty input", "", "header"},
    {"unterminated quote", "Symbol,GICS Sector\n\"A,Energy\n", "line"},
    {"quote inside unquoted field", "Symbol,GICS Sector\nA\"B,Energy\n", "line 2"},
    {"garbage after closing quote", "Symbol,GICS Sector\n\"A\"x,Energy\n", "line 2"},
    {"bare CR", "Symbol,GICS Sector\rA,Energy\n", "header"},
    {"too few fields", "Symbol,GICS Sector\nA\n", "line 2"},
    {"empty symbol", "Symbol,GICS Sector\n,Energy\n", "line 2"},
    {"lowercase symbol", "Symbol,GICS Sector\naapl,Energy\n", "line 2"},
    {"symbol with space", "Symbol,GICS Sector\nA B,Energy\n", "line 2"},
    {"symbol too long", "Symbol,GICS Sector\nABCDEFGHIJKLMNOP,Energy\n", "line 2"},
    {"symbol injection", "Symbol,GICS Sector\n\"A;DROP\",Energy\n", "line 2"},
    {"empty sector", "Symbol,GICS Sector\nA,\n", "line 2"},
    {"reserved UNKNOWN sector", "Symbol,GICS Sector\nA,UNKNOWN\n", "reserved"},
    {"duplicate symbol", "Symbol,GICS Sector\nA,Energy\nB,Energy\nA,Utilities\n", "duplicate"},
    {"sector name too long",
     "Symbol,GICS Sector\nA,xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", "line 2"},
};

static void test_bad_input_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const bad_case *c = &bad_cases[i];
        risk_sector_map *m = (risk_sector_map *)&m; /* must be reset to NULL */
        char err[160] = "";
        if (parse(c->csv, &m, err, sizeof(err)) != -1 || m != NULL) {
            fail_msg("%s: accepted", c->name);
        }
        if (strstr(err, c->err_has) == NULL) {
            fail_msg("%s: error \"%s\" lacks \"%s\"", c->name, err, c->err_has);
        }
    }
}

static void test_too_many_sectors(void **state)
{
    char csv[8192];
    size_t n = 0;
    risk_sector_map *m = NULL;
    char err[128] = "";
    (void)state;
    n += (size_t)snprintf(csv + n, sizeof(csv) - n, "Symbol,GICS Sector\n");
    for (int i = 0; i <= RISK_SECTORS_MAX; i++) {
        n += (size_t)snprintf(csv + n, sizeof(csv) - n, "S%d,Sector %d\n", i, i);
    }
    assert_int_equal(risk_sectors_parse(csv, n, &m, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "too many"));
}

static void test_null_and_destroy(void **state)
{
    risk_sector_map *m = NULL;
    (void)state;
    assert_int_equal(risk_sectors_parse(NULL, 0, &m, NULL, 0), -1);
    assert_int_equal(risk_sectors_parse("x", 1, NULL, NULL, 0), -1);
    risk_sectors_destroy(NULL);
    assert_int_equal(risk_sectors_lookup(NULL, "AAPL"), RISK_SECTOR_UNKNOWN);
    assert_int_equal(risk_sectors_count(NULL), 0);
    /* Header only: an empty but valid map. */
    assert_int_equal(parse("Symbol,GICS Sector\n", &m, NULL, 0), 0);
    assert_int_equal(risk_sectors_count(m), 0);
    assert_int_equal(risk_sectors_lookup(m, "A"), RISK_SECTOR_UNKNOWN);
    risk_symkey k = {0x41, 0};
    assert_int_equal(risk_sectors_lookup_key(m, &k, risk_symkey_hash(&k)), RISK_SECTOR_UNKNOWN);
    risk_sectors_destroy(m);
}

/* Every prefix of a valid file either parses or fails cleanly (ASan checks the reads). */
static void test_every_truncation(void **state)
{
    const char *csv = "Symbol,Security,GICS Sector\n\"A\",\"x, \"\"y\"\"\",Energy\r\nBB,z,"
                      "\"Real Estate\"\n";
    size_t n = strlen(csv);
    (void)state;
    for (size_t i = 0; i <= n; i++) {
        char *copy = malloc(i + 1);
        risk_sector_map *m = NULL;
        assert_non_null(copy);
        memcpy(copy, csv, i);
        (void)risk_sectors_parse(copy, i, &m, NULL, 0);
        risk_sectors_destroy(m);
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_sp500),
        cmocka_unit_test(test_quoting_crlf_bom_and_column_order),
        cmocka_unit_test(test_bad_input_table),
        cmocka_unit_test(test_too_many_sectors),
        cmocka_unit_test(test_null_and_destroy),
        cmocka_unit_test(test_every_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
