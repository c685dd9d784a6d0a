/*
 * Glue between services and brokers/: asking a user's own broker whether a stored credential
 * works. The credential is decrypted only by trading (trading_key_decrypts for the sim, which
 * takes any; trading_broker for Alpaca, for one account call).
 */
#include <string.h>

#include "svc.h"
#include "trading/trading.h"

tw_status svc_broker_test(tw_call *c, const store_broker_key *k, protobuf_c_boolean *ok,
                          char **message)
{
    srv_app *app = tw_call_app(c);
    store_conn *conn;
    tw_status st = svc_conn(c, &conn);
    if (st.code != TW_OK)
        return st;
    if (strcmp(k->broker, "sim") == 0) {
        /* The sim takes any credential: the test is that the stored token decrypts. */
        if ((st = trading_key_decrypts(app->trading, conn, k)).code != TW_OK)
            return st;
        *ok = 1;
        *message = (char *)"sim broker: credential decrypted and accepted";
        return tw_ok();
    }
    brk_conn *bc = NULL;
    if ((st = trading_broker(app->trading, conn, k->user_id, k, svc_traceparent(c), &bc)).code !=
        TW_OK)
        return st;
    brk_account acct;
    brk_err err = {0};
    brk_rc rc = brk_account_get(bc, &acct, &err);
    brk_conn_destroy(bc);
    *ok = rc == BRK_OK;
    switch (rc) {
    case BRK_OK:
        *message = (char *)"broker accepted the credential (account reachable)";
        break;
    case BRK_AUTH:
        *message = (char *)"broker refused the credential";
        break;
    case BRK_UNAVAILABLE:
    case BRK_RATE_LIMITED:
        brk_err_clear(&err);
        return tw_err(TW_UNAVAILABLE, "broker unavailable, retry later");
    default:
        *message = tw_arena_printf(tw_call_arena(c), "broker answered %s", brk_rc_name(rc));
    }
    brk_err_clear(&err);
    return tw_ok();
}
