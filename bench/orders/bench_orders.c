/*
 * bench_orders - SubmitOrder load generator on libtwclient (authenticated, per-user tokens).
 *
 * N client threads, each with its own twc_client (its own channel) and one user token
 * (thread i uses token i mod T from the token file, so with T >= N every thread is its own
 * user and the server's per-user serialization is exercised the way real traffic would).
 * Each thread submits market orders alternating buy/sell of qty 1 (the position oscillates
 * between 0 and 1, so no risk limit is approached), with client_order_ids unique per run
 * (<prefix>-<thread>-<seq>). Bounded twice: --count orders in total and --duration seconds.
 *
 * Closed loop by default (each thread waits for its reply before the next order = peak
 * throughput at N outstanding calls). With --rate R (orders/s over all threads) it is open
 * loop: thread i sends order k at start + (k * N + i) / R, and latency is measured from
 * that scheduled time, so queueing behind a slow reply is counted (no coordinated omission);
 * a thread more than --grace seconds past the schedule's end stops and counts its remaining
 * scheduled orders as unsent (the latency percentiles are then lower bounds).
 *
 * Output: one JSON object (stdout or --out) with counts, per-code errors, orders that did not
 * end FILLED, elapsed seconds, orders/s, latency percentiles and maximum in ms, and how many
 * calls took over 100 ms.
 * Invariants: every allocation is freed on exit; the process never talks to anything but
 * --target (a loopback address, enforced by libtwclient for plaintext).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "twc_services.h"

typedef struct bo_opts {
    const char *target;
    const char *tokens_file;
    const char *prefix;
    const char *symbol;
    const char *out;
    long threads;
    long count;
    double duration_s;
    double rate;
    double grace_s; /* open loop: stop sending this long after the schedule's end */
} bo_opts;

