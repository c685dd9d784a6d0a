/* b64.c - strict base64 / base64url (RFC 4648) codec.
 *
 * Written here rather than using EVP_EncodeBlock/EVP_DecodeBlock because those know only the
 * standard alphabet, silently accept whitespace and do not report padding length. The decoder
 * is strict: no whitespace, no characters outside the chosen alphabet, padding only at the end
 * and only where it belongs, and unused trailing bits must be zero (canonical form), so one
 * token has exactly one spelling. Table lookups, no secret-dependent branches beyond validity.
 */
#include "vault/vault_int.h"

#include <string.h>

static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t vault_b64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

void vault_b64_encode(const unsigned char *in, size_t n, int url, char *out)
{
    const char *a = url ? url_alpha : std_alpha;
    size_t i = 0, o = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = a[v >> 6 & 63];
        out[o++] = a[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        out[o++] = a[v >> 6 & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
}

/* Value of c in the chosen alphabet(s), or -1. */
static int b64_val(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (url != 0 && c == '-')
        return 62;
    if (url != 0 && c == '_')
        return 63;
    if (url != 1 && c == '+')
        return 62;
    if (url != 1 && c == '/')
        return 63;
    return -1;
}

int vault_b64_decode(const char *in, size_t len, int url, int require_pad, unsigned char *out,
                     size_t *out_len)
{
    size_t pad = 0, body, i, o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (require_pad && len % 4 != 0)
        return -1;
    while (pad < len && pad < 2 && in[len - 1 - pad] == '=')
        pad++;
    if (pad > 0 && len % 4 != 0)
        return -1; /* padding present but not to a full quantum */
    body = len - pad;
    if (body % 4 == 1)
        return -1; /* one leftover character can never encode a byte */
    for (i = 0; i < body; i++) {
        int v = b64_val((unsigned char)in[i], url);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits >= 6 || (acc & ((1u << bits) - 1)) != 0)
        return -1; /* non-canonical: leftover bits must be zero */
    if (pad > 0 && (body % 4) + pad != 4)
        return -1;
    *out_len = o;
    return 0;
}
