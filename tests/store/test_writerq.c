/*
 * test_writerq.c - the SQLite writer queue: one holder, FIFO handoff, a waiter that gives up
 * leaves the queue intact, and the lock is free again once the last holder releases.
 */
#include "store_int.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#define NWAITERS 6

typedef struct {
    store_writerq *q;
    int id, timeout_ms;
    bool got;
    int *order, *norder;
    pthread_mutex_t *order_mu;
} waiter_arg;

static void *waiter(void *p)
{
    waiter_arg *a = p;
    a->got = store_writerq_acquire(a->q, a->timeout_ms);
    if (a->got) {
        pthread_mutex_lock(a->order_mu);
        a->order[(*a->norder)++] = a->id;
        pthread_mutex_unlock(a->order_mu);
        store_writerq_release(a->q);
    }
    return NULL;
}

/* Waits until the queue has seen n waits (the thread is queued, not merely started). */
static void until_waits(store_writerq *q, uint64_t n)
{
    for (;;) {
        uint64_t w, t;
        store_writerq_stats(q, &w, &t);
        if (w >= n)
            return;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
}

static void test_uncontended(void **state)
{
    (void)state;
    store_writerq *q = store_writerq_new();
    assert_non_null(q);
    assert_true(store_writerq_acquire(q, 10));
    store_writerq_release(q);
    assert_true(store_writerq_acquire(q, 10));
    store_writerq_release(q);
    uint64_t w, t;
    store_writerq_stats(q, &w, &t);
    assert_int_equal(w, 0); /* nobody ever waited */
    store_writerq_free(q);
}

static void test_fifo_handoff(void **state)
{
    (void)state;
    store_writerq *q = store_writerq_new();
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    int order[NWAITERS], norder = 0;
    waiter_arg args[NWAITERS];
    pthread_t th[NWAITERS];

    assert_true(store_writerq_acquire(q, 10));
    for (int i = 0; i < NWAITERS; i++) {
        args[i] = (waiter_arg){q, i, 10000, false, order, &norder, &mu};
        assert_int_equal(pthread_create(&th[i], NULL, waiter, &args[i]), 0);
        until_waits(q, (uint64_t)i + 1);
    }
    store_writerq_release(q);
    for (int i = 0; i < NWAITERS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(norder, NWAITERS);
    for (int i = 0; i < NWAITERS; i++) {
        assert_true(args[i].got);
        assert_int_equal(order[i], i); /* in the order they queued */
    }
    assert_true(store_writerq_acquire(q, 10)); /* free again */
    store_writerq_release(q);
    store_writerq_free(q);
}

static void test_timeout_leaves_queue_intact(void **state)
{
    (void)state;
    store_writerq *q = store_writerq_new();
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    int order[3], norder = 0;
    waiter_arg a = {q, 0, 10000, false, order, &norder, &mu};
    waiter_arg b = {q, 1, 30, false, order, &norder, &mu}; /* gives up while queued */
    waiter_arg c = {q, 2, 10000, false, order, &norder, &mu};
    pthread_t ta, tb, tc;

    assert_true(store_writerq_acquire(q, 10));
    assert_int_equal(pthread_create(&ta, NULL, waiter, &a), 0);
    until_waits(q, 1);
    assert_int_equal(pthread_create(&tb, NULL, waiter, &b), 0);
    until_waits(q, 2);
    assert_int_equal(pthread_create(&tc, NULL, waiter, &c), 0);
    until_waits(q, 3);
    assert_int_equal(pthread_join(tb, NULL), 0); /* b's 30 ms pass while the lock is held */
    assert_false(b.got);
    uint64_t w, t;
    store_writerq_stats(q, &w, &t);
    assert_int_equal(t, 1);

    store_writerq_release(q);
    assert_int_equal(pthread_join(ta, NULL), 0);
    assert_int_equal(pthread_join(tc, NULL), 0);
    assert_int_equal(norder, 2);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 2);

    /* The holder alone times out a second acquire of its own instead of deadlocking. */
    assert_true(store_writerq_acquire(q, 10));
    assert_false(store_writerq_acquire(q, 20));
    store_writerq_release(q);
    assert_true(store_writerq_acquire(q, 10));
    store_writerq_release(q);
    store_writerq_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uncontended),
        cmocka_unit_test(test_fifo_handoff),
        cmocka_unit_test(test_timeout_leaves_queue_intact),
    };
    return cmocka_run_group_tests_name("store_writerq", tests, NULL, NULL);
}
