/*
 * Glue between services and brokers/: asking a user's own broker whether a stored credential
 * works. The sim broker needs no credential; for Alpaca the credential is decrypted only
 * inside trading_broker and used for one account call.
 */
#include <string.h>

#include "svc.h"
#include "trading/trading.h"
#include "vault/vault.h"

tw_status svc_broker_test(tw_call *c, const store_broker_key *k, const vault_secret *cred,
                          protobuf_c_boolean *ok, char **message)
{
    (void)cred; /* proves the stored token decrypts; the adapter opens its own copy */
    srv_app *app = tw_call_app(c);
    if (strcmp(k->broker, "sim") == 0) {
        *ok = 1;
        *message = (char *)"sim broker: credential decrypted and accepted";
        return tw_ok();
    }
    store_conn *conn;
    tw_status st = svc_conn(c, &conn);
    if (st.code != TW_OK)
        return st;
    brk_conn *bc = NULL;
    if ((st = trading_broker(app->trading, conn, k->user_id, k, &bc)).code != TW_OK)
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
