/*
 * risk/calendar.c — civil dates, New York time (US DST rules in code, no tz database) and the
 * NYSE trading calendar.
 *
 * Design: a date is a day number (days since 1970-01-01). Holidays are recognised by rule from
 * the date itself (month, day of month, weekday), so is_trading_day costs a date conversion and
 * a switch on the month; only Good Friday needs the Easter computation (anonymous Gregorian
 * algorithm), and only for March/April Fridays. One-off closures come from a caller-owned
 * sorted array searched with bsearch. The rules are those in force since 2022 (Juneteenth),
 * valid for 1998 (MLK Day on the NYSE) onward; earlier years are approximate and untested.
 * Invariant: no function reads a clock or keeps state between calls.
 */
#include "risk/risk.h"

#include <stdlib.h>

#define SECS_PER_DAY 86400

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) {
        q--;
    }
    return q;
}

risk_day risk_day_from_ymd(int year, int month, int mday)
{
    int64_t y = (int64_t)year - (month <= 2 ? 1 : 0);
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t mp = month > 2 ? month - 3 : month + 9;
    int64_t doy = (153 * mp + 2) / 5 + mday - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return (risk_day)(era * 146097 + doe - 719468);
}

void risk_day_to_ymd(risk_day d, int *year, int *month, int *mday)
{
    int64_t z = (int64_t)d + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);

    if (year != NULL) {
        *year = (int)y;
    }
    if (month != NULL) {
        *month = (int)m;
    }
    if (mday != NULL) {
        *mday = (int)(doy - (153 * mp + 2) / 5 + 1);
    }
}

