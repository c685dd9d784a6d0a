/*
 * brokers/sim.c — the built-in paper exchange: a deterministic matching engine shared by all
 * users' sim conns, and the "sim" brk_ops backend over it.
 *
 * Design: one engine mutex guards quotes, accounts, orders and the event queue; a second small
 * mutex guards the clock so brk_sim_clock_fn never waits on matching. Lock order: mu, then
 * clock_mu. Order updates become events queued under mu on their account and handed to the
 * listener after mu is released by the one thread that holds that account's "dispatching" flag,
 * so an account's events are delivered one at a time in seq order, accounts in parallel, and the
 * listener may call back into the engine. A call delivers the accounts it generated events for
 * (a submit or cancel its own account; a quote, a CSV load or the day roll every account with
 * events), so no caller waits for another account's updates to be applied.
 *
 * Invariants:
 *  - an order is on its symbol's book and its account's open list iff it is not terminal;
 *  - IOC and FOK orders never rest;
 *  - no floating point: notionals are qty(1e9) x price(1e6) in 128 bits, rounded half away;
 *  - everything that depends on time reads the engine clock once per operation, so a frozen
 *    clock gives byte-identical results for identical call sequences.
 * Orders and accounts live until the engine is freed (or the account is reset): the sim is a
 * test and paper-trading exchange, not a long-running ledger.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "brokers/broker_int.h"

#define SIM_ACCOUNT_ID_MAX 129
#define SIM_DEFAULT_CASH RISK_USD(100000)
#define SIM_MARGIN_MULTIPLIER 2

/* ---- a small string-keyed hash map ---------------------------------------------------------- */

typedef struct smap_ent {
    struct smap_ent *next;
    void *val;
    char key[];
} smap_ent;

typedef struct smap {
    smap_ent **b;
    size_t nb, n;
} smap;

