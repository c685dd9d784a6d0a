/*
 * brokers/alpaca_int.h — what alpaca.c shares with alpaca_stream.c: the order object and time
 * parsers (a streamed event carries the same order object a GET answers) and the base URL
 * rule. Not a public header.
 */
#ifndef TW_BROKERS_ALPACA_INT_H
#define TW_BROKERS_ALPACA_INT_H

#include <jansson.h>

#include "brokers/broker.h"

/* An Alpaca order object -> *out (zeroed first). false when required members are missing or
 * malformed. */
bool alp_parse_order(json_t *o, brk_order *out);
/* The RFC 3339 string member key of o as Unix ms; 0 when absent or malformed. */
int64_t alp_parse_time(json_t *o, const char *key);
/* The rule of brk_alpaca_url_ok. */
bool alp_base_url_ok(const char *u);

#endif
