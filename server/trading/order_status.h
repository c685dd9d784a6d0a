/*
 * order_status: an order's lifecycle as one type, and the one table of the moves it may make.
 *
 * The store and the wire carry the status as text (orders.status, orders.proto's OrderStatus);
 * everything between them decides with this type. Parsing refuses any other text: a status
 * this build does not know is never taken for a final one.
 *
 *   PENDING_CONFIRMATION -> PENDING_SUBMIT (confirmed), CANCELED, EXPIRED, REJECTED (risk)
 *   PENDING_SUBMIT       -> ACCEPTED, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED
 *   ACCEPTED             -> PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED
 *   PARTIALLY_FILLED     -> FILLED, CANCELED, EXPIRED, REJECTED
 *   FILLED, CANCELED, EXPIRED, REJECTED: final, no move out
 *
 * Staying put is not a move. A broker's report never moves an order back (a late "accepted"
 * after a fill, a stale poll): the table has no such edge.
 */
#ifndef SRV_ORDER_STATUS_H
#define SRV_ORDER_STATUS_H

#include <stdbool.h>

typedef enum order_status {
    ORDER_PENDING_CONFIRMATION = 0, /* waiting for the trader (automation, not autonomous) */
    ORDER_PENDING_SUBMIT,           /* admitted; sent or being sent to the broker */
    ORDER_ACCEPTED,                 /* working at the broker, nothing filled */
    ORDER_PARTIALLY_FILLED,
    ORDER_FILLED,
    ORDER_CANCELED,
    ORDER_EXPIRED,
    ORDER_REJECTED,
    ORDER_STATUS_COUNT
} order_status;

/* The status named text ("ACCEPTED", ...: the store's and the wire's spelling, exactly). */
bool order_status_parse(const char *text, order_status *out);
/* Its text; "" for a value out of range. */
const char *order_status_name(order_status s);
/* Not final: the order can still fill or end. */
bool order_status_open(order_status s);
/* Whether the table lets an order move from `from` to `to` (false for to == from). */
bool order_status_may_move(order_status from, order_status to);

#endif
