/*
 * core/netaddr: the addresses TW_TRUSTED_FRONTS and x-forwarded-for may hold, the gRPC peer
 * forms, IPv4 equal to its IPv4-mapped IPv6 form, and everything else refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/netaddr.h"

static void test_bare_addresses_parse_and_ipv4_equals_its_mapped_form(void **state)
{
    tw_ip a, b;
    (void)state;
    assert_int_equal(tw_ip_parse("127.0.0.2", 9, &a), 0);
    assert_int_equal(tw_ip_parse("::ffff:127.0.0.2", 16, &b), 0);
    assert_memory_equal(a.b, b.b, 16);
    assert_int_equal(tw_ip_parse("[::1]", 5, &a), 0);
    assert_int_equal(tw_ip_parse("::1", 3, &b), 0);
    assert_memory_equal(a.b, b.b, 16);
    /* n bounds the read: a header value is not NUL-terminated */
    assert_int_equal(tw_ip_parse("10.0.0.1garbage", 8, &a), 0);
}

static void test_anything_but_one_bare_address_is_refused(void **state)
{
    static const char *const bad[] = {
        "",
        "localhost",
        "127.0.0.1:80",
        "127.0.0.1 ",
        " 127.0.0.1",
        "127.0.0.1,10.0.0.1",
        "10.0.0.0/8",
        "fe80::1%eth0",
        "[::1",
        "1.2.3",
        "256.1.1.1",
        "[]",
        "0000:0000:0000:0000:0000:0000:0000:0000:0000:0001",
    };
    tw_ip ip;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (tw_ip_parse(bad[i], strlen(bad[i]), &ip) == 0)
            fail_msg("accepted: '%s'", bad[i]);
    assert_int_equal(tw_ip_parse("127.0.0.1\0x", 11, &ip), -1); /* embedded NUL */
}

static void test_grpc_peer_strings_give_their_host(void **state)
{
    tw_ip a, b;
    (void)state;
    assert_int_equal(tw_ip_from_peer("ipv4:127.0.0.1:47162", &a), 0);
    assert_int_equal(tw_ip_parse("127.0.0.1", 9, &b), 0);
    assert_memory_equal(a.b, b.b, 16);
    assert_int_equal(tw_ip_from_peer("ipv6:[::1]:5555", &a), 0);
    assert_int_equal(tw_ip_parse("::1", 3, &b), 0);
    assert_memory_equal(a.b, b.b, 16);
    assert_int_equal(tw_ip_from_peer("ipv6:[::ffff:127.0.0.1]:1", &a), 0);
    assert_int_equal(tw_ip_parse("127.0.0.1", 9, &b), 0);
    assert_memory_equal(a.b, b.b, 16);
    assert_int_equal(tw_ip_from_peer("unix:/tmp/sock", &a), -1);
    assert_int_equal(tw_ip_from_peer("internal", &a), -1);
    assert_int_equal(tw_ip_from_peer("ipv4:127.0.0.1", &a), -1);
}

static void test_lists_and_membership(void **state)
{
    tw_ip l[8], ip;
    size_t n = 0;
    (void)state;
    assert_int_equal(tw_ip_list_parse("127.0.0.1, ::1 ,10.1.2.3", l, 8, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(tw_ip_from_peer("ipv4:10.1.2.3:9", &ip), 0);
    assert_true(tw_ip_in(&ip, l, n));
    assert_int_equal(tw_ip_from_peer("ipv4:127.0.0.2:9", &ip), 0);
    assert_false(tw_ip_in(&ip, l, n));
    assert_int_equal(tw_ip_list_parse("", l, 8, &n), -1);
    assert_int_equal(tw_ip_list_parse("127.0.0.1,", l, 8, &n), -1);
    assert_int_equal(tw_ip_list_parse("127.0.0.1 10.0.0.1", l, 8, &n), -1);
    assert_int_equal(tw_ip_list_parse("1.1.1.1,2.2.2.2", l, 1, &n), -1);
}

static void test_peer_format_round_trips_through_the_peer_parser(void **state)
{
    static const char *const in[] = {"127.0.0.2", "::ffff:192.0.2.7", "2001:db8::1",
                                     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"};
    static const char *const want[] = {"ipv4:127.0.0.2:0", "ipv4:192.0.2.7:0",
                                       "ipv6:[2001:db8::1]:0",
                                       "ipv6:[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:0"};
    (void)state;
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        tw_ip a, b;
        char out[64];
        assert_int_equal(tw_ip_parse(in[i], strlen(in[i]), &a), 0);
        tw_ip_peer_format(&a, out, sizeof out);
        assert_string_equal(out, want[i]);
        assert_int_equal(tw_ip_from_peer(out, &b), 0);
        assert_memory_equal(a.b, b.b, 16);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bare_addresses_parse_and_ipv4_equals_its_mapped_form),
        cmocka_unit_test(test_anything_but_one_bare_address_is_refused),
        cmocka_unit_test(test_grpc_peer_strings_give_their_host),
        cmocka_unit_test(test_lists_and_membership),
        cmocka_unit_test(test_peer_format_round_trips_through_the_peer_parser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
