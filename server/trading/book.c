/*
 * book: a user's state at one store version, and the changes that keep it exact (book.h).
 *
 * Arrays grow by doubling; every update mirrors what the store's own statement did to the
 * rows a read would return (same filters, same order), so a book answers exactly what
 * book_read would read again.
 */
#include "book.h"
#include "order_status.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

book *book_new(int64_t user_id)
{
    book *b = tw_calloc(1, sizeof(*b));
    if (b) {
        b->user_id = user_id;
        b->keep = true;
    }
    return b;
}

void book_free(book *b)
{
    if (!b)
        return;
    free(b->pos);
    free(b->open);
    free(b->recent);
    free(b->fills);
    free(b->dts);
    free(b);
}

/* A copy of n elements of src (NULL for none); false on out of memory. */
static bool dup_array(void **dst, const void *src, size_t n, size_t elem)
{
    *dst = NULL;
    if (!n)
        return true;
    if (!(*dst = malloc(n * elem)))
        return false;
    memcpy(*dst, src, n * elem);
    return true;
}

/* c's ring: b's first c->nrecent submissions, oldest first from slot 0. */
static bool recent_copy(book *c, const book *b)
{
    if (!c->nrecent)
        return true;
    if (!(c->recent = malloc(c->nrecent * sizeof(*c->recent))))
        return false;
    for (size_t i = 0; i < c->nrecent; i++)
        c->recent[i] = *book_recent_at(b, i);
    return true;
}

book *book_clone(const book *b, bool recent)
{
    book *c = tw_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    *c = *b;
    c->pos = NULL, c->open = NULL, c->recent = NULL, c->fills = NULL, c->dts = NULL;
    if (!recent) {
        c->nrecent = 0;
        c->recent_since_us = INT64_MAX;
    }
    c->cap_pos = c->npos, c->cap_open = c->nopen, c->cap_recent = c->nrecent, c->recent_head = 0;
    c->cap_fills = c->nfills, c->cap_dts = c->ndts;
    if (!dup_array((void **)&c->pos, b->pos, b->npos, sizeof(*b->pos)) ||
        !dup_array((void **)&c->open, b->open, b->nopen, sizeof(*b->open)) || !recent_copy(c, b) ||
        !dup_array((void **)&c->fills, b->fills, b->nfills, sizeof(*b->fills)) ||
        !dup_array((void **)&c->dts, b->dts, b->ndts, sizeof(*b->dts))) {
        book_free(c);
        return NULL;
    }
    return c;
}

size_t book_bytes(const book *b)
{
    return sizeof(*b) + b->cap_pos * sizeof(*b->pos) + b->cap_open * sizeof(*b->open) +
           b->cap_recent * sizeof(*b->recent) + b->cap_fills * sizeof(*b->fills) +
           b->cap_dts * sizeof(*b->dts);
}

void book_set_positions(book *b, store_position *p, size_t n)
{
    free(b->pos);
    b->pos = p;
    b->npos = b->cap_pos = n;
}

void book_set_open(book *b, store_order_brief *o, size_t n)
{
    free(b->open);
    b->open = o;
    b->nopen = b->cap_open = n;
}

static void recent_of(book_recent *dst, int64_t id, int64_t created_at_us, int64_t qty,
                      store_side side, const char *symbol)
{
    memset(dst, 0, sizeof(*dst));
    dst->id = id;
    dst->created_at_us = created_at_us;
    dst->qty = qty;
    dst->side = side;
    snprintf(dst->symbol, sizeof(dst->symbol), "%s", symbol);
}

void book_set_recent(book *b, store_order_brief *o, size_t n, int64_t since_us, int64_t window_us)
{
    free(b->recent);
    b->recent = NULL;
    b->nrecent = b->cap_recent = b->recent_head = 0;
    b->recent_since_us = since_us;
    b->recent_window_us = window_us;
    if (n > BOOK_RECENT_MAX) { /* more than it holds: the start moves past the oldest read */
        n = BOOK_RECENT_MAX;
        b->recent_since_us = o[n].created_at_us + 1;
    }
    if (n && !(b->recent = malloc(n * sizeof(*b->recent)))) {
        b->recent_since_us = INT64_MAX; /* holds none; the next transaction reads them again */
        b->keep = false;
    } else {
        /* The store answers newest first; the book appends, so it holds the oldest first. */
        for (size_t i = 0; i < n; i++) {
            const store_order_brief *r = &o[n - 1 - i];
            recent_of(&b->recent[i], r->id, r->created_at_us, r->qty, r->side, r->symbol);
        }
        b->nrecent = b->cap_recent = n;
    }
    free(o);
}

