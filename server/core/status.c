/*
 * Names of the gRPC status codes, for logs and metrics, and the field-violation collector that
 * lets a validator report every bad field of a request instead of stopping at the first.
 */
#include "status.h"

#include <string.h>

#include "arena.h"

const char *tw_code_name(tw_code code)
{
    static const char *const names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if ((unsigned)code < sizeof(names) / sizeof(names[0]))
        return names[code];
    return "UNKNOWN";
}

void tw_violations_init(tw_violations *v, tw_arena *a)
{
    memset(v, 0, sizeof(*v));
    v->arena = a;
}

void tw_violation_add(tw_violations *v, const char *field, const char *description)
{
    if (v->n == v->cap) {
        /* Arena memory is never freed on its own: growing copies into a fresh block. A request
         * has few fields, so this runs at most a couple of times. */
        size_t cap = v->cap ? v->cap * 2 : 8;
        tw_field_violation *items =
            v->arena ? tw_arena_alloc(v->arena, cap * sizeof(*items)) : NULL;
        if (!items) {
            v->lost = 1;
            return;
        }
        if (v->n)
            memcpy(items, v->items, v->n * sizeof(*items));
        v->items = items;
        v->cap = cap;
    }
    v->items[v->n].field = field;
    v->items[v->n].description = description;
    v->n++;
}

tw_status tw_violations_status(const tw_violations *v)
{
    if (v->n == 0 && !v->lost)
        return tw_ok();
    tw_status st = tw_err_reason(TW_INVALID_ARGUMENT, "INVALID_FIELD", "invalid request fields");
    if (v->n == 0)
        return st;
    st.violations = v->items;
    st.nviolations = v->n;
    /* The message keeps naming the first field exactly as before, for clients that only read
     * the message; the details name them all. */
    const char *m =
        v->n == 1 ? tw_arena_printf(v->arena, "%s: %s", v->items[0].field, v->items[0].description)
                  : tw_arena_printf(v->arena, "%s: %s (and %zu more invalid fields, see details)",
                                    v->items[0].field, v->items[0].description, v->n - 1);
    if (m)
        st.message = m;
    return st;
}