static uint64_t smap_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static void *smap_get(const smap *m, const char *key)
{
    if (!m->nb)
        return NULL;
    for (smap_ent *e = m->b[smap_hash(key) % m->nb]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e->val;
    return NULL;
}

static int smap_grow(smap *m)
{
    size_t nb = m->nb ? m->nb * 2 : 16;
    smap_ent **b = calloc(nb, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < m->nb; i++) {
        smap_ent *e = m->b[i];
        while (e) {
            smap_ent *next = e->next;
            size_t k = smap_hash(e->key) % nb;
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

/* Inserts a key that is not present. -1 on OOM. */
static int smap_put(smap *m, const char *key, void *val)
{
    if (m->n >= m->nb && smap_grow(m) != 0)
        return -1;
    size_t kl = strlen(key);
    smap_ent *e = malloc(sizeof *e + kl + 1);
    if (!e)
        return -1;
    memcpy(e->key, key, kl + 1);
    e->val = val;
    size_t k = smap_hash(key) % m->nb;
    e->next = m->b[k];
    m->b[k] = e;
    m->n++;
    return 0;
}

static void smap_del(smap *m, const char *key)
{
    if (!m->nb)
        return;
    smap_ent **pp = &m->b[smap_hash(key) % m->nb];
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            smap_ent *e = *pp;
            *pp = e->next;
            free(e);
            m->n--;
            return;
        }
    }
}

/* Calls fn(val) for every value, then frees the table. */
static void smap_free(smap *m, void (*fn)(void *))
{
    for (size_t i = 0; i < m->nb; i++) {
        smap_ent *e = m->b[i];
        while (e) {
            smap_ent *next = e->next;
            if (fn)
                fn(e->val);
            free(e);
            e = next;
        }
    }
    free(m->b);
    memset(m, 0, sizeof *m);
}

/* ---- engine state ---------------------------------------------------------------------------- */

typedef struct sim_order sim_order;
typedef struct sim_account sim_account;

typedef struct sim_symbol {
    char name[BRK_SYMBOL_MAX];
    brk_quote q;
    sim_order *head, *tail; /* resting orders in submission order */
} sim_symbol;

typedef struct sim_pos {
    char symbol[BRK_SYMBOL_MAX];
    risk_qty qty;    /* signed */
    risk_money cost; /* signed like qty */
} sim_pos;

struct sim_account {
    char id[SIM_ACCOUNT_ID_MAX];
    brk_account_type type;
    risk_money cash;
    risk_money last_equity;
    smap positions; /* symbol -> sim_pos */
    smap orders;    /* client order id -> sim_order (all of them) */
    sim_order *open_head, *open_tail;
    /* events not yet delivered, and their delivery state (under the engine's mu) */
    struct sim_event *evq;
    size_t ev_head, ev_n, ev_cap;
    bool dispatching;          /* a thread is delivering this account's events */
    bool pending;              /* on the engine's pending list */
    sim_account *pending_next; /* that list */
};

struct sim_order {
    brk_order o;
    uint64_t seq;
    sim_account *acct;
    sim_symbol *sym;
    risk_money filled_notional;
    sim_order *book_prev, *book_next;
    sim_order *open_prev, *open_next;
};

typedef struct sim_event {
    brk_sim_event_kind kind;
    uint64_t seq;
    char account_id[SIM_ACCOUNT_ID_MAX];
    char client_order_id[BRK_ID_MAX];
    char broker_order_id[BRK_ID_MAX];
    char symbol[BRK_SYMBOL_MAX];
    brk_side side;
    risk_qty order_qty, fill_qty, cum_qty;
    risk_price fill_price, avg_price;
    brk_order_status status;
    int64_t time_ms;
} sim_event;

struct brk_sim_engine {
    pthread_mutex_t mu;
    int refs;
    brk_sim_config cfg;
    smap symbols;  /* name -> sim_symbol */
    smap accounts; /* id -> sim_account */
    smap orders;   /* broker order id -> sim_order */
    uint64_t next_order;
    /* events: queued per account; accounts with undelivered events wait on this list */
    uint64_t next_ev;
    sim_account *pend_head, *pend_tail;
    brk_sim_listener_fn listener;
    void *listener_ctx;
    /* clock */
    pthread_mutex_t clock_mu;
    bool frozen;
    int64_t frozen_ms;
    int64_t offset_ms;
};

typedef struct sim_conn {
    brk_conn base; /* first */
    brk_sim_engine *e;
    sim_account *acct; /* accounts are never freed before the engine */
} sim_conn;

/* ---- arithmetic ------------------------------------------------------------------------------ */

static int64_t clamp128(__int128 v)
{
    if (v > INT64_MAX)
        return INT64_MAX;
    if (v < -INT64_MAX)
        return -INT64_MAX;
    return (int64_t)v;
}

/* a * b / d rounded half away from zero, d > 0. */
static int64_t muldiv(int64_t a, int64_t b, int64_t d)
{
    __int128 p = (__int128)a * b;
    __int128 q = p / d, r = p % d;
    if (r < 0)
        r = -r;
    if (2 * r >= d)
        q += p < 0 ? -1 : 1;
    return clamp128(q);
}

static risk_money notional(risk_qty q, risk_price p)
{
    return muldiv(q, p, RISK_QTY_SCALE);
}

static risk_money madd(risk_money a, risk_money b)
{
    return clamp128((__int128)a + b);
}

/* ---- clock ----------------------------------------------------------------------------------- */

static int64_t base_now(const brk_sim_engine *e)
{
    if (e->cfg.clock)
        return e->cfg.clock(e->cfg.clock_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t brk_sim_now(brk_sim_engine *e)
{
    pthread_mutex_lock(&e->clock_mu);
    int64_t t = e->frozen ? e->frozen_ms : base_now(e) + e->offset_ms;
    pthread_mutex_unlock(&e->clock_mu);
    return t;
}

int64_t brk_sim_clock_fn(void *engine)
{
    return brk_sim_now(engine);
}

void brk_sim_clock_set(brk_sim_engine *e, int64_t unix_ms, bool running)
{
    pthread_mutex_lock(&e->clock_mu);
    e->frozen = !running;
    e->frozen_ms = unix_ms;
    e->offset_ms = unix_ms - base_now(e);
    pthread_mutex_unlock(&e->clock_mu);
    brk_logf(e->cfg.log, e->cfg.log_ctx, BRK_LOG_INFO, "sim: clock set to %" PRId64 " ms (%s)",
             unix_ms, running ? "running" : "frozen");
}

void brk_sim_clock_advance(brk_sim_engine *e, int64_t delta_ms)
{
    pthread_mutex_lock(&e->clock_mu);
    if (e->frozen)
        e->frozen_ms += delta_ms;
    else
        e->offset_ms += delta_ms;
    pthread_mutex_unlock(&e->clock_mu);
}

bool brk_sim_clock_frozen(brk_sim_engine *e)
{
    pthread_mutex_lock(&e->clock_mu);
    bool f = e->frozen;
    pthread_mutex_unlock(&e->clock_mu);
    return f;
}

void brk_sim_clock_reset(brk_sim_engine *e)
{
    pthread_mutex_lock(&e->clock_mu);
    e->frozen = false;
    e->offset_ms = 0;
    pthread_mutex_unlock(&e->clock_mu);
}

/* ---- events ---------------------------------------------------------------------------------- */

/* Under mu. Dropped when nobody listens or memory runs out (the order state stays right). */
static void ev_push(brk_sim_engine *e, brk_sim_event_kind kind, const sim_order *so,
                    risk_qty fill_qty, risk_price fill_price, int64_t now)
{
    sim_account *a = so->acct;
    if (!e->listener)
        return;
    if (a->ev_head + a->ev_n == a->ev_cap) {
        if (a->ev_head > 0) {
            memmove(a->evq, a->evq + a->ev_head, a->ev_n * sizeof *a->evq);
            a->ev_head = 0;
        } else {
            size_t cap = a->ev_cap ? a->ev_cap * 2 : 8;
            sim_event *q = realloc(a->evq, cap * sizeof *q);
            if (!q) {
                brk_logf(e->cfg.log, e->cfg.log_ctx, BRK_LOG_ERROR,
                         "sim: out of memory, order event dropped");
                return;
            }
            a->evq = q;
            a->ev_cap = cap;
        }
    }
    sim_event *ev = &a->evq[a->ev_head + a->ev_n++];
    memset(ev, 0, sizeof *ev);
    ev->kind = kind;
    ev->seq = ++e->next_ev;
    brk_copy(ev->account_id, sizeof ev->account_id, a->id);
    brk_copy(ev->client_order_id, sizeof ev->client_order_id, so->o.client_order_id);
    brk_copy(ev->broker_order_id, sizeof ev->broker_order_id, so->o.broker_order_id);
    brk_copy(ev->symbol, sizeof ev->symbol, so->o.symbol);
    ev->side = so->o.side;
    ev->order_qty = so->o.qty;
    ev->fill_qty = fill_qty;
    ev->fill_price = fill_price;
    ev->cum_qty = so->o.filled_qty;
    ev->avg_price = so->o.filled_avg_price;
    ev->status = so->o.status;
    ev->time_ms = now;
    if (!a->pending) {
        a->pending = true;
        a->pending_next = NULL;
        if (e->pend_tail)
            e->pend_tail->pending_next = a;
        else
            e->pend_head = a;
        e->pend_tail = a;
    }
}

/* With mu held on entry and exit (released around each listener call): deliver a's queue
 * unless another thread already is (that thread then delivers what was queued meanwhile). */
static void ev_dispatch(brk_sim_engine *e, sim_account *a)
{
    if (a->dispatching)
        return;
    a->dispatching = true;
    while (a->ev_n > 0) {
        sim_event ev = a->evq[a->ev_head];
        a->ev_head++;
        a->ev_n--;
        if (a->ev_n == 0)
            a->ev_head = 0;
        brk_sim_listener_fn fn = e->listener;
        void *ctx = e->listener_ctx;
        pthread_mutex_unlock(&e->mu);
        if (fn) {
            brk_sim_event pub = {
                .kind = ev.kind,
                .seq = ev.seq,
                .account_id = ev.account_id,
                .client_order_id = ev.client_order_id,
                .broker_order_id = ev.broker_order_id,
                .symbol = ev.symbol,
                .side = ev.side,
                .order_qty = ev.order_qty,
                .fill_qty = ev.fill_qty,
                .fill_price = ev.fill_price,
                .cum_qty = ev.cum_qty,
                .avg_price = ev.avg_price,
                .status = ev.status,
                .time_ms = ev.time_ms,
            };
            fn(ctx, &pub);
        }
        pthread_mutex_lock(&e->mu);
    }
    a->dispatching = false;
}

/* Without mu held: deliver the events of account a (a submit's or cancel's own account). Its
 * entry on the pending list stays and is skipped when found empty. */
static void ev_deliver_account(brk_sim_engine *e, sim_account *a)
{
    pthread_mutex_lock(&e->mu);
    ev_dispatch(e, a);
    pthread_mutex_unlock(&e->mu);
}

/* Without mu held: deliver every account with queued events that no other thread is
 * delivering (after a quote, a CSV load, the day roll). */
static void ev_deliver_all(brk_sim_engine *e)
{
    pthread_mutex_lock(&e->mu);
    while (e->pend_head) {
        sim_account *a = e->pend_head;
        e->pend_head = a->pending_next;
        if (!e->pend_head)
            e->pend_tail = NULL;
        a->pending = false;
        ev_dispatch(e, a);
    }
    pthread_mutex_unlock(&e->mu);
}

void brk_sim_set_fill_listener(brk_sim_engine *e, brk_sim_listener_fn fn, void *ctx)
{
    pthread_mutex_lock(&e->mu);
    e->listener = fn;
    e->listener_ctx = ctx;
    pthread_mutex_unlock(&e->mu);
}

/* ---- accounts, books, positions ----------------------------------------------------------------
 */

static bool valid_account_id(const char *s)
{
    if (!s)
        return false;
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e || n >= SIM_ACCOUNT_ID_MAX - 1)
            return false;
    return n > 0;
}

static void free_val(void *p)
{
    free(p);
}

static void account_free(void *p)
{
    sim_account *a = p;
    smap_free(&a->positions, free_val);
    smap_free(&a->orders, NULL); /* the orders are owned by the engine's id map */
    free(a->evq);
    free(a);
}

/* Under mu. */
static sim_account *account_get(brk_sim_engine *e, const char *id, bool create)
{
    sim_account *a = smap_get(&e->accounts, id);
    if (a || !create)
        return a;
    a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    brk_copy(a->id, sizeof a->id, id);
    a->type = e->cfg.default_account_type;
    a->cash = e->cfg.default_cash;
    a->last_equity = a->cash;
    if (smap_put(&e->accounts, id, a) != 0) {
        free(a);
        return NULL;
    }
    return a;
}

static risk_price mark_price(const brk_sim_engine *e, const char *symbol)
{
    const sim_symbol *s = smap_get(&e->symbols, symbol);
    if (!s)
        return 0;
    if (s->q.last > 0)
        return s->q.last;
    return (risk_price)(((__int128)s->q.bid + s->q.ask) / 2);
}

typedef struct acct_totals {
    risk_money equity;
    risk_money gross;    /* sum |market value| */
    risk_money open_buy; /* notional reserved by open buys */
} acct_totals;

static acct_totals account_totals(const brk_sim_engine *e, const sim_account *a)
{
    acct_totals t = {.equity = a->cash};
    for (size_t i = 0; i < a->positions.nb; i++)
        for (smap_ent *en = a->positions.b[i]; en; en = en->next) {
            const sim_pos *p = en->val;
            risk_money mv = notional(p->qty, mark_price(e, p->symbol));
            t.equity = madd(t.equity, mv);
            t.gross = madd(t.gross, mv < 0 ? -mv : mv);
        }
    for (const sim_order *o = a->open_head; o; o = o->open_next) {
        if (o->o.side != BRK_SIDE_BUY)
            continue;
        risk_price px = o->o.type == BRK_TYPE_LIMIT ? o->o.limit_price : o->sym->q.ask;
        t.open_buy = madd(t.open_buy, notional(o->o.qty - o->o.filled_qty, px));
    }
    return t;
}

static risk_money buying_power(const brk_sim_engine *e, const sim_account *a)
{
    acct_totals t = account_totals(e, a);
    risk_money bp;
    if (a->type == BRK_ACCOUNT_MARGIN)
        bp = clamp128((__int128)SIM_MARGIN_MULTIPLIER * t.equity - t.gross - t.open_buy);
    else
        bp = clamp128((__int128)a->cash - t.open_buy);
    return bp < 0 ? 0 : bp;
}

static risk_qty position_qty(const sim_account *a, const char *symbol)
{
    const sim_pos *p = smap_get(&a->positions, symbol);
    return p ? p->qty : 0;
}

static void book_remove(sim_order *o)
{
    sim_symbol *s = o->sym;
    if (o->book_prev)
        o->book_prev->book_next = o->book_next;
    else if (s->head == o)
        s->head = o->book_next;
    if (o->book_next)
        o->book_next->book_prev = o->book_prev;
    else if (s->tail == o)
        s->tail = o->book_prev;
    o->book_prev = o->book_next = NULL;

    sim_account *a = o->acct;
    if (o->open_prev)
        o->open_prev->open_next = o->open_next;
    else if (a->open_head == o)
        a->open_head = o->open_next;
    if (o->open_next)
        o->open_next->open_prev = o->open_prev;
    else if (a->open_tail == o)
        a->open_tail = o->open_prev;
    o->open_prev = o->open_next = NULL;
}

static void book_append(sim_order *o)
{
    sim_symbol *s = o->sym;
    o->book_prev = s->tail;
    o->book_next = NULL;
    if (s->tail)
        s->tail->book_next = o;
    else
        s->head = o;
    s->tail = o;

    sim_account *a = o->acct;
    o->open_prev = a->open_tail;
    o->open_next = NULL;
    if (a->open_tail)
        a->open_tail->open_next = o;
    else
        a->open_head = o;
    a->open_tail = o;
}

/* Applies a signed quantity change at price px to the account's position and cash. */
static int apply_position(sim_account *a, const char *symbol, risk_qty d, risk_price px)
{
    sim_pos *p = smap_get(&a->positions, symbol);
    if (!p) {
        p = calloc(1, sizeof *p);
        if (!p)
            return -1;
        brk_copy(p->symbol, sizeof p->symbol, symbol);
        if (smap_put(&a->positions, symbol, p) != 0) {
            free(p);
            return -1;
        }
    }
    risk_money n = notional(d < 0 ? -d : d, px);
    a->cash = madd(a->cash, d > 0 ? -n : n);
    if (p->qty == 0 || (p->qty > 0) == (d > 0)) {
        p->qty += d;
        p->cost = madd(p->cost, d > 0 ? n : -n);
    } else {
        risk_qty absq = p->qty < 0 ? -p->qty : p->qty;
        risk_qty absd = d < 0 ? -d : d;
        risk_qty closing = absd < absq ? absd : absq;
        risk_money cost_closed = muldiv(p->cost, closing, absq);
        p->cost -= cost_closed;
        p->qty += d > 0 ? closing : -closing;
        risk_qty opening = absd - closing;
        if (opening > 0) {
            risk_money on = notional(opening, px);
            p->qty += d > 0 ? opening : -opening;
            p->cost = d > 0 ? on : -on;
        }
    }
    if (p->qty == 0) {
        smap_del(&a->positions, symbol);
        free(p);
    }
    return 0;
}

static bool marketable(const sim_order *o, const brk_quote *q)
{
    if (o->o.type == BRK_TYPE_MARKET)
        return true;
    if (o->o.side == BRK_SIDE_BUY)
        return q->ask <= o->o.limit_price;
    return q->bid >= o->o.limit_price;
}

/* One match step for one order at its symbol's current quote. Under mu. */
static void match_step(brk_sim_engine *e, sim_order *o, int64_t now)
{
    const brk_quote *q = &o->sym->q;
    risk_qty remaining = o->o.qty - o->o.filled_qty;
    risk_qty step = remaining;
    if (e->cfg.liquidity > 0 && step > e->cfg.liquidity)
        step = e->cfg.liquidity;
    if (!marketable(o, q) || step <= 0)
        return;
    if (o->o.tif == BRK_TIF_FOK && step < remaining)
        return; /* canceled by the caller */
    risk_price px = o->o.side == BRK_SIDE_BUY ? q->ask : q->bid;
    if (apply_position(o->acct, o->o.symbol, o->o.side == BRK_SIDE_BUY ? step : -step, px) != 0) {
        brk_logf(e->cfg.log, e->cfg.log_ctx, BRK_LOG_ERROR, "sim: out of memory, fill skipped");
        return;
    }
    o->o.filled_qty += step;
    o->filled_notional = madd(o->filled_notional, notional(step, px));
    o->o.filled_avg_price = muldiv(o->filled_notional, RISK_QTY_SCALE, o->o.filled_qty);
    o->o.status = o->o.filled_qty == o->o.qty ? BRK_ORDER_FILLED : BRK_ORDER_PARTIALLY_FILLED;
    o->o.updated_ms = now;
    ev_push(e, BRK_SIM_EV_FILL, o, step, px, now);
}

static void finish(brk_sim_engine *e, sim_order *o, brk_order_status st, int64_t now)
{
    o->o.status = st;
    o->o.updated_ms = now;
    ev_push(e, st == BRK_ORDER_EXPIRED ? BRK_SIM_EV_EXPIRED : BRK_SIM_EV_CANCELED, o, 0, 0, now);
}

/* A match step over a symbol's resting orders, in submission order. Under mu. */
static void match_symbol(brk_sim_engine *e, sim_symbol *s, int64_t now)
{
    sim_order *o = s->head;
    while (o) {
        sim_order *next = o->book_next;
        match_step(e, o, now);
        if (o->o.status == BRK_ORDER_FILLED)
            book_remove(o);
        o = next;
    }
}

/* ---- engine lifecycle --------------------------------------------------------------------- */

brk_rc brk_sim_engine_create(const brk_sim_config *cfg, brk_sim_engine **out)
{
    if (!out)
        return BRK_INVALID;
    *out = NULL;
    brk_sim_config c = {0};
    if (cfg)
        c = *cfg;
    if (c.default_cash == 0)
        c.default_cash = SIM_DEFAULT_CASH;
    if (c.default_account_type == 0)
        c.default_account_type = BRK_ACCOUNT_CASH;
    if (c.default_cash < 0 || c.liquidity < 0 ||
        (c.default_account_type != BRK_ACCOUNT_CASH &&
         c.default_account_type != BRK_ACCOUNT_MARGIN))
        return BRK_INVALID;
    brk_sim_engine *e = calloc(1, sizeof *e);
    if (!e)
        return BRK_INTERNAL;
    if (pthread_mutex_init(&e->mu, NULL) != 0) {
        free(e);
        return BRK_INTERNAL;
    }
    if (pthread_mutex_init(&e->clock_mu, NULL) != 0) {
        pthread_mutex_destroy(&e->mu);
        free(e);
        return BRK_INTERNAL;
    }
    e->cfg = c;
    e->refs = 1;
    *out = e;
    return BRK_OK;
}

static void engine_free(brk_sim_engine *e)
{
    smap_free(&e->accounts, account_free);
    smap_free(&e->orders, free_val);
    smap_free(&e->symbols, free_val);
    pthread_mutex_destroy(&e->clock_mu);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

static void engine_unref(brk_sim_engine *e)
{
    pthread_mutex_lock(&e->mu);
    int left = --e->refs;
    pthread_mutex_unlock(&e->mu);
    if (left == 0)
        engine_free(e);
}

void brk_sim_engine_destroy(brk_sim_engine *e)
{
    if (e)
        engine_unref(e);
}

/* ---- quotes ------------------------------------------------------------------------------------
 */

static bool quote_ok(const brk_quote *q)
{
    return q && q->bid > 0 && q->ask > 0 && q->last > 0 && q->bid <= q->ask;
}

/* Under mu. */
static brk_rc quote_apply(brk_sim_engine *e, const char *symbol, const brk_quote *q, int64_t now)
{
    sim_symbol *s = smap_get(&e->symbols, symbol);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return BRK_INTERNAL;
        brk_copy(s->name, sizeof s->name, symbol);
        if (smap_put(&e->symbols, symbol, s) != 0) {
            free(s);
            return BRK_INTERNAL;
        }
    }
    s->q = *q;
    match_symbol(e, s, now);
    return BRK_OK;
}

brk_rc brk_sim_set_quote(brk_sim_engine *e, const char *symbol, const brk_quote *q, brk_err *err)
{
    brk_err_clear(err);
    if (!e || !brk_valid_symbol(symbol))
        return brk_err_set(err, BRK_INVALID, 0, "symbol: 1..31 chars of [A-Za-z0-9./-] required");
    if (!quote_ok(q))
        return brk_err_set(err, BRK_INVALID, 0, "quote: bid, ask, last must be > 0, bid <= ask");
    int64_t now = brk_sim_now(e);
    pthread_mutex_lock(&e->mu);
    brk_rc rc = quote_apply(e, symbol, q, now);
    pthread_mutex_unlock(&e->mu);
    ev_deliver_all(e);
    if (rc != BRK_OK)
        return brk_err_set(err, rc, 0, "quote: out of memory");
    return BRK_OK;
}

brk_rc brk_sim_get_quote(brk_sim_engine *e, const char *symbol, brk_quote *out)
{
    if (!e || !out || !brk_valid_symbol(symbol))
        return BRK_INVALID;
    pthread_mutex_lock(&e->mu);
    const sim_symbol *s = smap_get(&e->symbols, symbol);
    if (s)
        *out = s->q;
    pthread_mutex_unlock(&e->mu);
    return s ? BRK_OK : BRK_NOT_FOUND;
}

typedef struct csv_quote {
    char symbol[BRK_SYMBOL_MAX];
    brk_quote q;
} csv_quote;

static bool csv_field(const char **p, const char *end, const char **f, size_t *flen, bool last)
{
    const char *s = *p;
    const char *c = s;
    while (c < end && *c != ',')
        c++;
    if (last != (c == end))
        return false;
    *f = s;
    *flen = (size_t)(c - s);
    *p = c < end ? c + 1 : c;
    return true;
}

/* Parses one data line into *out. Returns a static reason on error, NULL on success. */
static const char *csv_line(const char *s, size_t len, csv_quote *out)
{
    const char *p = s, *end = s + len, *f[4];
    size_t fl[4];
    for (int i = 0; i < 4; i++)
        if (!csv_field(&p, end, &f[i], &fl[i], i == 3))
            return "expected 4 fields: symbol,bid,ask,last";
    if (fl[0] == 0 || fl[0] >= BRK_SYMBOL_MAX)
        return "bad symbol";
    memcpy(out->symbol, f[0], fl[0]);
    out->symbol[fl[0]] = '\0';
    if (!brk_valid_symbol(out->symbol))
        return "bad symbol";
    risk_price *dst[3] = {&out->q.bid, &out->q.ask, &out->q.last};
    static const char *const names[3] = {"bad bid", "bad ask", "bad last"};
    for (int i = 0; i < 3; i++)
        if (risk_dec_parse(f[i + 1], fl[i + 1], RISK_PRICE_DIGITS, dst[i]) != RISK_DEC_OK)
            return names[i];
    if (!quote_ok(&out->q))
        return "prices must be > 0 and bid <= ask";
    return NULL;
}

brk_rc brk_sim_load_quotes_csv(brk_sim_engine *e, const char *text, size_t len, size_t *n_loaded,
                               brk_err *err)
{
    brk_err_clear(err);
    if (n_loaded)
        *n_loaded = 0;
    if (!e || (!text && len))
        return brk_err_set(err, BRK_INVALID, 0, "csv: missing engine or text");
    brk_rc rc = BRK_OK;
    csv_quote *qs = NULL;
    size_t n = 0, cap = 0, lineno = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t ll = (size_t)(le - p);
        if (ll > 0 && p[ll - 1] == '\r')
            ll--;
        lineno++;
        const char *line = p;
        p = nl ? nl + 1 : end;
        if (ll == 0)
            continue;
        if (memchr(line, '\0', ll)) {
            rc = brk_err_set(err, BRK_INVALID, 0, "csv line %zu: NUL byte", lineno);
            goto out;
        }
        if (lineno == 1 && ll == strlen("symbol,bid,ask,last") &&
            memcmp(line, "symbol,bid,ask,last", ll) == 0)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            csv_quote *nq = realloc(qs, nc * sizeof *nq);
            if (!nq) {
                rc = brk_err_set(err, BRK_INTERNAL, 0, "csv: out of memory");
                goto out;
            }
            qs = nq;
            cap = nc;
        }
        const char *why = csv_line(line, ll, &qs[n]);
        if (why) {
            rc = brk_err_set(err, BRK_INVALID, 0, "csv line %zu: %s", lineno, why);
            goto out;
        }
        n++;
    }
    int64_t now = brk_sim_now(e);
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < n && rc == BRK_OK; i++)
        rc = quote_apply(e, qs[i].symbol, &qs[i].q, now);
    pthread_mutex_unlock(&e->mu);
    ev_deliver_all(e);
    if (rc != BRK_OK) {
        brk_err_set(err, rc, 0, "csv: out of memory");
        goto out;
    }
    if (n_loaded)
        *n_loaded = n;
    brk_logf(e->cfg.log, e->cfg.log_ctx, BRK_LOG_INFO, "sim: loaded %zu quotes", n);
out:
    free(qs);
    return rc;
}

