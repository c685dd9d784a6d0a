/*
 * Handlers of the tradewink.v1 services, one file per service in this folder. Every handler is
 * typed (request, response) and sees only tw_call; routes_table.c binds them to methods.
 */
#ifndef SRV_SERVICES_H
#define SRV_SERVICES_H

#include "core/call.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "tradewink/v1/audit.pb-c.h"
#include "tradewink/v1/auth.pb-c.h"
#include "tradewink/v1/keyvault.pb-c.h"

/* A Timestamp in the call's arena for unix seconds; NULL when out of memory. */
Google__Protobuf__Timestamp *svc_timestamp(tw_call *c, int64_t unix_s);

tw_status auth_whoami(tw_call *c, const Tradewink__V1__WhoAmIRequest *req,
                      Tradewink__V1__WhoAmIResponse *resp);
tw_status auth_issue_dev_token(tw_call *c, const Tradewink__V1__IssueDevTokenRequest *req,
                               Tradewink__V1__IssueDevTokenResponse *resp);

tw_status keyvault_put(tw_call *c, const Tradewink__V1__PutBrokerKeyRequest *req,
                       Tradewink__V1__PutBrokerKeyResponse *resp);
tw_status keyvault_list(tw_call *c, const Tradewink__V1__ListBrokerKeysRequest *req,
                        Tradewink__V1__ListBrokerKeysResponse *resp);
tw_status keyvault_delete(tw_call *c, const Tradewink__V1__DeleteBrokerKeyRequest *req,
                          Tradewink__V1__DeleteBrokerKeyResponse *resp);
tw_status keyvault_test(tw_call *c, const Tradewink__V1__TestBrokerKeyRequest *req,
                        Tradewink__V1__TestBrokerKeyResponse *resp);
tw_status keyvault_rewrap(tw_call *c, const Tradewink__V1__RewrapKeysRequest *req,
                          Tradewink__V1__RewrapKeysResponse *resp);

tw_status audit_list_events(tw_call *c, const Tradewink__V1__ListEventsRequest *req,
                            Tradewink__V1__ListEventsResponse *resp);
tw_status audit_stream_events(tw_call *c, const Tradewink__V1__StreamEventsRequest *req,
                              tw_stream *s);
tw_status audit_verify_chain_rpc(tw_call *c, const Tradewink__V1__VerifyChainRequest *req,
                                 Tradewink__V1__VerifyChainResponse *resp);

struct audit_feed;
struct store;
/* The StreamEvents feed: one poller thread per process. NULL on failure. */
struct audit_feed *audit_feed_start(struct store *st);
/* Ends every subscription and the thread. NULL is a no-op. */
void audit_feed_stop(struct audit_feed *f);

#endif
