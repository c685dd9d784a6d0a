/* redact.c - log redaction rules: sensitive field names and secret-shaped values.
 *
 * Two entry points. vault_redact_text scans free text once, left to right, trying at each
 * position a fixed list of shape matchers (PEM block, JWT, Fernet token, whsec_ secret,
 * bearer/basic credential, password in a URL, a payment card number that passes Luhn,
 * name=value / name: value with a sensitive name, one-time codes included)
 * and copying everything else unchanged. vault_redact_json_line parses one JSON value
 * (bounded depth), replaces the value of every sensitive key (any JSON type) with
 * "[REDACTED]", and runs every other string through vault_redact_text (decoded, then
 * re-escaped; untouched strings are copied verbatim). Anything that does not parse as JSON is
 * treated as free text, so a malformed line is still redacted.
 *
 * Names are normalised (ASCII lowercase, '-', '_', '.', ' ' dropped) and matched as whole
 * names or by a short list of suffixes ("client_secret", "db-password"), never by substring,
 * so "author", "token_count" and "tokens_used" stay visible.
 * Intermediate buffers may hold secrets from the input and are wiped before they are freed.
 */
#include "vault/vault_int.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 64
#define MAX_DEPTH 64

/* ---- growable output buffer ------------------------------------------------------------ */
struct sb {
    char *p;
    size_t n, cap;
    int oom;
};

static void sb_free(struct sb *b)
{
    if (b->p != NULL) {
        OPENSSL_cleanse(b->p, b->cap);
        free(b->p);
    }
    b->p = NULL;
    b->n = b->cap = 0;
}