int risk_day_weekday(risk_day d)
{
    return (int)(((int64_t)d % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday (4) */
}

/* The n-th (1-based) given weekday of a month. */
static risk_day nth_weekday(int year, int month, int weekday, int n)
{
    risk_day first = risk_day_from_ymd(year, month, 1);
    int off = (weekday - risk_day_weekday(first) + 7) % 7;
    return first + off + 7 * (n - 1);
}

/* The last given weekday of a month. */
static risk_day last_weekday(int year, int month, int weekday)
{
    risk_day last =
        risk_day_from_ymd(month == 12 ? year + 1 : year, month == 12 ? 1 : month + 1, 1) - 1;
    int off = (risk_day_weekday(last) - weekday + 7) % 7;
    return last - off;
}

static risk_day easter_sunday(int y)
{
    int a = y % 19;
    int b = y / 100;
    int c = y % 100;
    int d = b / 4;
    int e = b % 4;
    int f = (b + 8) / 25;
    int g = (b - f + 1) / 3;
    int h = (19 * a + b - d - g + 15) % 30;
    int i = c / 4;
    int k = c % 4;
    int l = (32 + 2 * e + 2 * i - h - k) % 7;
    int m = (a + 11 * h + 22 * l) / 451;
    int month = (h + l - 7 * m + 114) / 31;
    int mday = (h + l - 7 * m + 114) % 31 + 1;

    return risk_day_from_ymd(y, month, mday);
}

/* A fixed-date holiday observed Saturday -> Friday, Sunday -> Monday. */
static bool fixed_observed(int md, int wd, int holiday_md)
{
    return md == holiday_md || (md == holiday_md - 1 && wd == 5) ||
           (md == holiday_md + 1 && wd == 1);
}

/* Rule-based NYSE holiday on a weekday, or NULL. */
static const char *rule_holiday(risk_day d)
{
    int y;
    int m;
    int md;
    int wd = risk_day_weekday(d);

    if (wd == 0 || wd == 6) {
        return NULL;
    }
    risk_day_to_ymd(d, &y, &m, &md);
    switch (m) {
    case 1:
        /* Jan 1, or Monday Jan 2 when Jan 1 is a Sunday; a Saturday Jan 1 is not observed. */
        if (md == 1 || (md == 2 && wd == 1)) {
            return "New Year's Day";
        }
        if (y >= 1998 && wd == 1 && md >= 15 && md <= 21) {
            return "Martin Luther King Jr. Day";
        }
        return NULL;
    case 2:
        return (wd == 1 && md >= 15 && md <= 21) ? "Washington's Birthday" : NULL;
    case 3:
    case 4:
        return (wd == 5 && d == easter_sunday(y) - 2) ? "Good Friday" : NULL;
    case 5:
        return (wd == 1 && md >= 25) ? "Memorial Day" : NULL;
    case 6:
        return (y >= 2022 && fixed_observed(md, wd, 19)) ? "Juneteenth National Independence Day"
                                                         : NULL;
    case 7:
        return fixed_observed(md, wd, 4) ? "Independence Day" : NULL;
    case 9:
        return (wd == 1 && md <= 7) ? "Labor Day" : NULL;
    case 11:
        return (wd == 4 && md >= 22 && md <= 28) ? "Thanksgiving Day" : NULL;
    case 12:
        /* Dec 24 (Friday) only as the observed Christmas; Dec 31 is never a closure. */
        return fixed_observed(md, wd, 25) ? "Christmas Day" : NULL;
    default:
        return NULL;
    }
}

static int cmp_day(const void *a, const void *b)
{
    risk_day x = *(const risk_day *)a;
    risk_day y = *(const risk_day *)b;
    return (x > y) - (x < y);
}

int risk_calendar_init(risk_calendar *cal, const risk_day *extra, size_t n)
{
    if (cal == NULL) {
        return -1;
    }
    cal->extra_closed = NULL;
    cal->n_extra_closed = 0;
    if (n > 0 && extra == NULL) {
        return -1;
    }
    for (size_t i = 1; i < n; i++) {
        if (extra[i] <= extra[i - 1]) {
            return -1;
        }
    }
    cal->extra_closed = extra;
    cal->n_extra_closed = n;
    return 0;
}

static bool extra_closed(const risk_calendar *cal, risk_day d)
{
    if (cal == NULL || cal->n_extra_closed == 0) {
        return false;
    }
    return bsearch(&d, cal->extra_closed, cal->n_extra_closed, sizeof(risk_day), cmp_day) != NULL;
}

const char *risk_cal_holiday_name(const risk_calendar *cal, risk_day d)
{
    const char *name = rule_holiday(d);
    if (name == NULL && extra_closed(cal, d)) {
        name = "Special closure";
    }
    return name;
}

bool risk_cal_is_trading_day(const risk_calendar *cal, risk_day d)
{
    int wd = risk_day_weekday(d);
    if (wd == 0 || wd == 6) {
        return false;
    }
    return rule_holiday(d) == NULL && !extra_closed(cal, d);
}

risk_day risk_cal_next_trading_day(const risk_calendar *cal, risk_day d)
{
    do {
        d++;
    } while (!risk_cal_is_trading_day(cal, d));
    return d;
}

risk_day risk_cal_prev_trading_day(const risk_calendar *cal, risk_day d)
{
    do {
        d--;
    } while (!risk_cal_is_trading_day(cal, d));
    return d;
}

int32_t risk_cal_business_days_between(const risk_calendar *cal, risk_day from, risk_day to)
{
    int32_t n = 0;
    for (risk_day d = from + 1; d <= to; d++) {
        if (risk_cal_is_trading_day(cal, d)) {
            n++;
        }
    }
    return n;
}

/* DST interval [start, end) in UTC seconds for a year, or start == end when none. */
static void dst_bounds(int year, int64_t *start, int64_t *end)
{
    risk_day s;
    risk_day e;

    if (year >= 2007) {
        s = nth_weekday(year, 3, 0, 2);
        e = nth_weekday(year, 11, 0, 1);
    } else if (year >= 1987) {
        s = nth_weekday(year, 4, 0, 1);
        e = last_weekday(year, 10, 0);
    } else {
        *start = *end = 0;
        return;
    }
    *start = (int64_t)s * SECS_PER_DAY + 7 * 3600; /* 02:00 EST */
    *end = (int64_t)e * SECS_PER_DAY + 6 * 3600;   /* 02:00 EDT */
}

bool risk_ny_is_dst(int64_t t_unix)
{
    int year;
    int64_t start;
    int64_t end;

    /* The UTC year equals the New York year at both transitions (March, November). */
    risk_day_to_ymd((risk_day)floor_div(t_unix, SECS_PER_DAY), &year, NULL, NULL);
    dst_bounds(year, &start, &end);
    return t_unix >= start && t_unix < end;
}

risk_day risk_ny_day(int64_t t_unix)
{
    int64_t off = risk_ny_is_dst(t_unix) ? -4 * 3600 : -5 * 3600;
    return (risk_day)floor_div(t_unix + off, SECS_PER_DAY);
}

int64_t risk_ny_local_to_unix(risk_day day, int32_t sec_of_day)
{
    int64_t t_est = (int64_t)day * SECS_PER_DAY + sec_of_day + 5 * 3600;
    int64_t t_edt = t_est - 3600;

    /* Take EDT when that instant is in DST; non-existent/ambiguous transition hours resolve to
     * the daylight reading, which never matters for 09:30. */
    return risk_ny_is_dst(t_edt) ? t_edt : t_est;
}

int64_t risk_cal_session_start_unix(risk_day d)
{
    return risk_ny_local_to_unix(d, 9 * 3600 + 30 * 60);
}

int64_t risk_cal_next_session_start_unix(const risk_calendar *cal, int64_t t_unix)
{
    return risk_cal_session_start_unix(risk_cal_next_trading_day(cal, risk_ny_day(t_unix)));
}