/* Drop the oldest k submissions held. */
static void recent_drop(book *b, size_t k)
{
    b->recent_head = b->nrecent > k ? (b->recent_head + k) % b->cap_recent : 0;
    b->nrecent -= k;
}

/* Room for a submission created at t_us: what fell out of the window goes first (the start
 * moves up to t_us less the window), then, at the maximum, the oldest. False (the book not
 * kept) when it cannot grow. */
static bool recent_make_room(book *b, int64_t t_us)
{
    if (b->recent_window_us && t_us - b->recent_window_us > b->recent_since_us) {
        int64_t start = t_us - b->recent_window_us;
        size_t k = 0;
        while (k < b->nrecent && book_recent_at(b, k)->created_at_us < start)
            k++;
        recent_drop(b, k);
        b->recent_since_us = start;
    }
    if (b->nrecent == BOOK_RECENT_MAX) {
        int64_t after = book_recent_at(b, 0)->created_at_us + 1;
        if (after > b->recent_since_us)
            b->recent_since_us = after;
        recent_drop(b, 1);
    }
    if (b->nrecent < b->cap_recent)
        return true;
    /* Full below the maximum: a larger ring, oldest first from slot 0. */
    size_t want = b->cap_recent ? b->cap_recent * 2 : 8;
    if (want > BOOK_RECENT_MAX)
        want = BOOK_RECENT_MAX;
    book_recent *r = malloc(want * sizeof(*r));
    if (!r) {
        b->keep = false;
        return false;
    }
    for (size_t i = 0; b->cap_recent && i < b->nrecent; i++) /* none held in no ring */
        r[i] = *book_recent_at(b, i);
    free(b->recent);
    b->recent = r;
    b->recent_head = 0;
    b->cap_recent = want;
    return true;
}

void book_set_fills(book *b, store_fill *f, size_t n)
{
    free(b->fills);
    b->fills = f;
    b->nfills = b->cap_fills = n;
}

void book_set_day_trades(book *b, store_day_trade *d, size_t n)
{
    free(b->dts);
    b->dts = d;
    b->ndts = b->cap_dts = n;
}

/* Room for one more element in *arr (n used of *cap); false (and the book not kept) on OOM. */
static bool grow(book *b, void **arr, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return true;
    size_t want = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, want * elem);
    if (!p) {
        b->keep = false;
        return false;
    }
    *arr = p;
    *cap = want;
    return true;
}

bool book_status_open(const char *status)
{
    order_status st; /* the store's open list names the same four (store_ops.c) */
    return order_status_parse(status, &st) && order_status_open(st);
}

static void brief_of(store_order_brief *dst, const store_order *o)
{
    memset(dst, 0, sizeof(*dst));
    dst->id = o->id;
    snprintf(dst->symbol, sizeof(dst->symbol), "%s", o->symbol);
    dst->side = o->side;
    snprintf(dst->status, sizeof(dst->status), "%s", o->status);
    dst->qty = o->qty;
    dst->limit_price = o->limit_price;
    dst->filled_qty = o->filled_qty;
    dst->avg_fill_price = o->avg_fill_price;
    dst->created_at_us = o->created_at_us;
    dst->updated_at_us = o->updated_at_us;
}

void book_order_added(book *b, const store_order *o)
{
    b->modeled++;
    if (book_status_open(o->status)) {
        if (!grow(b, (void **)&b->open, b->nopen, &b->cap_open, sizeof(*b->open)))
            return;
        brief_of(&b->open[b->nopen++], o); /* ids only grow: still oldest first */
    }
    if (strcmp(o->status, "REJECTED") != 0 && o->created_at_us >= b->recent_since_us) {
        if (!recent_make_room(b, o->created_at_us) || o->created_at_us < b->recent_since_us)
            return; /* out of memory, or older than everything the book holds now */
        recent_of(book_recent_at(b, b->nrecent), o->id, o->created_at_us, o->qty, o->side,
                  o->symbol);
        b->nrecent++;
    }
}