static void sb_put(struct sb *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *np;
        while (cap < b->n + n + 1)
            cap *= 2;
        np = vault_malloc(cap);
        if (np == NULL) {
            b->oom = 1;
            return;
        }
        size_t used = b->n;
        if (used > 0)
            memcpy(np, b->p, used);
        sb_free(b);
        b->p = np;
        b->cap = cap;
        b->n = used;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_putc(struct sb *b, char c)
{
    sb_put(b, &c, 1);
}

static void sb_puts(struct sb *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

/* ---- names ----------------------------------------------------------------------------- */
/* The last nine are one-time codes. */
static const char *const exact_names[] = {
    "secret",      "token",         "password",
    "passwd",      "pwd",           "passphrase",
    "apikey",      "apisecret",     "apcaapisecretkey",
    "xapikey",     "authorization", "proxyauthorization",
    "cookie",      "cookies",       "setcookie",
    "privatekey",  "privkey",       "masterkey",
    "masterkeys",  "accesstoken",   "refreshtoken",
    "idtoken",     "clientsecret",  "credential",
    "credentials", "jwt",           "bearer",
    "sessionid",   "sessiontoken",  "csrftoken",
    "xauthtoken",  "secretkey",     "webhooksecret",
    "signingkey",  "encryptionkey", "apcaapikeyid",
    "otp",         "totp",          "hotp",
    "2fa",         "twofactor",     "twofactorcode",
    "mfacode",     "otpcode",       "2facode",
};

static const char *const suffix_names[] = {
    "secret",      "password",     "passwd",     "apikey",        "secretkey",     "privatekey",
    "accesstoken", "refreshtoken", "authtoken",  "idtoken",       "sessiontoken",  "bearertoken",
    "masterkey",   "masterkeys",   "signingkey", "encryptionkey", "authorization", "cookie",
    "credentials", "otp",          "totp",       "2fa",           "otpcode",       "mfacode",
};

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int vault_redact_is_sensitive_name(const char *name, size_t len)
{
    char norm[MAX_NAME + 1];
    size_t i, n = 0, k;

    if (name == NULL)
        return 0;
    for (i = 0; i < len; i++) {
        char c = name[i];
        if (c == '-' || c == '_' || c == '.' || c == ' ')
            continue;
        if (n == MAX_NAME)
            return 0;
        norm[n++] = lower(c);
    }
    norm[n] = '\0';
    if (n == 0)
        return 0;
    for (k = 0; k < sizeof(exact_names) / sizeof(exact_names[0]); k++)
        if (strcmp(norm, exact_names[k]) == 0)
            return 1;
    for (k = 0; k < sizeof(suffix_names) / sizeof(suffix_names[0]); k++) {
        size_t sl = strlen(suffix_names[k]);
        if (n > sl && memcmp(norm + n - sl, suffix_names[k], sl) == 0)
            return 1;
    }
    return 0;
}

/* ---- value shapes ------------------------------------------------------------------------ */
static int is_alnum(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_b64url(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '_';
}

/* Token characters of RFC 6750 b64token, used for bearer/basic credentials. */
static int is_tokchar(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' ||
           c == '=';
}

static int starts(const char *s, size_t n, size_t i, const char *lit)
{
    size_t l = strlen(lit);
    return n - i >= l && memcmp(s + i, lit, l) == 0;
}

static int starts_ci(const char *s, size_t n, size_t i, const char *lit)
{
    size_t l = strlen(lit), k;
    if (n - i < l)
        return 0;
    for (k = 0; k < l; k++)
        if (lower(s[i + k]) != lit[k])
            return 0;
    return 1;
}

static size_t find(const char *s, size_t n, size_t from, const char *lit)
{
    size_t l = strlen(lit), i;
    for (i = from; i + l <= n; i++)
        if (memcmp(s + i, lit, l) == 0)
            return i;
    return n;
}

/* Each matcher returns the number of input bytes consumed (0 = no match) and writes the
 * replacement to b. */
static size_t m_pem(const char *s, size_t n, size_t i, struct sb *b)
{
    size_t e;
    if (!starts(s, n, i, "-----BEGIN "))
        return 0;
    e = find(s, n, i + 11, "-----END ");
    if (e < n) {
        e = find(s, n, e + 9, "-----");
        e = e < n ? e + 5 : n;
    }
    sb_puts(b, "[REDACTED:pem]");
    return e - i;
}

static size_t b64url_run(const char *s, size_t n, size_t i)
{
    size_t j = i;
    while (j < n && is_b64url((unsigned char)s[j]))
        j++;
    return j - i;
}

/* header.payload.signature (signature may be empty: alg "none"), or the 5 parts of a JWE. */
static size_t m_jwt(const char *s, size_t n, size_t i, struct sb *b)
{
    size_t j, dots = 0, second = 0, r = 1;
    if (!starts(s, n, i, "eyJ"))
        return 0;
    j = i + b64url_run(s, n, i);
    while (j < n && s[j] == '.' && dots < 4) {
        r = b64url_run(s, n, j + 1);
        j += 1 + r;
        dots++;
        if (dots == 1)
            second = r;
    }
    if (dots > 2 && r == 0)
        j--; /* a trailing sentence dot, not a segment separator */
    if (dots < 2 || second == 0)
        return 0;
    sb_puts(b, "[REDACTED:jwt]");
    return j - i;
}

static size_t m_fernet(const char *s, size_t n, size_t i, struct sb *b)
{
    size_t j;
    if (!starts(s, n, i, "gAAAAA"))
        return 0;
    j = i + b64url_run(s, n, i);
    if (j - i < 60)
        return 0;
    while (j < n && s[j] == '=' && j - i < VAULT_FERNET_MAX_TOKEN)
        j++;
    sb_puts(b, "[REDACTED:fernet]");
    return j - i;
}

/* A payment card number in free text: 13-19 digits, optionally in groups split by one space or
 * '-', starting 2-6 (Visa, Mastercard, Amex, Discover, ...; so microsecond timestamps, which
 * start with 1, are not taken), passing the Luhn check, and not part of a longer number. */
static size_t m_card(const char *s, size_t n, size_t i, struct sb *b)
{
    if (i >= n || s[i] < '2' || s[i] > '6')
        return 0;
    int digits[19];
    size_t nd = 0, j = i, end = i;
    while (j < n) {
        if (s[j] >= '0' && s[j] <= '9') {
            if (nd == 19)
                return 0; /* longer than any card number */
            digits[nd++] = s[j] - '0';
            end = ++j;
        } else if ((s[j] == ' ' || s[j] == '-') && j + 1 < n && s[j + 1] >= '0' &&
                   s[j + 1] <= '9' && j > i) {
            j++;
        } else {
            break;
        }
    }
    if (nd < 13 || (end < n && is_alnum((unsigned char)s[end])) ||
        (end + 1 < n && s[end] == '.' && s[end + 1] >= '0' && s[end + 1] <= '9'))
        return 0; /* part of a word or of a decimal */
    int sum = 0;
    for (size_t k = 0; k < nd; k++) {
        int d = digits[nd - 1 - k];
        if (k % 2 == 1 && (d *= 2) > 9)
            d -= 9;
        sum += d;
    }
    if (sum % 10 != 0)
        return 0;
    sb_puts(b, "[REDACTED:card]");
    return end - i;
}

static size_t m_prefixed(const char *s, size_t n, size_t i, struct sb *b)
{
    static const char *const prefixes[] = {"whsec_", "sk_live_", "sk_test_", "rk_live_"};
    size_t k, j;
    for (k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++) {
        if (!starts(s, n, i, prefixes[k]))
            continue;
        j = i + strlen(prefixes[k]);
        while (j < n &&
               (is_b64url((unsigned char)s[j]) || s[j] == '+' || s[j] == '/' || s[j] == '='))
            j++;
        if (j - i - strlen(prefixes[k]) < 8)
            return 0;
        sb_put(b, prefixes[k], strlen(prefixes[k]));
        sb_puts(b, VAULT_REDACTED);
        return j - i;
    }
    return 0;
}

/* "Bearer <token>" / "Basic <b64>": keep the scheme, drop the credential. */
static size_t m_scheme(const char *s, size_t n, size_t i, struct sb *b)
{
    static const char *const schemes[] = {"bearer", "basic", "digest"};
    size_t k, j, l, t;
    for (k = 0; k < sizeof(schemes) / sizeof(schemes[0]); k++) {
        if (!starts_ci(s, n, i, schemes[k]))
            continue;
        l = strlen(schemes[k]);
        j = i + l;
        if (j >= n || (s[j] != ' ' && s[j] != '\t'))
            return 0;
        while (j < n && (s[j] == ' ' || s[j] == '\t'))
            j++;
        t = j;
        while (j < n && is_tokchar((unsigned char)s[j]))
            j++;
        if (j - t < 8) /* real credentials are longer; spares "the bearer of bad news" */
            return 0;
        sb_put(b, s + i, t - i);
        sb_puts(b, VAULT_REDACTED);
        return j - i;
    }
    return 0;
}

/* "://user:pass@" -> "://user:[REDACTED]@". */
static size_t m_url_cred(const char *s, size_t n, size_t i, struct sb *b)
{
    size_t j, colon = 0;
    if (!starts(s, n, i, "://"))
        return 0;
    for (j = i + 3; j < n; j++) {
        char c = s[j];
        if (c == '@')
            break;
        if (c == '/' || c == '?' || c == '#' || c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
            c == '"' || c == '\'' || c == '<' || c == '>')
            return 0;
        if (c == ':' && colon == 0)
            colon = j;
    }
    if (j >= n || colon == 0)
        return 0;
    sb_put(b, s + i, colon + 1 - i);
    sb_puts(b, VAULT_REDACTED);
    sb_putc(b, '@');
    return j + 1 - i;
}

static int is_name_char(unsigned char c)
{
    return is_alnum(c) || c == '_' || c == '-' || c == '.';
}

/* name=value, name: value, "name": "value", 'name'='value' with a sensitive name. */
static size_t m_name_value(const char *s, size_t n, size_t i, struct sb *b)
{
    size_t j = i, ns, ne, vs, ve;
    char q = 0, vq = 0;

    if (s[j] == '"' || s[j] == '\'')
        q = s[j++];
    ns = j;
    while (j < n && is_name_char((unsigned char)s[j]) && j - ns <= MAX_NAME)
        j++;
    ne = j;
    if (ne == ns || !vault_redact_is_sensitive_name(s + ns, ne - ns))
        return 0;
    if (q != 0) {
        if (j >= n || s[j] != q)
            return 0;
        j++;
    }
    while (j < n && (s[j] == ' ' || s[j] == '\t'))
        j++;
    if (j >= n || (s[j] != '=' && s[j] != ':'))
        return 0;
    j++;
    while (j < n && (s[j] == ' ' || s[j] == '\t'))
        j++;
    if (j < n && (s[j] == '"' || s[j] == '\''))
        vq = s[j++];
    vs = j;
    if (vq != 0) {
        while (j < n && s[j] != vq) {
            if (s[j] == '\\' && j + 1 < n)
                j++;
            j++;
        }
        ve = j;
    } else {
        /* An auth scheme word is part of the value: "Authorization: Bearer abc". */
        if (starts_ci(s, n, j, "bearer ") || starts_ci(s, n, j, "basic ") ||
            starts_ci(s, n, j, "digest ") || starts_ci(s, n, j, "token ")) {
            while (j < n && s[j] != ' ')
                j++;
            while (j < n && s[j] == ' ')
                j++;
        }
        while (j < n && s[j] != ' ' && s[j] != '\t' && s[j] != '\r' && s[j] != '\n' &&
               s[j] != ',' && s[j] != ';' && s[j] != '&' && s[j] != '"' && s[j] != '\'' &&
               s[j] != ')' && s[j] != ']' && s[j] != '}')
            j++;
        ve = j;
    }
    if (ve == vs)
        return 0;
    sb_put(b, s + i, vs - i);
    sb_puts(b, VAULT_REDACTED);
    return ve - i;
}

static void redact_into(const char *s, size_t n, struct sb *b)
{
    size_t i = 0, used;

    while (i < n && !b->oom) {
        unsigned char prev = i > 0 ? (unsigned char)s[i - 1] : ' ';
        int word = !is_b64url(prev);
        used = m_pem(s, n, i, b);
        if (used == 0 && word)
            used = m_jwt(s, n, i, b);
        if (used == 0 && word)
            used = m_fernet(s, n, i, b);
        if (used == 0 && word)
            used = m_prefixed(s, n, i, b);
        if (used == 0 && !is_alnum(prev) && prev != '.' && prev != '-')
            used = m_card(s, n, i, b);
        if (used == 0 && !is_alnum(prev))
            used = m_scheme(s, n, i, b);
        if (used == 0)
            used = m_url_cred(s, n, i, b);
        if (used == 0 && !is_name_char(prev) && prev != '"' && prev != '\'')
            used = m_name_value(s, n, i, b);
        if (used == 0) {
            sb_putc(b, s[i]);
            used = 1;
        }
        i += used;
    }
}

/*
 * Fast pre-check: can anything in s[0..n) be redacted at all? Every detector below needs one
 * of these substrings: a value shape (JWT "eyJ", Fernet "gAAAAA", PEM "-----", a scheme word,
 * "://", a known secret prefix) in the lowercased text, or a sensitive-name stem in the
 * lowercased text with '-', '_', '.' and spaces removed (the same normalisation the name
 * check uses). A line with any escape sequence takes the full path, since decoding could
 * form a needle. False positives only cost time; the redaction table tests guard against
 * false negatives.
 */
/* Any of needles[] (lowercase, at most 32) in hay[0..n)? first[c] is the bitmask of the needles
 * starting with byte c, so most positions cost one table load. */
static int contains_any(const char *hay, size_t n, const char *const *needles, size_t count,
                        const uint32_t first[256])
{
    for (size_t i = 0; i < n; i++) {
        uint32_t m = first[(unsigned char)hay[i]];
        for (size_t k = 0; m != 0; k++, m >>= 1) {
            if (!(m & 1u))
                continue;
            size_t len = strlen(needles[k]);
            if (len <= n - i && memcmp(hay + i, needles[k], len) == 0)
                return 1;
        }
    }
    (void)count;
    return 0;
}

static void first_bytes(const char *const *needles, size_t count, uint32_t first[256])
{
    for (size_t k = 0; k < count; k++)
        first[(unsigned char)needles[k][0]] |= 1u << k;
}

static const char *const shapes[] = {"eyj",      "gaaaaa",   "-----",    "://",
                                     "bearer",   "basic",    "digest",   "whsec_",
                                     "sk_live_", "sk_test_", "rk_live_", "\\"};
static const char *const stems[] = {"secret", "token", "pass",   "pwd",     "key",    "auth",
                                    "cookie", "cred",  "jwt",    "session", "bearer", "csrf",
                                    "otp",    "2fa",   "factor", "mfa"};
static uint32_t shape_first[256], stem_first[256];
static pthread_once_t first_once = PTHREAD_ONCE_INIT;

static void init_first(void)
{
    first_bytes(shapes, sizeof(shapes) / sizeof(shapes[0]), shape_first);
    first_bytes(stems, sizeof(stems) / sizeof(stems[0]), stem_first);
}

static int maybe_sensitive(const char *s, size_t n)
{
    char low[2048], norm[2048];
    size_t nn = 0;
    if (n > sizeof(low))
        return 1;
    pthread_once(&first_once, init_first);
    size_t run = 0; /* digits in a row, single spaces and '-' between them allowed */
    for (size_t i = 0; i < n; i++) {
        char c = lower(s[i]);
        low[i] = c;
        if (c != '-' && c != '_' && c != '.' && c != ' ')
            norm[nn++] = c;
        if (c >= '0' && c <= '9')
            run++;
        else if (!((c == ' ' || c == '-') && i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9'))
            run = 0;
        if (run >= 13)
            return 1; /* a card number may be here */
    }
    return contains_any(low, n, shapes, sizeof(shapes) / sizeof(shapes[0]), shape_first) ||
           contains_any(norm, nn, stems, sizeof(stems) / sizeof(stems[0]), stem_first);
}

static vault_rc copy_out(const char *in, size_t len, char **out)
{
    char *p = malloc(len + 1);
    if (p == NULL)
        return VAULT_ERR_NOMEM;
    memcpy(p, in, len);
    p[len] = '\0';
    *out = p;
    return VAULT_OK;
}

vault_rc vault_redact_text(const char *in, size_t len, char **out)
{
    struct sb b = {0};

    if (in == NULL || out == NULL)
        return VAULT_ERR_INVALID_ARG;
    if (!maybe_sensitive(in, len))
        return copy_out(in, len, out);
    sb_put(&b, "", 0);
    redact_into(in, len, &b);
    if (b.oom) {
        sb_free(&b);
        return VAULT_ERR_NOMEM;
    }
    *out = b.p;
    return VAULT_OK;
}

/* ---- JSON lines ------------------------------------------------------------------------- */
struct jp {
    const char *s;
    size_t n, i;
    struct sb *out;
    int err;
};

static void j_ws(struct jp *p)
{
    size_t st = p->i;
    while (p->i < p->n &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
    sb_put(p->out, p->s + st, p->i - st);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int hex4(const char *s, unsigned *v)
{
    int k, h;
    *v = 0;
    for (k = 0; k < 4; k++) {
        h = hexval(s[k]);
        if (h < 0)
            return -1;
        *v = *v << 4 | (unsigned)h;
    }
    return 0;
}

static void put_utf8(struct sb *b, unsigned cp)
{
    char u[4];
    if (cp < 0x80) {
        sb_putc(b, (char)cp);
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        sb_put(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        sb_put(b, u, 3);
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        sb_put(b, u, 4);
    }
}

/* Parses the string at p->i (on the opening quote); decodes it into dec and leaves p->i after
 * the closing quote. Raw text is s[start .. p->i). */
static void j_string(struct jp *p, struct sb *dec)
{
    const char *s = p->s;
    p->i++;
    while (p->i < p->n && s[p->i] != '"') {
        unsigned char c = (unsigned char)s[p->i];
        if (c < 0x20) {
            p->err = 1;
            return;
        }
        if (c != '\\') {
            sb_putc(dec, (char)c);
            p->i++;
            continue;
        }
        if (p->i + 1 >= p->n) {
            p->err = 1;
            return;
        }
        c = (unsigned char)s[p->i + 1];
        p->i += 2;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            sb_putc(dec, (char)c);
            break;
        case 'b':
            sb_putc(dec, '\b');
            break;
        case 'f':
            sb_putc(dec, '\f');
            break;
        case 'n':
            sb_putc(dec, '\n');
            break;
        case 'r':
            sb_putc(dec, '\r');
            break;
        case 't':
            sb_putc(dec, '\t');
            break;
        case 'u': {
            unsigned cp, lo;
            if (p->n - p->i < 4 || hex4(s + p->i, &cp) != 0) {
                p->err = 1;
                return;
            }
            p->i += 4;
            if (cp >= 0xd800 && cp <= 0xdbff && p->n - p->i >= 6 && s[p->i] == '\\' &&
                s[p->i + 1] == 'u' && hex4(s + p->i + 2, &lo) == 0 && lo >= 0xdc00 &&
                lo <= 0xdfff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p->i += 6;
            }
            put_utf8(dec, cp);
            break;
        }
        default:
            p->err = 1;
            return;
        }
    }
    if (p->i >= p->n) {
        p->err = 1;
        return;
    }
    p->i++;
}

static void j_escape(struct sb *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;
    sb_putc(b, '"');
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            sb_putc(b, '\\');
            sb_putc(b, (char)c);
        } else if (c == '\n') {
            sb_puts(b, "\\n");
        } else if (c == '\r') {
            sb_puts(b, "\\r");
        } else if (c == '\t') {
            sb_puts(b, "\\t");
        } else if (c < 0x20) {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            sb_put(b, u, 6);
        } else {
            sb_putc(b, (char)c);
        }
    }
    sb_putc(b, '"');
}

static void j_value(struct jp *p, int depth, int redact_all);

/* A string value: redact its decoded content; copy verbatim when nothing changed. */
static void j_string_value(struct jp *p)
{
    struct sb dec = {0}, red = {0};
    size_t start = p->i;

    sb_put(&dec, "", 0);
    j_string(p, &dec);
    if (p->err || dec.oom)
        goto out;
    sb_put(&red, "", 0);
    redact_into(dec.p, dec.n, &red);
    if (red.oom) {
        p->out->oom = 1;
        goto out;
    }
    if (red.n == dec.n && memcmp(red.p, dec.p, dec.n) == 0)
        sb_put(p->out, p->s + start, p->i - start);
    else
        j_escape(p->out, red.p, red.n);
out:
    if (dec.oom)
        p->out->oom = 1;
    sb_free(&dec);
    sb_free(&red);
}

static void j_object(struct jp *p, int depth)
{
    sb_putc(p->out, '{');
    p->i++;
    j_ws(p);
    if (p->i < p->n && p->s[p->i] == '}') {
        sb_putc(p->out, '}');
        p->i++;
        return;
    }
    for (;;) {
        struct sb key = {0};
        size_t ks = p->i;
        int sensitive;

        if (p->i >= p->n || p->s[p->i] != '"') {
            p->err = 1;
            return;
        }
        sb_put(&key, "", 0);
        j_string(p, &key);
        sensitive = !p->err && !key.oom && vault_redact_is_sensitive_name(key.p, key.n);
        if (key.oom)
            p->out->oom = 1;
        sb_free(&key);
        if (p->err)
            return;
        /* A key is text too: a token pasted into a key name is redacted like a value. */
        p->i = ks;
        j_string_value(p);
        if (p->err)
            return;
        j_ws(p);
        if (p->i >= p->n || p->s[p->i] != ':') {
            p->err = 1;
            return;
        }
        sb_putc(p->out, ':');
        p->i++;
        j_ws(p);
        j_value(p, depth + 1, sensitive);
        if (p->err)
            return;
        j_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            sb_putc(p->out, ',');
            p->i++;
            j_ws(p);
            continue;
        }
        if (p->i < p->n && p->s[p->i] == '}') {
            sb_putc(p->out, '}');
            p->i++;
            return;
        }
        p->err = 1;
        return;
    }
}

static void j_array(struct jp *p, int depth)
{
    sb_putc(p->out, '[');
    p->i++;
    j_ws(p);
    if (p->i < p->n && p->s[p->i] == ']') {
        sb_putc(p->out, ']');
        p->i++;
        return;
    }
    for (;;) {
        j_value(p, depth + 1, 0);
        if (p->err)
            return;
        j_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            sb_putc(p->out, ',');
            p->i++;
            j_ws(p);
            continue;
        }
        if (p->i < p->n && p->s[p->i] == ']') {
            sb_putc(p->out, ']');
            p->i++;
            return;
        }
        p->err = 1;
        return;
    }
}

static int is_literal_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '+' || c == '.' ||
           c == 'E';
}

/* Parses one value. redact_all: the value belongs to a sensitive key and is replaced whole;
 * it is still parsed (into a scratch buffer) so the rest of the line stays in sync. */
static void j_value(struct jp *p, int depth, int redact_all)
{
    struct sb scratch = {0}, *real = p->out;
    size_t st;

    if (depth > MAX_DEPTH || p->i >= p->n) {
        p->err = 1;
        return;
    }
    /* p->out points at scratch only until the end of this function (restored below). */
    if (redact_all)
        p->out = &scratch; /* cppcheck-suppress autoVariables */
    switch (p->s[p->i]) {
    case '{':
        j_object(p, depth);
        break;
    case '[':
        j_array(p, depth);
        break;
    case '"':
        j_string_value(p);
        break;
    default:
        st = p->i;
        while (p->i < p->n && is_literal_char(p->s[p->i]))
            p->i++;
        if (p->i == st)
            p->err = 1;
        sb_put(p->out, p->s + st, p->i - st);
        break;
    }
    if (redact_all) {
        p->out = real;
        if (scratch.oom)
            real->oom = 1;
        sb_free(&scratch);
        sb_puts(real, "\"" VAULT_REDACTED "\"");
    }
}

vault_rc vault_redact_json_line(const char *in, size_t len, char **out)
{
    struct sb b = {0};
    struct jp p;

    if (in == NULL || out == NULL)
        return VAULT_ERR_INVALID_ARG;
    if (!maybe_sensitive(in, len))
        return copy_out(in, len, out);
    sb_put(&b, "", 0);
    p.s = in;
    p.n = len;
    p.i = 0;
    p.out = &b;
    p.err = 0;
    j_ws(&p);
    j_value(&p, 0, 0);
    if (!p.err)
        j_ws(&p);
    if (p.err || p.i != len) {
        if (b.oom) {
            sb_free(&b);
            return VAULT_ERR_NOMEM;
        }
        sb_free(&b);
        return vault_redact_text(in, len, out);
    }
    if (b.oom) {
        sb_free(&b);
        return VAULT_ERR_NOMEM;
    }
    *out = b.p;
    return VAULT_OK;
}
