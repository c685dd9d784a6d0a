/*
 * tests/brokers/alpaca_stub.h — an in-process stand-in for the Alpaca Trading API v2 endpoints
 * the adapter uses (libmicrohttpd, 127.0.0.1, ephemeral port). It records every request
 * (method, path, decoded query, both APCA headers, Content-Type, body), keeps a per-key order
 * book, answers 401 to unknown keys, and can be told to fail, stall or answer a canned body.
 * It speaks the trade_updates WebSocket too (stub_stream_*, below), and serves the Market Data
 * API's latest-trade endpoint (a test may point the adapter's
 * data URL at the same stub or at a second one).
 */
#ifndef TW_TESTS_BROKERS_ALPACA_STUB_H
#define TW_TESTS_BROKERS_ALPACA_STUB_H

#include <stddef.h>

typedef struct stub stub;

typedef struct stub_req {
    char method[16];
    char path[256];
    char query[512]; /* "k=v&k=v", values decoded, in URL order */
    char key_id[300];
    char secret[300];
    char content_type[128];
    char body[4096];
} stub_req;

/* Starts on 127.0.0.1 with a free port. NULL on failure. */
stub *stub_start(void);
void stub_stop(stub *s);
unsigned stub_port(const stub *s);
/* Accepts key_id with secret (at most 8 keys). */
void stub_add_key(stub *s, const char *key_id, const char *secret);
/*
 * The next `times` requests with this method whose path starts with path_prefix sleep
 * delay_ms, then answer status/body (status 0: after the delay, answer normally).
 */
void stub_fault(stub *s, const char *method, const char *path_prefix, int status, const char *body,
                int delay_ms, int times);
/*
 * Market Data API v2: GET /v2/stocks/{symbol}/trades/latest answers a latest-trade object whose
 * "p" is price_json verbatim (a JSON number token such as 187.123456789, or a string), so tests
 * control the exact digits on the wire. Symbols never set answer 404 (at most 16 symbols).
 */
void stub_set_trade(stub *s, const char *symbol, const char *price_json);
/*
 * The same with the trade's "t" (RFC 3339, e.g. "2026-01-02T14:30:00.123456789Z"; NULL = the
 * time of each answer, a fresh trade). A symbol with a '/' is also served by the crypto endpoint
 * GET /v1beta3/crypto/us/latest/trades?symbols=BTC/USD ({"trades":{}} when never set).
 */
void stub_set_trade_at(stub *s, const char *symbol, const char *price_json, const char *time);
/*
 * Alpaca's rate limit: at most limit authorised requests per window (Alpaca: 200 per 60000 ms);
 * beyond, 429 with X-RateLimit-Limit, X-RateLimit-Remaining: 0 and X-RateLimit-Reset (the
 * window's end, Unix seconds). limit 0 = off (the default). stub_rate_limited: 429s answered.
 */
void stub_rate_limit(stub *s, int limit, int window_ms);
int stub_rate_limited(stub *s);
/* What GET /v2/positions answers (a JSON array, copied); NULL = the built-in two positions. */
void stub_set_positions(stub *s, const char *json);
/*
 * Merges the members of fields_json (an object) into the stored order with this broker id, e.g.
 * {"status":"replaced","replaced_by":"..."} or {"status":"filled","filled_qty":"5",...}; the
 * stub answers GET /v2/orders/{id}, by_client_order_id and DELETE from the stored orders (DELETE
 * of a filled, canceled, expired, rejected or replaced order answers 422). 0 on success.
 */
int stub_order_patch(stub *s, const char *broker_order_id, const char *fields_json);
/* Adds a whole order object (needs string "id" and "client_order_id") owned by key_id. */
int stub_order_add(stub *s, const char *key_id, const char *order_json);
/* Requests seen so far with this method and exact path (method/path NULL = any). */
size_t stub_count(stub *s, const char *method, const char *path);
/* Copy of the i-th recorded request; 0 on success. */
int stub_get(stub *s, size_t i, stub_req *out);
size_t stub_total(stub *s);

/*
 * Alpaca's trade_updates WebSocket at GET /stream on a loopback port of its own (stub_stream_port;
 * RFC 6455 by hand, a thread per connection: libmicrohttpd's upgraded sockets lost the first
 * client frame here under thread-per-connection): an auth
 * message with a key added by stub_add_key is answered "authorized" (else "unauthorized"), a
 * listen message with "listening" ["trade_updates"]. mode 0: off (/stream answers 404, the
 * default), 1: on, 2: refusing (503). Switching to 0 or 2 closes every open connection (a
 * dropped stream).
 */
void stub_stream_mode(stub *s, int mode);
/* The stream's port: point brk_alpaca_stream_config.stream_url at ws://127.0.0.1:port. */
unsigned stub_stream_port(const stub *s);
/* Connections of key_id authorised and listening now. */
int stub_stream_listening(stub *s, const char *key_id);
/* Auth messages received so far (any key). */
int stub_stream_auths(stub *s);
/* Sends message (a whole JSON text) to key_id's listening connections as one binary frame,
 * or, split > 0, as a binary frame of its first split bytes and a continuation frame of the
 * rest. Returns the connections it was sent to. */
int stub_stream_send(stub *s, const char *key_id, const char *message, size_t split);

#endif
