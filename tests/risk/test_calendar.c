/*
 * tests/risk/test_calendar.c — civil dates, New York DST and the NYSE calendar, checked
 * against the NYSE's published full-day holiday lists for 2024-2027 (written out below, not
 * computed), plus observance edge cases and session-start instants across DST changes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "risk/risk.h"

#define D(y, m, d) risk_day_from_ymd(y, m, d)

typedef struct ymd {
    int y;
    int m;
    int d;
} ymd;

/* NYSE full-day closures as published (holidays and observed dates). */
static const ymd nyse_2024[] = {{2024, 1, 1},   {2024, 1, 15}, {2024, 2, 19}, {2024, 3, 29},
                                {2024, 5, 27},  {2024, 6, 19}, {2024, 7, 4},  {2024, 9, 2},
                                {2024, 11, 28}, {2024, 12, 25}};
static const ymd nyse_2025[] = {{2025, 1, 1},   {2025, 1, 20}, {2025, 2, 17}, {2025, 4, 18},
                                {2025, 5, 26},  {2025, 6, 19}, {2025, 7, 4},  {2025, 9, 1},
                                {2025, 11, 27}, {2025, 12, 25}};
static const ymd nyse_2026[] = {{2026, 1, 1},   {2026, 1, 19}, {2026, 2, 16}, {2026, 4, 3},
                                {2026, 5, 25},  {2026, 6, 19}, {2026, 7, 3},  {2026, 9, 7},
                                {2026, 11, 26}, {2026, 12, 25}};
static const ymd nyse_2027[] = {{2027, 1, 1},   {2027, 1, 18}, {2027, 2, 15}, {2027, 3, 26},
                                {2027, 5, 31},  {2027, 6, 18}, {2027, 7, 5},  {2027, 9, 6},
                                {2027, 11, 25}, {2027, 12, 24}};

/* Every weekday of the year is a trading day except exactly the listed ones. */
static void check_year(const risk_calendar *cal, int year, const ymd *h, size_t n)
{
    size_t found = 0;
    for (risk_day d = D(year, 1, 1); d <= D(year, 12, 31); d++) {
        int wd = risk_day_weekday(d);
        int listed = 0;
        for (size_t i = 0; i < n; i++) {
            listed |= D(h[i].y, h[i].m, h[i].d) == d;
        }
        found += (size_t)listed;
        bool want = wd != 0 && wd != 6 && !listed;
        if (risk_cal_is_trading_day(cal, d) != want) {
            int y;
            int m;
            int md;
            risk_day_to_ymd(d, &y, &m, &md);
            fail_msg("%04d-%02d-%02d: trading day %d, want %d", y, m, md, !want, want);
        }
        if (listed) {
            assert_non_null(risk_cal_holiday_name(cal, d));
        }
    }
    assert_int_equal(found, n);
}

static void test_nyse_2024(void **state)
{
    risk_calendar cal;
    (void)state;
    risk_calendar_init(&cal, NULL, 0);
    check_year(&cal, 2024, nyse_2024, 10);
}

/* 2025-01-09 (national day of mourning for President Carter) was an unscheduled closure: not
 * predictable by rule, so it comes from the extra-closures list. */
static void test_nyse_2025_with_special_closure(void **state)
{
    risk_calendar cal;
    risk_day carter[1];
    ymd with[11];
    (void)state;
    carter[0] = D(2025, 1, 9);
    risk_calendar_init(&cal, NULL, 0);
    check_year(&cal, 2025, nyse_2025, 10);
    assert_int_equal(risk_calendar_init(&cal, carter, 1), 0);
    memcpy(with, nyse_2025, sizeof(nyse_2025));
    with[10] = (ymd){2025, 1, 9};
    check_year(&cal, 2025, with, 11);
    assert_string_equal(risk_cal_holiday_name(&cal, D(2025, 1, 9)), "Special closure");
}

static void test_nyse_2026(void **state)
{
    risk_calendar cal;
    (void)state;
    risk_calendar_init(&cal, NULL, 0);
    check_year(&cal, 2026, nyse_2026, 10);
}

static void test_nyse_2027(void **state)
{
    risk_calendar cal;
    (void)state;
    risk_calendar_init(&cal, NULL, 0);
    check_year(&cal, 2027, nyse_2027, 10);
}

typedef struct obs_case {
    const char *name;
    ymd day;
    bool trading;
} obs_case;

