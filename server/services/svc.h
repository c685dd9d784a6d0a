/*
 * Helpers shared by the service handlers: the caller's store connection (released with the
 * call), the caller's user row, store-result mapping, and parsing of wire decimals.
 */
#ifndef SRV_SVC_H
#define SRV_SVC_H

#include <stdint.h>

#include "app.h"
#include "core/call.h"
#include "store/store.h"

/* A pooled connection for this call; released automatically when the call ends. */
tw_status svc_conn(tw_call *c, store_conn **out);

/* Map a store result to the RPC status every service uses (UNAVAILABLE when the database is
 * down, NOT_FOUND for another user's object, ...). what names the object for NOT_FOUND. */
tw_status svc_store_status(tw_call *c, store_rc rc, const char *what);

/* The caller's user id (resolved at authentication). */
int64_t svc_user_id(tw_call *c);

/* Wall-clock now in microseconds (the sim clock when the sim broker is on). */
int64_t svc_now_us(tw_call *c);

#endif
