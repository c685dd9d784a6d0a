#include "trading/order_status.h"

#include <stddef.h>
#include <string.h>

static const char *const names[ORDER_STATUS_COUNT] = {
    [ORDER_PENDING_CONFIRMATION] = "PENDING_CONFIRMATION",
    [ORDER_PENDING_SUBMIT] = "PENDING_SUBMIT",
    [ORDER_ACCEPTED] = "ACCEPTED",
    [ORDER_PARTIALLY_FILLED] = "PARTIALLY_FILLED",
    [ORDER_FILLED] = "FILLED",
    [ORDER_CANCELED] = "CANCELED",
    [ORDER_EXPIRED] = "EXPIRED",
    [ORDER_REJECTED] = "REJECTED",
};

#define TO(s) (1u << (s))
#define ENDS (TO(ORDER_CANCELED) | TO(ORDER_EXPIRED) | TO(ORDER_REJECTED))

/* moves[from]: the statuses it may move to (order_status.h). */
static const unsigned moves[ORDER_STATUS_COUNT] = {
    [ORDER_PENDING_CONFIRMATION] = TO(ORDER_PENDING_SUBMIT) | ENDS,
    [ORDER_PENDING_SUBMIT] =
        TO(ORDER_ACCEPTED) | TO(ORDER_PARTIALLY_FILLED) | TO(ORDER_FILLED) | ENDS,
    [ORDER_ACCEPTED] = TO(ORDER_PARTIALLY_FILLED) | TO(ORDER_FILLED) | ENDS,
    [ORDER_PARTIALLY_FILLED] = TO(ORDER_FILLED) | ENDS,
    /* FILLED, CANCELED, EXPIRED, REJECTED: 0 */
};

bool order_status_parse(const char *text, order_status *out)
{
    for (size_t i = 0; text && i < ORDER_STATUS_COUNT; i++)
        if (strcmp(text, names[i]) == 0) {
            *out = (order_status)i;
            return true;
        }
    return false;
}

const char *order_status_name(order_status s)
{
    return (unsigned)s < ORDER_STATUS_COUNT ? names[s] : "";
}

bool order_status_open(order_status s)
{
    return (unsigned)s < ORDER_FILLED;
}

bool order_status_may_move(order_status from, order_status to)
{
    return (unsigned)from < ORDER_STATUS_COUNT && (unsigned)to < ORDER_STATUS_COUNT &&
           (moves[from] & TO(to)) != 0;
}