static const obs_case obs_cases[] = {
    {"New Year on Saturday: Friday Dec 31 2021 stays open", {2021, 12, 31}, true},
    {"New Year on Saturday: Monday Jan 3 2022 open", {2022, 1, 3}, true},
    {"New Year on Sunday: observed Monday Jan 2 2023", {2023, 1, 2}, false},
    {"Friday Dec 31 2027 open (Jan 1 2028 is a Saturday)", {2027, 12, 31}, true},
    {"Juneteenth 2021 not yet a holiday", {2021, 6, 18}, true},
    {"Juneteenth 2022 Sunday observed Monday June 20", {2022, 6, 20}, false},
    {"Juneteenth 2027 Saturday observed Friday June 18", {2027, 6, 18}, false},
    {"Independence Day 2026 Saturday observed Friday July 3", {2026, 7, 3}, false},
    {"Independence Day 2027 Sunday observed Monday July 5", {2027, 7, 5}, false},
    {"Christmas 2022 Sunday observed Monday Dec 26", {2022, 12, 26}, false},
    {"Christmas 2027 Saturday observed Friday Dec 24", {2027, 12, 24}, false},
    {"Christmas Eve on a Thursday is open", {2026, 12, 24}, true},
    {"Dec 31 on a Friday before a Saturday New Year (2032) is open", {2032, 12, 31}, true},
    {"Good Friday 2019 (Easter April 21)", {2019, 4, 19}, false},
    {"Good Friday 2038 (late Easter April 25)", {2038, 4, 23}, false},
    {"Good Friday 2008 (early Easter March 23)", {2008, 3, 21}, false},
    {"Thursday before Good Friday open", {2026, 4, 2}, true},
    {"Memorial Day 2027 is May 31 (last Monday)", {2027, 5, 31}, false},
    {"Monday May 24 2027 open", {2027, 5, 24}, true},
    {"Thanksgiving 2029 is Nov 22 (4th Thursday)", {2029, 11, 22}, false},
    {"day after Thanksgiving open (early close only)", {2026, 11, 27}, true},
    {"Saturday never trades", {2026, 3, 14}, false},
    {"Sunday never trades", {2026, 3, 15}, false},
};

static void test_observance_table(void **state)
{
    risk_calendar cal;
    (void)state;
    risk_calendar_init(&cal, NULL, 0);
    for (size_t i = 0; i < sizeof(obs_cases) / sizeof(obs_cases[0]); i++) {
        const obs_case *c = &obs_cases[i];
        if (risk_cal_is_trading_day(&cal, D(c->day.y, c->day.m, c->day.d)) != c->trading) {
            fail_msg("%s", c->name);
        }
    }
}

static void test_civil_round_trip(void **state)
{
    (void)state;
    assert_int_equal(D(1970, 1, 1), 0);
    assert_int_equal(risk_day_weekday(0), 4);
    assert_int_equal(D(2000, 3, 1) - D(2000, 2, 28), 2); /* 2000 is a leap year */
    assert_int_equal(D(2100, 3, 1) - D(2100, 2, 28), 1); /* 2100 is not */
    assert_int_equal(risk_day_weekday(D(2026, 11, 29)), 0);
    for (risk_day d = D(1900, 1, 1); d < D(2200, 1, 1); d++) {
        int y;
        int m;
        int md;
        risk_day_to_ymd(d, &y, &m, &md);
        if (D(y, m, md) != d) {
            fail_msg("day %d round trip", (int)d);
        }
    }
}

static void test_next_prev_and_between(void **state)
{
    risk_calendar cal;
    (void)state;
    risk_calendar_init(&cal, NULL, 0);
    /* Thursday before Good Friday 2026 -> Monday April 6. */
    assert_int_equal(risk_cal_next_trading_day(&cal, D(2026, 4, 2)), D(2026, 4, 6));
    assert_int_equal(risk_cal_prev_trading_day(&cal, D(2026, 4, 6)), D(2026, 4, 2));
    /* Christmas 2027 (observed Fri 24) -> Mon 27; prev of Mon 27 -> Thu 23. */
    assert_int_equal(risk_cal_next_trading_day(&cal, D(2027, 12, 23)), D(2027, 12, 27));
    assert_int_equal(risk_cal_prev_trading_day(&cal, D(2027, 12, 27)), D(2027, 12, 23));
    /* New Year 2027 (Fri): Dec 31 2026 -> Mon Jan 4 2027. */
    assert_int_equal(risk_cal_next_trading_day(&cal, D(2026, 12, 31)), D(2027, 1, 4));
    /* (from, to]: a full week with no holiday has 5; Thanksgiving week has 4. */
    assert_int_equal(risk_cal_business_days_between(&cal, D(2026, 3, 8), D(2026, 3, 15)), 5);
    assert_int_equal(risk_cal_business_days_between(&cal, D(2026, 11, 22), D(2026, 11, 29)), 4);
    assert_int_equal(risk_cal_business_days_between(&cal, D(2026, 3, 15), D(2026, 3, 8)), 0);
    /* 2024: 262 weekdays - 10 holidays; 2026 and 2027: 261 weekdays - 10 holidays. */
    assert_int_equal(risk_cal_business_days_between(&cal, D(2023, 12, 31), D(2024, 12, 31)), 252);
    assert_int_equal(risk_cal_business_days_between(&cal, D(2025, 12, 31), D(2026, 12, 31)), 251);
    assert_int_equal(risk_cal_business_days_between(&cal, D(2026, 12, 31), D(2027, 12, 31)), 251);
}