void book_order_changed(book *b, const store_order *o)
{
    b->modeled++;
    for (size_t i = 0; i < b->nopen; i++) {
        if (b->open[i].id != o->id)
            continue;
        if (book_status_open(o->status)) {
            brief_of(&b->open[i], o);
        } else {
            memmove(&b->open[i], &b->open[i + 1], (b->nopen - i - 1) * sizeof(*b->open));
            b->nopen--;
        }
        break;
    }
    bool in_recent = false;
    for (size_t i = b->nrecent; i-- > 0;) { /* the newest are the ones that change */
        if (book_recent_at(b, i)->id != o->id)
            continue;
        in_recent = true;
        if (strcmp(o->status, "REJECTED") == 0) { /* what else it held does not change */
            for (size_t j = i + 1; j < b->nrecent; j++)
                *book_recent_at(b, j - 1) = *book_recent_at(b, j);
            b->nrecent--;
        }
        break;
    }
    /* A REJECTED order inside the window the broker later reports otherwise (a fill found
     * after an outcome-unknown submit was given up) is recent again: rare, the book is read
     * again rather than sorted back in. */
    if (!in_recent && strcmp(o->status, "REJECTED") != 0 && o->created_at_us >= b->recent_since_us)
        b->keep = false;
    /* An order that was not open and now is cannot happen: statuses only move forward, and a
     * closed order never opens again. A book that did not see it is dropped. */
    if (book_status_open(o->status)) {
        bool seen = false;
        for (size_t i = 0; i < b->nopen && !seen; i++)
            seen = b->open[i].id == o->id;
        if (!seen)
            b->keep = false;
    }
}

void book_fill_added(book *b, const store_fill *f)
{
    b->modeled++;
    if (f->time_us < b->day_lo_us || (b->day_hi_us && f->time_us >= b->day_hi_us))
        return; /* not the day the book holds */
    if (b->nfills && f->time_us < b->fills[b->nfills - 1].time_us) {
        b->keep = false; /* out of execution order: the next read sorts it */
        return;
    }
    if (!grow(b, (void **)&b->fills, b->nfills, &b->cap_fills, sizeof(*b->fills)))
        return;
    b->fills[b->nfills++] = *f;
}

void book_position_put(book *b, const store_position *p)
{
    b->modeled++;
    size_t i = 0;
    while (i < b->npos && strcmp(b->pos[i].symbol, p->symbol) < 0)
        i++;
    if (i < b->npos && strcmp(b->pos[i].symbol, p->symbol) == 0) {
        b->pos[i] = *p;
        return;
    }
    if (!grow(b, (void **)&b->pos, b->npos, &b->cap_pos, sizeof(*b->pos)))
        return;
    memmove(&b->pos[i + 1], &b->pos[i], (b->npos - i) * sizeof(*b->pos));
    b->pos[i] = *p;
    b->npos++;
}

void book_day_trade_added(book *b, const store_day_trade *d)
{
    b->modeled++;
    if (d->trading_day < b->dt_since_day)
        return;
    if (b->ndts && d->trading_day < b->dts[b->ndts - 1].trading_day) {
        b->keep = false;
        return;
    }
    if (!grow(b, (void **)&b->dts, b->ndts, &b->cap_dts, sizeof(*b->dts)))
        return;
    b->dts[b->ndts++] = *d;
}

void book_state_set(book *b, const store_risk_state *s)
{
    b->modeled++;
    b->state = *s;
}

const store_position *book_position(const book *b, const char *symbol)
{
    for (size_t i = 0; i < b->npos; i++)
        if (strcmp(b->pos[i].symbol, symbol) == 0)
            return &b->pos[i];
    return NULL;
}

void book_unheld_change(book *b)
{
    b->modeled++;
}
