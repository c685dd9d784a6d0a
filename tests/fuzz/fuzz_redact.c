/*
 * fuzz_redact - log redaction (vault_redact_text, vault_redact_json_line,
 * vault_redact_is_sensitive_name) on hostile text and JSON.
 * Byte 0: bit 0 picks JSON line vs free text; bit 1 plants a known JWT, space-separated, in the
 * middle of the input (split at the first NUL, or appended): its signature segment must not
 * survive. The rest is the text.
 * Properties: output is a NUL-terminated string; the planted token's signature is gone (the
 * output holds no more copies of it than the fuzzer wrote itself);
 * the sensitive-name check is insensitive to ASCII case.
 */
#include "fuzz.h"

#include <ctype.h>
#include <string.h>

#include "vault/vault.h"

/* A JWT shape; SIG is its signature segment, the part that must never reach a log. */
#define PLANT "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmdXp6LXVzZXIifQ." SIG
#define SIG "QmVhcmVyVG9rZW5TaWduYXR1cmVCeXRlc0ZvckZ1enppbmc"

/* Occurrences of the C string needle in s[0..n). */
static size_t count(const char *s, size_t n, const char *needle)
{
    size_t k = 0, m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        k += memcmp(s + i, needle, m) == 0;
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int json = data[0] & 1, plant = (data[0] & 2) != 0;
    const uint8_t *in = data + 1;
    size_t n = size - 1, len = n;
    char *text, *out = NULL;
    if (plant) {
        const uint8_t *nul = memchr(in, 0, n);
        size_t cut = nul ? (size_t)(nul - in) : n, skip = nul ? 1 : 0;
        len = cut + 1 + strlen(PLANT) + 1 + (n - cut - skip);
        if (!(text = malloc(len + 1)))
            abort();
        memcpy(text, in, cut);
        text[cut] = ' ';
        memcpy(text + cut + 1, PLANT, strlen(PLANT));
        text[cut + 1 + strlen(PLANT)] = ' ';
        memcpy(text + cut + 2 + strlen(PLANT), in + cut + skip, n - cut - skip);
        text[len] = '\0';
    } else {
        text = fuzz_strndup(in, n);
    }
    vault_rc rc =
        json ? vault_redact_json_line(text, len, &out) : vault_redact_text(text, len, &out);
    FUZZ_CHECK(rc == VAULT_OK && out != NULL);
    (void)strlen(out); /* ASan: the result must be NUL-terminated inside its allocation */
    if (plant)         /* the fuzzer may write SIG itself: only the planted copy must go */
        FUZZ_CHECK(count(out, strlen(out), SIG) <= count((const char *)in, n, SIG));
    free(out);

    /* Name check: case must not matter. */
    if (n <= 64) {
        char upper[65];
        for (size_t i = 0; i < n; i++)
            upper[i] = (char)toupper(in[i]);
        FUZZ_CHECK(vault_redact_is_sensitive_name((const char *)in, n) ==
                   vault_redact_is_sensitive_name(upper, n));
    }
    free(text);
    return 0;
}
