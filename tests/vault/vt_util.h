/* vt_util.h - helpers shared by the vault tests: vector files, hex, RFC 3339 times. */
#ifndef TESTS_VAULT_VT_UTIL_H
#define TESTS_VAULT_VT_UTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Loads <VAULT_VECTORS_DIR>/<rel> as JSON; fails the test if missing. Caller json_decref. */
json_t *vt_load_json(const char *rel);
/* Hex to bytes; *out malloc'd (free()); returns 0 or -1. */
int vt_hex(const char *hex, unsigned char **out, size_t *len);
/* "1985-10-26T01:20:00-07:00" to seconds since the epoch; fails the test if malformed. */
uint64_t vt_rfc3339(const char *s);

#endif
