/*
 * tw_ip: IP addresses as 16 bytes (IPv4 as its IPv4-mapped IPv6 form, so "127.0.0.1", the
 * "::ffff:127.0.0.1" a dual-stack socket reports and gRPC's "ipv4:127.0.0.1:5555" compare
 * equal), for the trusted-front check: which peer may name the client in x-forwarded-for
 * (TW_TRUSTED_FRONTS). Pure; any thread; nothing allocated.
 */
#ifndef TW_CORE_NETADDR_H
#define TW_CORE_NETADDR_H

#include <stddef.h>
#include <stdint.h>

#define TW_MAX_TRUSTED_FRONTS 8

typedef struct {
    uint8_t b[16];
} tw_ip;

/* A bare IPv4 or IPv6 address of n bytes (no NUL needed; IPv6 may be in brackets; no port,
 * no spaces, no zone). 0 and *out filled, or -1. */
int tw_ip_parse(const char *s, size_t n, tw_ip *out);
/* The host of a gRPC peer string ("ipv4:1.2.3.4:5555", "ipv6:[::1]:5555"). 0 or -1. */
int tw_ip_from_peer(const char *peer, tw_ip *out);
/* A comma-separated list of at most cap addresses (spaces around commas allowed, at least one
 * address). 0 and *n set, or -1 (empty item, bad address, too many). */
int tw_ip_list_parse(const char *list, tw_ip *out, size_t cap, size_t *n);
/* The gRPC peer form with port 0 (the port is not known): "ipv4:1.2.3.4:0",
 * "ipv6:[2001:db8::1]:0". cap >= 64 always fits. */
void tw_ip_peer_format(const tw_ip *ip, char *out, size_t cap);
/* 1 when ip is one of the n addresses in list. */
int tw_ip_in(const tw_ip *ip, const tw_ip *list, size_t n);

#endif