static void test_extra_closures_must_be_sorted(void **state)
{
    risk_calendar cal;
    risk_day bad[2];
    (void)state;
    bad[0] = D(2026, 5, 5);
    bad[1] = D(2026, 5, 4);
    assert_int_equal(risk_calendar_init(&cal, bad, 2), -1);
    assert_int_equal(cal.n_extra_closed, 0);
    bad[1] = bad[0];
    assert_int_equal(risk_calendar_init(&cal, bad, 2), -1);
    assert_int_equal(risk_calendar_init(&cal, NULL, 1), -1);
    assert_int_equal(risk_calendar_init(NULL, NULL, 0), -1);
}

typedef struct ss_case {
    const char *name;
    ymd day;
    int64_t want_unix;
} ss_case;

/* 09:30 New York in UTC: 14:30 under EST, 13:30 under EDT. */
static const ss_case ss_cases[] = {
    {"Friday before DST starts 2026 (EST)", {2026, 3, 6}, 1772807400},
    {"Monday after DST starts 2026 (EDT)", {2026, 3, 9}, 1773063000},
    {"DST start Sunday itself is EDT at 09:30", {2026, 3, 8}, 1772976600},
    {"Friday before DST ends 2026 (EDT)", {2026, 10, 30}, 1793367000},
    {"Monday after DST ends 2026 (EST)", {2026, 11, 2}, 1793629800},
    {"summer 2027", {2027, 7, 6}, 1814880600},
    {"winter 2024", {2024, 1, 2}, 1704205800},
};

static void test_session_start_dst(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ss_cases) / sizeof(ss_cases[0]); i++) {
        const ss_case *c = &ss_cases[i];
        int64_t got = risk_cal_session_start_unix(D(c->day.y, c->day.m, c->day.d));
        if (got != c->want_unix) {
            fail_msg("%s: %lld want %lld", c->name, (long long)got, (long long)c->want_unix);
        }
    }
}

static void test_ny_day_and_dst_edges(void **state)
{
    (void)state;
    /* 2026-03-08 06:59:59 UTC is 01:59:59 EST; 07:00:00 UTC is 03:00 EDT. */
    assert_false(risk_ny_is_dst(1772953199));
    assert_true(risk_ny_is_dst(1772953200));
    /* 2026-11-01 05:59:59 UTC is 01:59:59 EDT; 06:00 UTC is 01:00 EST. */
    assert_true(risk_ny_is_dst(1793512799));
    assert_false(risk_ny_is_dst(1793512800));
    /* 2006 rules: DST began April 2. */
    assert_false(risk_ny_is_dst(1143961200 - 1)); /* 2006-04-02 07:00 UTC - 1 s */
    assert_true(risk_ny_is_dst(1143961200));
    /* 03:59 UTC on Jan 2 is still Jan 1 in New York (EST). */
    assert_int_equal(risk_ny_day(1767326340), D(2026, 1, 1));
    assert_int_equal(risk_ny_day(1767330000), D(2026, 1, 2)); /* 05:00 UTC */
    /* 03:59 UTC on July 2 is July 1 in New York (EDT); 04:00 UTC is July 2. */
    assert_int_equal(risk_ny_day(1782964740), D(2026, 7, 1));
    assert_int_equal(risk_ny_day(1782964800), D(2026, 7, 2));
}

static void test_next_session_start(void **state)
{
    risk_calendar cal;
    (void)state;
    risk_calendar_init(&cal, NULL, 0);
    /* Thursday 2026-04-02 15:00 EDT -> Monday 2026-04-06 09:30 EDT (Good Friday between). */
    assert_int_equal(risk_cal_next_session_start_unix(&cal, 1775156400),
                     risk_cal_session_start_unix(D(2026, 4, 6)));
    /* Friday 2026-03-06 23:30 EST (Sat 04:30 UTC) -> Monday 2026-03-09 09:30 EDT. */
    assert_int_equal(risk_cal_next_session_start_unix(&cal, 1772857800), 1773063000);
    /* Before the open on a trading day still waits for the next trading day. */
    assert_int_equal(risk_cal_next_session_start_unix(&cal, 1773057600), /* Mon 08:00 EDT */
                     risk_cal_session_start_unix(D(2026, 3, 10)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nyse_2024),
        cmocka_unit_test(test_nyse_2025_with_special_closure),
        cmocka_unit_test(test_nyse_2026),
        cmocka_unit_test(test_nyse_2027),
        cmocka_unit_test(test_observance_table),
        cmocka_unit_test(test_civil_round_trip),
        cmocka_unit_test(test_next_prev_and_between),
        cmocka_unit_test(test_extra_closures_must_be_sorted),
        cmocka_unit_test(test_session_start_dst),
        cmocka_unit_test(test_ny_day_and_dst_edges),
        cmocka_unit_test(test_next_session_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
