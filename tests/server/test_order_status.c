/*
 * order_status: the lifecycle table, written out here move by move (not derived from the
 * code under test), the text of each status, and its agreement with orders.proto's
 * OrderStatus (every status is ORDER_STATUS_<text> there, and nothing there is missing here).
 */
#include "trading/order_status.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "tradewink/v1/orders.pb-c.h"

enum { PC, PS, AC, PF, FI, CA, EX, RE };

/* expected[from][to]: 1 = the order may move so. */
static const int expected[ORDER_STATUS_COUNT][ORDER_STATUS_COUNT] = {
    /*           PC PS AC PF FI CA EX RE */
    [PC] = {0, 1, 0, 0, 0, 1, 1, 1}, [PS] = {0, 0, 1, 1, 1, 1, 1, 1},
    [AC] = {0, 0, 0, 1, 1, 1, 1, 1}, [PF] = {0, 0, 0, 0, 1, 1, 1, 1},
    [FI] = {0, 0, 0, 0, 0, 0, 0, 0}, [CA] = {0, 0, 0, 0, 0, 0, 0, 0},
    [EX] = {0, 0, 0, 0, 0, 0, 0, 0}, [RE] = {0, 0, 0, 0, 0, 0, 0, 0},
};

static void every_move_is_the_tables(void **state)
{
    (void)state;
    for (int f = 0; f < ORDER_STATUS_COUNT; f++)
        for (int t = 0; t < ORDER_STATUS_COUNT; t++)
            if (order_status_may_move((order_status)f, (order_status)t) != (expected[f][t] == 1))
                fail_msg("%s -> %s: %s", order_status_name((order_status)f),
                         order_status_name((order_status)t),
                         expected[f][t] ? "must be allowed" : "must be refused");
    /* Out of range never moves. */
    assert_false(order_status_may_move(ORDER_STATUS_COUNT, ORDER_FILLED));
    assert_false(order_status_may_move(ORDER_ACCEPTED, ORDER_STATUS_COUNT));
    assert_false(order_status_may_move((order_status)-1, ORDER_FILLED));
}

static void open_is_what_can_still_move(void **state)
{
    (void)state;
    for (int s = 0; s < ORDER_STATUS_COUNT; s++) {
        bool any = false;
        for (int t = 0; t < ORDER_STATUS_COUNT; t++)
            any = any || expected[s][t];
        assert_int_equal(order_status_open((order_status)s), any);
    }
    assert_false(order_status_open(ORDER_STATUS_COUNT));
}

static void text_round_trips_and_anything_else_is_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "accepted", "FILLED ", " FILLED", "FILL", "UNKNOWN", "ORDER_STATUS_FILLED", "PENDING"};
    for (int s = 0; s < ORDER_STATUS_COUNT; s++) {
        order_status got = ORDER_STATUS_COUNT;
        assert_true(order_status_parse(order_status_name((order_status)s), &got));
        assert_int_equal(got, s);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        order_status got = ORDER_ACCEPTED;
        if (order_status_parse(bad[i], &got))
            fail_msg("\"%s\" was taken for %s", bad[i], order_status_name(got));
    }
    order_status got;
    assert_false(order_status_parse(NULL, &got));
    assert_string_equal(order_status_name(ORDER_STATUS_COUNT), "");
}

static void the_names_are_the_protos_order_statuses(void **state)
{
    (void)state;
    const ProtobufCEnumDescriptor *d = &tradewink__v1__order_status__descriptor;
    char name[64];
    for (int s = 0; s < ORDER_STATUS_COUNT; s++) {
        snprintf(name, sizeof name, "ORDER_STATUS_%s", order_status_name((order_status)s));
        if (!protobuf_c_enum_descriptor_get_value_by_name(d, name))
            fail_msg("%s is not in orders.proto", name);
    }
    for (unsigned i = 0; i < d->n_values; i++) {
        const char *n = d->values[i].name;
        order_status got;
        if (strcmp(n, "ORDER_STATUS_UNSPECIFIED") != 0 &&
            !order_status_parse(n + strlen("ORDER_STATUS_"), &got))
            fail_msg("orders.proto's %s has no status here", n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_move_is_the_tables),
        cmocka_unit_test(open_is_what_can_still_move),
        cmocka_unit_test(text_round_trips_and_anything_else_is_refused),
        cmocka_unit_test(the_names_are_the_protos_order_statuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
