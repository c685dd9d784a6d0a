/*
 * IP address parsing for the trusted-front check (netaddr.h). inet_pton does the syntax; this
 * file only frames it: bounded copies (header values are not NUL-terminated), brackets, the
 * gRPC peer prefix, and the IPv4-mapped form so one comparison covers both families.
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int tw_ip_parse(const char *s, size_t n, tw_ip *out)
{
    char buf[INET6_ADDRSTRLEN + 2];
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof buf || memchr(s, '\0', n))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    struct in_addr a4;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memcpy(out->b, v4_mapped, sizeof v4_mapped);
        memcpy(out->b + 12, &a4, 4);
        return 0;
    }
    return inet_pton(AF_INET6, buf, out->b) == 1 ? 0 : -1;
}

int tw_ip_from_peer(const char *peer, tw_ip *out)
{
    const char *h;
    if (strncmp(peer, "ipv4:", 5) == 0 || strncmp(peer, "ipv6:", 5) == 0)
        h = peer + 5;
    else
        return -1;
    const char *colon = strrchr(h, ':');
    if (!colon)
        return -1;
    return tw_ip_parse(h, (size_t)(colon - h), out);
}

int tw_ip_list_parse(const char *list, tw_ip *out, size_t cap, size_t *n)
{
    size_t k = 0;
    const char *p = list;
    for (;;) {
        while (*p == ' ')
            p++;
        const char *end = p + strcspn(p, ", ");
        if (end == p || k == cap || tw_ip_parse(p, (size_t)(end - p), &out[k]) != 0)
            return -1;
        k++;
        p = end;
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        if (*p != ',')
            return -1;
        p++;
    }
    *n = k;
    return 0;
}

void tw_ip_peer_format(const tw_ip *ip, char *out, size_t cap)
{
    char buf[INET6_ADDRSTRLEN];
    if (memcmp(ip->b, v4_mapped, sizeof v4_mapped) == 0) {
        inet_ntop(AF_INET, ip->b + 12, buf, sizeof buf);
        snprintf(out, cap, "ipv4:%s:0", buf);
    } else {
        inet_ntop(AF_INET6, ip->b, buf, sizeof buf);
        snprintf(out, cap, "ipv6:[%s]:0", buf);
    }
}

int tw_ip_in(const tw_ip *ip, const tw_ip *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(ip->b, list[i].b, sizeof ip->b) == 0)
            return 1;
    return 0;
}