/* ---- accounts
 * ------------------------------------------------------------------------------------ */

static bool type_ok(brk_account_type t)
{
    return t == BRK_ACCOUNT_CASH || t == BRK_ACCOUNT_MARGIN;
}

brk_rc brk_sim_account_set(brk_sim_engine *e, const char *account_id, risk_money cash,
                           brk_account_type type)
{
    if (!e || !valid_account_id(account_id) || !type_ok(type))
        return BRK_INVALID;
    pthread_mutex_lock(&e->mu);
    sim_account *a = account_get(e, account_id, true);
    if (a) {
        a->cash = cash;
        a->type = type;
    }
    pthread_mutex_unlock(&e->mu);
    return a ? BRK_OK : BRK_INTERNAL;
}

brk_rc brk_sim_account_reset(brk_sim_engine *e, const char *account_id, risk_money cash,
                             brk_account_type type)
{
    if (!e || !valid_account_id(account_id) || !type_ok(type))
        return BRK_INVALID;
    int64_t now = brk_sim_now(e);
    pthread_mutex_lock(&e->mu);
    sim_account *a = account_get(e, account_id, true);
    if (a) {
        while (a->open_head) {
            sim_order *o = a->open_head;
            book_remove(o);
            finish(e, o, BRK_ORDER_CANCELED, now);
        }
        for (size_t i = 0; i < a->orders.nb; i++)
            for (smap_ent *en = a->orders.b[i]; en; en = en->next) {
                sim_order *o = en->val;
                smap_del(&e->orders, o->o.broker_order_id);
                free(o);
            }
        smap_free(&a->orders, NULL);
        smap_free(&a->positions, free_val);
        a->cash = cash;
        a->last_equity = cash;
        a->type = type;
    }
    pthread_mutex_unlock(&e->mu);
    if (a)
        ev_deliver_account(e, a);
    return a ? BRK_OK : BRK_INTERNAL;
}

