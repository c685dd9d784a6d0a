/* vt_util.c - helpers shared by the vault tests (vector loading, hex, RFC 3339). */
#include "vt_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

json_t *vt_load_json(const char *rel)
{
    char path[1024];
    json_error_t e;
    json_t *j;

    snprintf(path, sizeof(path), "%s/%s", VAULT_VECTORS_DIR, rel);
    j = json_load_file(path, 0, &e);
    if (j == NULL)
        fail_msg("cannot load %s: %s (line %d)", path, e.text, e.line);
    return j;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int vt_hex(const char *hex, unsigned char **out, size_t *len)
{
    size_t n = strlen(hex), i;
    unsigned char *b;

    if (n % 2 != 0)
        return -1;
    b = malloc(n / 2 + 1);
    if (b == NULL)
        return -1;
    for (i = 0; i < n / 2; i++) {
        int hi = hexv(hex[2 * i]), lo = hexv(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return -1;
        }
        b[i] = (unsigned char)(hi << 4 | lo);
    }
    *out = b;
    *len = n / 2;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

uint64_t vt_rfc3339(const char *s)
{
    int y, mo, d, h, mi, se, oh = 0, om = 0;
    char sign = 'Z';
    int64_t t;

    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c%2d:%2d", &y, &mo, &d, &h, &mi, &se, &sign, &oh, &om) <
        7)
        fail_msg("bad time %s", s);
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    if (sign == '+')
        t -= oh * 3600 + om * 60;
    else if (sign == '-')
        t += oh * 3600 + om * 60;
    return (uint64_t)t;
}
