/*
 * fuzz_webhook - Standard Webhooks verification (server/edge/webhook.h): header syntax
 * (webhook-id, webhook-timestamp, webhook-signature), the time window, HMAC over the raw body
 * and the replay table; and the TW_WEBHOOK_SECRETS parser.
 *
 * Byte 0 flags, the rest is split on the first three NUL bytes into id, timestamp, signature,
 * and the remainder (NULs included) is the body:
 *   bit 0/1/2  the id / timestamp / signature header is absent
 *   bit 3      append " v1,<correct signature>" to the signature header, so deliveries get past
 *              the HMAC and into the replay table
 *   bit 4      after an accepted delivery, release instead of commit
 *   bit 5      secrets mode: the rest is a TW_WEBHOOK_SECRETS value for edge_wh_load_env
 *   bit 6      deliver to a source that has no secret
 *   bit 7      sign with the source's second secret
 * A fresh verifier with a fixed clock per input keeps inputs independent.
 * Properties: an unknown source is always NO_SECRET; a correct v1 entry is never
 * BAD_SIGNATURE; an accepted id is IN_PROGRESS while pending, DUPLICATE once committed and
 * accepted again once released.
 */
#include "fuzz.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "edge/webhook.h"

#define NOW INT64_C(1700000000)

/* Two secrets of source "fz" (base64 of 24 and 32 fixed bytes) and their raw key bytes. */
static const char SECRET1[] = "whsec_MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1u";
static const char SECRET2[] = "whsec_ZnV6ei13ZWJob29rLXNlY3JldC10d28tMzJieXRlcyE=";
static const char KEY1[] = "0123456789abcdefghijklmn";
static const char KEY2[] = "fuzz-webhook-secret-two-32bytes!";

static int64_t fixed_clock(void *ctx)
{
    (void)ctx;
    return NOW;
}

static edge_wh *make_verifier(int with_secrets)
{
    edge_wh_config cfg = {.max_body = 4096, .replay_capacity = 16, .clock = fixed_clock};
    char err[256];
    edge_wh *v = edge_wh_create(&cfg);
    if (!v)
        abort();
    if (with_secrets && (edge_wh_add_secret(v, "fz", SECRET1, err, sizeof(err)) != 0 ||
                         edge_wh_add_secret(v, "fz", SECRET2, err, sizeof(err)) != 0)) {
        fprintf(stderr, "fuzz_webhook: add_secret: %s\n", err);
        abort();
    }
    return v;
}

/* "v1,<base64 HMAC-SHA256(key, id.ts.body)>" (malloc'd). */
static char *v1_entry(const char *key, const edge_wh_headers *h, const uint8_t *body, size_t n)
{
    size_t len = h->id_len + 1 + h->timestamp_len + 1 + n;
    unsigned char *msg = malloc(len + 1), mac[32];
    unsigned int maclen = 0;
    char *out = malloc(3 + 45);
    if (!msg || !out)
        abort();
    memcpy(msg, h->id, h->id_len);
    msg[h->id_len] = '.';
    memcpy(msg + h->id_len + 1, h->timestamp, h->timestamp_len);
    msg[h->id_len + 1 + h->timestamp_len] = '.';
    if (n)
        memcpy(msg + h->id_len + 2 + h->timestamp_len, body, n);
    if (!HMAC(EVP_sha256(), key, (int)strlen(key), msg, len, mac, &maclen))
        abort();
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, 32);
    free(msg);
    return out;
}

static void secrets_mode(const uint8_t *data, size_t size)
{
    char *spec = fuzz_strndup(data, size);
    char err[1024];
    edge_wh *v = make_verifier(0);
    int bad = edge_wh_load_env(v, spec, err, sizeof(err));
    FUZZ_CHECK(bad >= 0);
    FUZZ_CHECK(memchr(err, 0, sizeof(err)) != NULL || bad == 0);
    (void)edge_wh_source_enabled(v, "fz");
    edge_wh_destroy(v);
    free(spec);
}

/* Next NUL-separated field of [*p, end): sets out and len, and moves p past the NUL. */
static void next_field(const uint8_t **p, const uint8_t *end, const char **out, size_t *len)
{
    const uint8_t *nul = memchr(*p, 0, (size_t)(end - *p));
    *out = (const char *)*p;
    *len = nul ? (size_t)(nul - *p) : (size_t)(end - *p);
    *p = nul ? nul + 1 : end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t f = data[0];
    if (f & 0x20) {
        secrets_mode(data + 1, size - 1);
        return 0;
    }
    const uint8_t *p = data + 1, *end = data + size;
    edge_wh_headers h;
    next_field(&p, end, &h.id, &h.id_len);
    next_field(&p, end, &h.timestamp, &h.timestamp_len);
    next_field(&p, end, &h.signature, &h.signature_len);
    const uint8_t *body = p;
    size_t body_len = (size_t)(end - p);
    char *sig = NULL, *entry = NULL;
    if (f & 1)
        h.id = NULL, h.id_len = 0;
    if (f & 2)
        h.timestamp = NULL, h.timestamp_len = 0;
    if ((f & 8) && h.id && h.timestamp) {
        entry = v1_entry((f & 0x80) ? KEY2 : KEY1, &h, body, body_len);
        size_t el = strlen(entry), sl = (f & 4) ? 0 : h.signature_len;
        if (!(sig = malloc(sl + 1 + el + 1)))
            abort();
        if (sl)
            memcpy(sig, h.signature, sl);
        sig[sl] = ' ';
        memcpy(sig + sl + 1, entry, el + 1);
        h.signature = sig;
        h.signature_len = sl + 1 + el;
    } else if (f & 4) {
        h.signature = NULL, h.signature_len = 0;
    }

    edge_wh *v = make_verifier(1);
    const char *source = (f & 0x40) ? "nosecret" : "fz";
    edge_wh_result r = edge_wh_verify(v, source, &h, body, body_len);
    FUZZ_CHECK((unsigned)r < EDGE_WH_RESULT_COUNT);
    FUZZ_CHECK(edge_wh_http_status(r) >= 200 && edge_wh_result_name(r) != NULL);
    if (f & 0x40)
        FUZZ_CHECK(r == EDGE_WH_NO_SECRET);
    if (entry)
        FUZZ_CHECK(r != EDGE_WH_BAD_SIGNATURE);
    if (r == EDGE_WH_OK) {
        FUZZ_CHECK(edge_wh_verify(v, source, &h, body, body_len) == EDGE_WH_IN_PROGRESS);
        if (f & 0x10) {
            edge_wh_release(v, source, h.id, h.id_len);
            FUZZ_CHECK(edge_wh_verify(v, source, &h, body, body_len) == EDGE_WH_OK);
        }
        edge_wh_commit(v, source, h.id, h.id_len);
        FUZZ_CHECK(edge_wh_verify(v, source, &h, body, body_len) == EDGE_WH_DUPLICATE);
    }
    edge_wh_destroy(v);
    free(sig);
    free(entry);
    return 0;
}