typedef struct bo_thread {
    pthread_t tid;
    long index;
    const bo_opts *o;
    const char *token;
    long quota;
    double start;      /* shared start time (monotonic seconds) */
    double *lat_ms;    /* quota entries, owned */
    long n_lat;        /* successful calls recorded */
    long n_err;        /* calls that did not return OK */
    long n_not_filled; /* OK calls whose order did not end FILLED */
    long n_unsent;     /* open loop: scheduled orders never sent (server too far behind) */
    long err_by_code[17];
    char first_err[160];
} bo_thread;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    double d = t - now_s();
    if (d <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)d, .tv_nsec = (long)((d - (double)(time_t)d) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void *bo_run(void *arg)
{
    bo_thread *t = arg;
    const bo_opts *o = t->o;
    twc_client *c = NULL;
    twc_client_opts co = {.target = o->target, .token = t->token, .timeout_ms = 30000};
    twc_status st = twc_client_create(&co, &c);
    if (st.code != TWC_OK) {
        snprintf(t->first_err, sizeof(t->first_err), "client: %s", st.message ? st.message : "");
        twc_status_clear(&st);
        t->n_err = t->quota;
        return NULL;
    }
    double deadline = t->start + o->duration_s;
    char one[] = "1";
    sleep_until(t->start); /* every thread starts at the shared start, the elapsed time's zero */
    for (long k = 0; k < t->quota; k++) {
        double sched = now_s();
        if (o->rate > 0) {
            sched = t->start + (double)(k * o->threads + t->index) / o->rate;
            if (sched >= deadline)
                break;
            if (now_s() > deadline + o->grace_s) {
                /* so far behind that the run would not end; what is left is counted, not sent */
                for (long j = k; j < t->quota; j++)
                    t->n_unsent +=
                        t->start + (double)(j * o->threads + t->index) / o->rate < deadline;
                break;
            }
            sleep_until(sched);
        } else if (sched >= deadline) {
            break;
        }
        char coid[64];
        snprintf(coid, sizeof(coid), "%s-%ld-%ld", o->prefix, t->index, k);
        Tradewink__V1__SubmitOrderRequest req;
        tradewink__v1__submit_order_request__init(&req);
        req.client_order_id = coid;
        req.symbol = (char *)(uintptr_t)o->symbol;
        req.side = (k & 1) ? TRADEWINK__V1__ORDER_SIDE__ORDER_SIDE_SELL
                           : TRADEWINK__V1__ORDER_SIDE__ORDER_SIDE_BUY;
        req.type = TRADEWINK__V1__ORDER_TYPE__ORDER_TYPE_MARKET;
        req.time_in_force = TRADEWINK__V1__TIME_IN_FORCE__TIME_IN_FORCE_DAY;
        req.origin = TRADEWINK__V1__ORDER_ORIGIN__ORDER_ORIGIN_USER;
        req.qty = one;
        Tradewink__V1__SubmitOrderResponse *resp = NULL;
        st = twc_orders_submit_order(c, &req, &resp, NULL);
        double done = now_s();
        if (st.code == TWC_OK) {
            t->lat_ms[t->n_lat++] = (done - sched) * 1000.0;
            if (!resp->order ||
                resp->order->status != TRADEWINK__V1__ORDER_STATUS__ORDER_STATUS_FILLED)
                t->n_not_filled++;
        } else {
            t->n_err++;
            if (st.code >= 0 && st.code <= 16)
                t->err_by_code[st.code]++;
            if (!t->first_err[0])
                snprintf(t->first_err, sizeof(t->first_err), "%s: %s", twc_code_name(st.code),
                         st.message ? st.message : "");
        }
        twc_status_clear(&st);
        twc_message_free(resp);
    }
    twc_client_destroy(c);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, long n, double p)
{
    if (n == 0)
        return 0;
    long i = (long)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* Reads up to max non-empty lines of path into toks (malloc'd strings). Returns the count. */
static long read_tokens(const char *path, char **toks, long max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long n = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (n < max && (len = getline(&line, &cap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        toks[n] = strdup(line);
        if (!toks[n])
            break;
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_orders --target HOST:PORT --tokens FILE [--threads N] "
                    "[--count N] [--duration S] [--rate R] [--grace S] [--prefix P] [--symbol S] "
                    "[--out FILE]\n");
}

int main(int argc, char **argv)
{
    bo_opts o = {.target = "127.0.0.1:50051",
                 .prefix = "bo",
                 .symbol = "BNCH",
                 .threads = 8,
                 .count = 1000,
                 .duration_s = 30,
                 .grace_s = 30};
    int rc = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--target"))
            o.target = v;
        else if (!strcmp(k, "--tokens"))
            o.tokens_file = v;
        else if (!strcmp(k, "--threads"))
            o.threads = strtol(v, NULL, 10);
        else if (!strcmp(k, "--count"))
            o.count = strtol(v, NULL, 10);
        else if (!strcmp(k, "--duration"))
            o.duration_s = strtod(v, NULL);
        else if (!strcmp(k, "--rate"))
            o.rate = strtod(v, NULL);
        else if (!strcmp(k, "--grace"))
            o.grace_s = strtod(v, NULL);
        else if (!strcmp(k, "--prefix"))
            o.prefix = v;
        else if (!strcmp(k, "--symbol"))
            o.symbol = v;
        else if (!strcmp(k, "--out"))
            o.out = v;
        else {
            usage();
            return 2;
        }
    }
    if (!o.tokens_file || o.threads < 1 || o.threads > 1024 || o.count < 1 || o.duration_s <= 0) {
        usage();
        return 2;
    }
    char *toks[1024] = {0};
    long ntok = read_tokens(o.tokens_file, toks, 1024);
    bo_thread *th = calloc((size_t)o.threads, sizeof(*th));
    double *all = calloc((size_t)o.count + 1, sizeof(double));
    FILE *out = NULL;
    if (ntok < 1 || !th || !all) {
        fprintf(stderr, "bench_orders: no tokens in %s or out of memory\n", o.tokens_file);
        goto out;
    }
    double start = now_s() + 0.05;
    long made = 0;
    for (long i = 0; i < o.threads; i++) {
        th[i].index = i;
        th[i].o = &o;
        th[i].token = toks[i % ntok];
        th[i].quota = o.count / o.threads + (i < o.count % o.threads);
        th[i].start = start;
        th[i].lat_ms = calloc((size_t)th[i].quota + 1, sizeof(double));
        if (!th[i].lat_ms || pthread_create(&th[i].tid, NULL, bo_run, &th[i]) != 0)
            break;
        made++;
    }
    for (long i = 0; i < made; i++)
        pthread_join(th[i].tid, NULL);
    double elapsed = now_s() - start;
    if (made != o.threads) {
        fprintf(stderr, "bench_orders: could not start %ld threads\n", o.threads);
        goto out;
    }
    long n = 0, errs = 0, not_filled = 0, unsent = 0, by_code[17] = {0};
    const char *first_err = "";
    for (long i = 0; i < o.threads; i++) {
        memcpy(all + n, th[i].lat_ms, (size_t)th[i].n_lat * sizeof(double));
        n += th[i].n_lat;
        errs += th[i].n_err;
        not_filled += th[i].n_not_filled;
        unsent += th[i].n_unsent;
        for (int k = 0; k < 17; k++)
            by_code[k] += th[i].err_by_code[k];
        if (!first_err[0] && th[i].first_err[0])
            first_err = th[i].first_err;
    }
    qsort(all, (size_t)n, sizeof(double), cmp_double);
    double sum = 0;
    long over_100ms = 0; /* the bound on any single call (fill delivery) */
    for (long i = 0; i < n; i++) {
        sum += all[i];
        over_100ms += all[i] > 100.0;
    }
    out = o.out ? fopen(o.out, "w") : stdout;
    if (!out) {
        perror(o.out);
        goto out;
    }
    fprintf(out,
            "{\"threads\":%ld,\"users\":%ld,\"rate\":%.1f,\"requested\":%ld,\"ok\":%ld,"
            "\"errors\":%ld,\"not_filled\":%ld,\"elapsed_s\":%.3f,\"orders_per_s\":%.1f,"
            "\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
            "\"over_100ms\":%ld,\"unsent\":%ld,\"errors_by_code\":{",
            o.threads, ntok < o.threads ? ntok : o.threads, o.rate, o.count, n, errs, not_filled,
            elapsed, elapsed > 0 ? (double)n / elapsed : 0, n ? sum / (double)n : 0,
            pct(all, n, 50), pct(all, n, 90), pct(all, n, 99), n ? all[n - 1] : 0, over_100ms,
            unsent);
    int first = 1;
    for (int k = 0; k < 17; k++)
        if (by_code[k]) {
            fprintf(out, "%s\"%s\":%ld", first ? "" : ",", twc_code_name(k), by_code[k]);
            first = 0;
        }
    fprintf(out, "},\"first_error\":\"");
    for (const char *p = first_err; *p; p++)
        if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
            fputc(*p, out);
    fprintf(out, "\"}\n");
    rc = (errs == 0 && n > 0) ? 0 : 1;
out:
    if (out && out != stdout)
        fclose(out);
    for (long i = 0; th && i < o.threads; i++)
        free(th[i].lat_ms);
    free(th);
    free(all);
    for (long i = 0; i < 1024; i++)
        free(toks[i]);
    return rc;
}
