/*
 * bench/risk/bench_risk.c — risk_decide calls per second on one core.
 *
 * The snapshot is realistic for an active retail account: 50 positions across the S&P 500
 * sector map, 20 open orders (10 in held symbols, 10 pending entries), 30 days of day-trade
 * history, 40 fills today, 4 recent orders, a margin account under the PDT floor (so the PDT
 * guard applies). Intents rotate over five (buy a new symbol, add to a held one, sell to
 * reduce, a limit order with collar, and a sell that completes a day trade, which makes the
 * engine run the full PDT count over history, fills and pending orders and refuse it), so no
 * single branch is measured alone. The
 * sector CSV is read from the path given as argv[1] (default: the copy in risk/data).
 * Time is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), i.e. calls per second of one core,
 * so other processes on a shared host do not count against us (their cache pressure still
 * does). Prints the best and the median of 30 batches (argv[2] lowers the count, e.g. to 1
 * under valgrind --tool=callgrind to count instructions per call). Exit status 1 on an invalid
 * snapshot.
 */
#include "risk/risk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef TW_RISK_SECTORS_CSV_PATH
#define TW_RISK_SECTORS_CSV_PATH "risk/data/sp500-constituents.csv"
#endif

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else if (buf != NULL) {
            *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: one core, not descheduled time */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *const held[50] = {
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "BRK.B", "JPM",  "V",     "UNH",
    "XOM",  "JNJ",  "PG",   "MA",   "HD",    "CVX",  "MRK",   "ABBV", "PEP",   "KO",
    "COST", "AVGO", "WMT",  "MCD",  "CSCO",  "ACN",  "ABT",   "LIN",  "DHR",   "TMO",
    "NEE",  "DIS",  "VZ",   "ADBE", "CRM",   "TXN",  "PM",    "NKE",  "CMCSA", "ORCL",
    "AMD",  "INTC", "QCOM", "HON",  "UPS",   "IBM",  "CAT",   "BA",   "GS",    "ZZZQ"};
static const char *const entries[10] = {"AMGN", "LOW", "SBUX", "GE",   "MDT",
                                        "BLK",  "DE",  "PLD",  "SPGI", "XYZW"};

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : TW_RISK_SECTORS_CSV_PATH;
    int batches = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 30; /* fewer under valgrind */
    size_t len = 0;
    char *csv = read_all(path, &len);
    risk_sector_map *map = NULL;
    char err[128];
    static risk_position pos[50];
    static risk_open_order open[20];
    static risk_recent_order recent[4];
    static risk_fill fills[40];
    static risk_day hist[30];
    risk_calendar cal;
    risk_snapshot s;
    risk_limits lim;
    risk_intent in[5];
    risk_decision d;
    int64_t now_ms;
    long calls = 0;
    long allowed = 0;

    if (csv == NULL || risk_sectors_parse(csv, len, &map, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_risk: cannot load sector map %s\n", path);
        free(csv);
        return 1;
    }
    free(csv);
    risk_calendar_init(&cal, NULL, 0);
    /* Wednesday 2026-03-11 14:00 EDT. */
    now_ms = (risk_cal_session_start_unix(risk_day_from_ymd(2026, 3, 11)) + 4 * 3600 + 1800) * 1000;

    memset(&s, 0, sizeof(s));
    for (int i = 0; i < 50; i++) {
        snprintf(pos[i].symbol, sizeof(pos[i].symbol), "%s", held[i]);
        pos[i].qty = RISK_SHARES(5 + i % 7) * (i % 9 == 0 ? -1 : 1);
        pos[i].avg_cost = RISK_USD(100 + i);
        pos[i].last_price = RISK_USD(101 + i);
    }
    for (int i = 0; i < 20; i++) {
        const char *sym = i < 10 ? held[i * 3] : entries[i - 10];
        snprintf(open[i].symbol, sizeof(open[i].symbol), "%s", sym);
        open[i].side = i % 3 == 0 ? RISK_SELL : RISK_BUY;
        open[i].qty = RISK_SHARES(1 + i % 4);
        open[i].price = RISK_USD(90 + i);
        open[i].created_ms = now_ms - 60000 * (i + 1);
        open[i].order_id = 1000 + (uint64_t)i;
    }
    for (int i = 0; i < 4; i++) {
        snprintf(recent[i].symbol, sizeof(recent[i].symbol), "%s", held[i + 20]);
        recent[i].side = RISK_BUY;
        recent[i].qty = RISK_SHARES(1);
        recent[i].submitted_ms = now_ms - 1500 * (i + 1);
    }
    for (int i = 0; i < 40; i++) {
        snprintf(fills[i].symbol, sizeof(fills[i].symbol), "%s", held[i % 12]);
        fills[i].side = (i / 12) % 2 == 0 ? RISK_BUY : RISK_SELL;
        fills[i].qty = RISK_SHARES(1);
        fills[i].price = RISK_USD(100);
        fills[i].filled_ms = now_ms - 3600000 + 60000 * i;
        fills[i].order_id = 500 + (uint64_t)(i / 2);
    }
    risk_day today = risk_ny_day(now_ms / 1000);
    for (int i = 0; i < 30; i++) {
        hist[i] = today - 1 - i; /* one per calendar day: most fall outside the window */
    }
    s.equity = RISK_USD(24000);
    s.sod_equity = RISK_USD(24100);
    s.peak_equity = RISK_USD(24300);
    s.prev_close_equity = RISK_USD(24100);
    s.positions = pos;
    s.n_positions = 50;
    s.open_orders = open;
    s.n_open_orders = 20;
    s.recent_orders = recent;
    s.n_recent_orders = 4;
    s.day_trade_days = hist;
    s.n_day_trade_days = 30;
    s.fills_today = fills;
    s.n_fills_today = 40;
    s.account_type = RISK_ACCOUNT_MARGIN;
    risk_pdt_default(&s.pdt);
    s.sectors = map;
    s.calendar = &cal;
    s.ref_price = RISK_USD(150);
    risk_limits_default(&lim);
    lim.max_open_positions = 100;
    lim.sector_max_bps = 10000;
    lim.unknown_sector_max_bps = 10000;

    memset(in, 0, sizeof(in));
    snprintf(in[0].symbol, sizeof(in[0].symbol), "%s", "TSLA");
    in[0].side = RISK_BUY;
    in[0].type = RISK_ORDER_MARKET;
    in[0].qty = RISK_SHARES(3);
    snprintf(in[1].symbol, sizeof(in[1].symbol), "%s", "MSFT");
    in[1].side = RISK_BUY;
    in[1].type = RISK_ORDER_LIMIT;
    in[1].qty = RISK_SHARES(2);
    in[1].limit_price = RISK_USD(149);
    snprintf(in[2].symbol, sizeof(in[2].symbol), "%s", "NVDA");
    in[2].side = RISK_SELL;
    in[2].type = RISK_ORDER_MARKET;
    in[2].qty = RISK_SHARES(1);
    snprintf(in[3].symbol, sizeof(in[3].symbol), "%s", "XOM");
    in[3].side = RISK_BUY;
    in[3].type = RISK_ORDER_LIMIT;
    in[3].qty = RISK_SHARES(4);
    in[3].limit_price = RISK_USD(151);

    /* A sell of GOOGL, bought earlier today: completes a day trade, so the full PDT count (30
     * days of history, every symbol's fills and pending orders) runs; it is refused. */
    snprintf(in[4].symbol, sizeof(in[4].symbol), "%s", "GOOGL");
    in[4].side = RISK_SELL;
    in[4].type = RISK_ORDER_MARKET;
    in[4].qty = RISK_SHARES(1);

    for (int i = 0; i < 5; i++) {
        if (risk_decide(&in[i], &s, &lim, now_ms, &d) != RISK_OK) {
            fprintf(stderr, "bench_risk: invalid snapshot: %s\n", d.violations[0].message);
            risk_sectors_destroy(map);
            return 1;
        }
    }
    /* 30 batches of 50,000 calls: the best batch is the machine's speed without noise from
     * other processes on a shared host, the median is what a busy host gives. */
    double rates[30];
    if (batches < 1 || batches > 30) {
        batches = 30;
    }
    for (int b = 0; b < batches; b++) {
        double t0 = now_s();
        for (int k = 0; k < 50000; k++) {
            risk_decide(&in[k % 5], &s, &lim, now_ms + k, &d);
            allowed += d.allowed;
        }
        calls += 50000;
        rates[b] = 50000.0 / (now_s() - t0);
    }
    for (int i = 1; i < batches; i++) { /* insertion sort, descending */
        double v = rates[i];
        int j = i - 1;
        while (j >= 0 && rates[j] < v) {
            rates[j + 1] = rates[j];
            j--;
        }
        rates[j + 1] = v;
    }
    printf("risk_decide: best %.0f calls/s, median %.0f calls/s (%ld calls, %ld allowed; 50 "
           "positions, 20 open orders, 30 days history, 40 fills today)\n",
           rates[0], rates[batches / 2], calls, allowed);
    risk_sectors_destroy(map);
    return 0;
}