void brk_sim_roll_day(brk_sim_engine *e)
{
    if (!e)
        return;
    int64_t now = brk_sim_now(e);
    pthread_mutex_lock(&e->mu);
    /* Collect first so the expiry order does not depend on hash-table layout. */
    size_t n = 0, cap = 0;
    sim_order **v = NULL;
    for (size_t i = 0; i < e->accounts.nb; i++)
        for (smap_ent *en = e->accounts.b[i]; en; en = en->next) {
            sim_account *a = en->val;
            for (sim_order *o = a->open_head; o; o = o->open_next) {
                if (o->o.tif != BRK_TIF_DAY)
                    continue;
                if (n == cap) {
                    size_t nc = cap ? cap * 2 : 32;
                    sim_order **nv = realloc(v, nc * sizeof *nv);
                    if (!nv)
                        break;
                    v = nv;
                    cap = nc;
                }
                v[n++] = o;
            }
            a->last_equity = account_totals(e, a).equity;
        }
    /* Expire in submission order (seq) for determinism. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && v[j - 1]->seq > v[j]->seq; j--) {
            sim_order *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        book_remove(v[i]);
        finish(e, v[i], BRK_ORDER_EXPIRED, now);
    }
    pthread_mutex_unlock(&e->mu);
    free(v);
    ev_deliver_all(e);
    brk_logf(e->cfg.log, e->cfg.log_ctx, BRK_LOG_INFO, "sim: day rolled, %zu DAY orders expired",
             n);
}

/* ---- the sim backend
 * ------------------------------------------------------------------------------ */

static brk_rc sim_submit(brk_conn *c, const brk_order_req *req, brk_order *out, brk_err *err)
{
    sim_conn *sc = (sim_conn *)c;
    brk_sim_engine *e = sc->e;
    if (req->tif == BRK_TIF_OPG || req->tif == BRK_TIF_CLS)
        return brk_err_set(err, BRK_INVALID, 0, "time_in_force: opg/cls not supported by sim");
    brk_rc rc = BRK_OK;
    int64_t now = brk_sim_now(e);
    pthread_mutex_lock(&e->mu);
    sim_account *a = sc->acct;
    sim_symbol *s = smap_get(&e->symbols, req->symbol);
    if (!s) {
        rc = brk_err_set(err, BRK_REJECTED, 0, "no quote for symbol");
        goto out;
    }
    if (smap_get(&a->orders, req->client_order_id)) {
        rc = brk_err_set(err, BRK_REJECTED, 0, "client_order_id must be unique");
        goto out;
    }
    risk_price ref = req->type == BRK_TYPE_LIMIT
                         ? req->limit_price
                         : (req->side == BRK_SIDE_BUY ? s->q.ask : s->q.bid);
    risk_money need = 0;
    if (risk_notional(req->qty, ref, RISK_ROUND_AWAY, &need) != RISK_DEC_OK) {
        rc = brk_err_set(err, BRK_REJECTED, 0, "order notional out of range");
        goto out;
    }
    if (req->side == BRK_SIDE_BUY) {
        if (need > buying_power(e, a)) {
            rc = brk_err_set(err, BRK_REJECTED, 0, "insufficient buying power");
            goto out;
        }
    } else {
        risk_qty held = position_qty(a, req->symbol);
        for (const sim_order *o = a->open_head; o; o = o->open_next)
            if (o->o.side == BRK_SIDE_SELL && strcmp(o->o.symbol, req->symbol) == 0)
                held -= o->o.qty - o->o.filled_qty;
        if (held < 0)
            held = 0;
        risk_qty shorting = req->qty > held ? req->qty - held : 0;
        if (shorting > 0 && a->type != BRK_ACCOUNT_MARGIN) {
            rc = brk_err_set(err, BRK_REJECTED, 0, "insufficient qty available for order");
            goto out;
        }
        risk_money short_need = 0;
        if (shorting > 0 &&
            (risk_notional(shorting, ref, RISK_ROUND_AWAY, &short_need) != RISK_DEC_OK ||
             short_need > buying_power(e, a))) {
            rc = brk_err_set(err, BRK_REJECTED, 0, "insufficient buying power");
            goto out;
        }
    }

    sim_order *o = calloc(1, sizeof *o);
    if (!o) {
        rc = brk_err_set(err, BRK_INTERNAL, 0, "out of memory");
        goto out;
    }
    o->seq = ++e->next_order;
    o->acct = a;
    o->sym = s;
    snprintf(o->o.broker_order_id, sizeof o->o.broker_order_id, "sim-%012" PRIu64, o->seq);
    brk_copy(o->o.client_order_id, sizeof o->o.client_order_id, req->client_order_id);
    brk_copy(o->o.symbol, sizeof o->o.symbol, req->symbol);
    o->o.side = req->side;
    o->o.type = req->type;
    o->o.tif = req->tif;
    o->o.qty = req->qty;
    o->o.limit_price = req->limit_price;
    o->o.status = BRK_ORDER_NEW;
    o->o.created_ms = now;
    o->o.updated_ms = now;
    if (smap_put(&e->orders, o->o.broker_order_id, o) != 0) {
        free(o);
        rc = brk_err_set(err, BRK_INTERNAL, 0, "out of memory");
        goto out;
    }
    if (smap_put(&a->orders, o->o.client_order_id, o) != 0) {
        smap_del(&e->orders, o->o.broker_order_id);
        free(o);
        rc = brk_err_set(err, BRK_INTERNAL, 0, "out of memory");
        goto out;
    }
    match_step(e, o, now);
    if (o->o.status != BRK_ORDER_FILLED) {
        if (req->tif == BRK_TIF_IOC || req->tif == BRK_TIF_FOK)
            finish(e, o, BRK_ORDER_CANCELED, now);
        else
            book_append(o);
    }
    *out = o->o;
    brk_logf(e->cfg.log, e->cfg.log_ctx, BRK_LOG_DEBUG, "sim: order %s %s %s -> %s",
             o->o.broker_order_id, brk_side_name(req->side), req->symbol,
             brk_order_status_name(o->o.status));
out:
    pthread_mutex_unlock(&e->mu);
    ev_deliver_account(e, sc->acct);
    return rc;
}

static brk_rc sim_cancel(brk_conn *c, const char *broker_order_id, brk_err *err)
{
    sim_conn *sc = (sim_conn *)c;
    brk_sim_engine *e = sc->e;
    brk_rc rc = BRK_OK;
    int64_t now = brk_sim_now(e);
    pthread_mutex_lock(&e->mu);
    sim_order *o = smap_get(&e->orders, broker_order_id);
    if (!o || o->acct != sc->acct) { /* another account's order does not exist for you */
        rc = brk_err_set(err, BRK_NOT_FOUND, 0, "order not found");
        goto out;
    }
    if (brk_order_status_is_terminal(o->o.status)) {
        rc = brk_err_set(err, BRK_REJECTED, 0, "order is not cancelable (%s)",
                         brk_order_status_name(o->o.status));
        goto out;
    }
    book_remove(o);
    finish(e, o, BRK_ORDER_CANCELED, now);
out:
    pthread_mutex_unlock(&e->mu);
    ev_deliver_account(e, sc->acct);
    return rc;
}

static brk_rc sim_get(brk_conn *c, const char *client_order_id, brk_order *out, brk_err *err)
{
    sim_conn *sc = (sim_conn *)c;
    pthread_mutex_lock(&sc->e->mu);
    const sim_order *o = smap_get(&sc->acct->orders, client_order_id);
    if (o)
        *out = o->o;
    pthread_mutex_unlock(&sc->e->mu);
    return o ? BRK_OK : brk_err_set(err, BRK_NOT_FOUND, 0, "order not found");
}

static brk_rc sim_list_open(brk_conn *c, brk_order_list *out, brk_err *err)
{
    sim_conn *sc = (sim_conn *)c;
    brk_rc rc = BRK_OK;
    pthread_mutex_lock(&sc->e->mu);
    size_t n = 0;
    for (const sim_order *o = sc->acct->open_head; o; o = o->open_next)
        n++;
    if (n) {
        out->items = calloc(n, sizeof *out->items);
        if (!out->items) {
            rc = brk_err_set(err, BRK_INTERNAL, 0, "out of memory");
            goto out;
        }
        for (const sim_order *o = sc->acct->open_head; o; o = o->open_next)
            out->items[out->n++] = o->o;
    }
out:
    pthread_mutex_unlock(&sc->e->mu);
    return rc;
}

static brk_rc sim_account_op(brk_conn *c, brk_account *out, brk_err *err)
{
    (void)err;
    sim_conn *sc = (sim_conn *)c;
    pthread_mutex_lock(&sc->e->mu);
    const sim_account *a = sc->acct;
    acct_totals t = account_totals(sc->e, a);
    out->type = a->type;
    out->multiplier = a->type == BRK_ACCOUNT_MARGIN ? SIM_MARGIN_MULTIPLIER : 1;
    out->cash = a->cash;
    out->equity = t.equity;
    out->last_equity = a->last_equity;
    out->buying_power = buying_power(sc->e, a);
    pthread_mutex_unlock(&sc->e->mu);
    return BRK_OK;
}

static int pos_cmp(const void *x, const void *y)
{
    return strcmp(((const brk_position *)x)->symbol, ((const brk_position *)y)->symbol);
}

static brk_rc sim_positions(brk_conn *c, brk_position_list *out, brk_err *err)
{
    sim_conn *sc = (sim_conn *)c;
    brk_rc rc = BRK_OK;
    pthread_mutex_lock(&sc->e->mu);
    const sim_account *a = sc->acct;
    if (a->positions.n) {
        out->items = calloc(a->positions.n, sizeof *out->items);
        if (!out->items) {
            rc = brk_err_set(err, BRK_INTERNAL, 0, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < a->positions.nb; i++)
            for (smap_ent *en = a->positions.b[i]; en; en = en->next) {
                const sim_pos *p = en->val;
                brk_position *bp = &out->items[out->n++];
                brk_copy(bp->symbol, sizeof bp->symbol, p->symbol);
                bp->qty = p->qty;
                bp->cost_basis = p->cost;
                bp->avg_entry_price = muldiv(p->cost, RISK_QTY_SCALE, p->qty);
                bp->current_price = mark_price(sc->e, p->symbol);
                bp->market_value = notional(p->qty, bp->current_price);
                bp->unrealized_pl = clamp128((__int128)bp->market_value - p->cost);
            }
    }
out:
    pthread_mutex_unlock(&sc->e->mu);
    if (rc == BRK_OK && out->items != NULL && out->n > 1)
        qsort(out->items, out->n, sizeof *out->items, pos_cmp);
    return rc;
}

static brk_rc sim_last_price(brk_conn *c, const char *symbol, risk_price *out, brk_err *err)
{
    brk_quote q;
    brk_rc rc = brk_sim_get_quote(((sim_conn *)c)->e, symbol, &q);
    if (rc == BRK_NOT_FOUND)
        return brk_err_set(err, rc, 0, "last_price: no quote for %s", symbol);
    if (rc != BRK_OK)
        return brk_err_set(err, rc, 0, "last_price: %s", brk_rc_name(rc));
    *out = q.last;
    return BRK_OK;
}

static void sim_destroy(brk_conn *c)
{
    sim_conn *sc = (sim_conn *)c;
    brk_sim_engine *e = sc->e;
    free(sc);
    engine_unref(e);
}

static const struct brk_ops sim_ops = {
    .name = "sim",
    .submit = sim_submit,
    .cancel = sim_cancel,
    .get_by_client_order_id = sim_get,
    .list_open = sim_list_open,
    .account = sim_account_op,
    .positions = sim_positions,
    .destroy = sim_destroy,
    .last_price = sim_last_price,
};

brk_rc brk_sim_connect(brk_sim_engine *e, const char *account_id, brk_conn **out)
{
    if (!out)
        return BRK_INVALID;
    *out = NULL;
    if (!e || !valid_account_id(account_id))
        return BRK_INVALID;
    sim_conn *sc = calloc(1, sizeof *sc);
    if (!sc)
        return BRK_INTERNAL;
    pthread_mutex_lock(&e->mu);
    sim_account *a = account_get(e, account_id, true);
    if (a)
        e->refs++;
    pthread_mutex_unlock(&e->mu);
    if (!a) {
        free(sc);
        return BRK_INTERNAL;
    }
    sc->base.ops = &sim_ops;
    sc->e = e;
    sc->acct = a;
    *out = &sc->base;
    return BRK_OK;
}
