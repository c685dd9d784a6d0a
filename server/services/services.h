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
#include "tradewink/v1/orders.pb-c.h"
#include "tradewink/v1/sim.pb-c.h"
#include "store/store.h"

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
tw_status keyvault_sealing_key(tw_call *c, const Tradewink__V1__GetSealingKeyRequest *req,
                               Tradewink__V1__GetSealingKeyResponse *resp);
tw_status keyvault_rewrap(tw_call *c, const Tradewink__V1__RewrapKeysRequest *req,
                          Tradewink__V1__RewrapKeysResponse *resp);

tw_status audit_list_events(tw_call *c, const Tradewink__V1__ListEventsRequest *req,
                            Tradewink__V1__ListEventsResponse *resp);
tw_status audit_stream_events(tw_call *c, const Tradewink__V1__StreamEventsRequest *req,
                              tw_stream *s);
tw_status audit_verify_chain_rpc(tw_call *c, const Tradewink__V1__VerifyChainRequest *req,
                                 Tradewink__V1__VerifyChainResponse *resp);
tw_status audit_create_checkpoint_rpc(tw_call *c, const Tradewink__V1__CreateCheckpointRequest *req,
                                      Tradewink__V1__CreateCheckpointResponse *resp);

struct audit_feed;
struct store;
/* The StreamEvents feed: one poller thread per process. NULL on failure. */
struct audit_feed *audit_feed_start(struct store *st);
/* Ends every subscription and the thread. NULL is a no-op. */
void audit_feed_stop(struct audit_feed *f);
enum { AUDIT_FEED_EVENTS = 0, AUDIT_FEED_ORDERS = 1 };
/* Subscribe stream s to user uid's chain (-1 = all chains) from from_sequence (0 = live only),
 * delivering audit events or, for AUDIT_FEED_ORDERS, the order updates they record. */
tw_status audit_feed_subscribe(struct audit_feed *f, tw_stream *s, void *app, int64_t uid,
                               int64_t from_sequence, int kind);

/* Orders (orders_service.c). */
Tradewink__V1__Order *orders_to_wire(tw_call *c, const store_order *o);
struct risk_decision;
/* SubmitOrder's validation and risk decision without recording anything (Risk.CheckOrder). */
tw_status orders_dry_run(tw_call *c, const Tradewink__V1__SubmitOrderRequest *req,
                         struct risk_decision *d);
tw_status orders_submit(tw_call *c, const Tradewink__V1__SubmitOrderRequest *req,
                        Tradewink__V1__SubmitOrderResponse *resp);
tw_status orders_confirm(tw_call *c, const Tradewink__V1__ConfirmOrderRequest *req,
                         Tradewink__V1__ConfirmOrderResponse *resp);
tw_status orders_cancel(tw_call *c, const Tradewink__V1__CancelOrderRequest *req,
                        Tradewink__V1__CancelOrderResponse *resp);
tw_status orders_get(tw_call *c, const Tradewink__V1__GetOrderRequest *req,
                     Tradewink__V1__GetOrderResponse *resp);
tw_status orders_list(tw_call *c, const Tradewink__V1__ListOrdersRequest *req,
                      Tradewink__V1__ListOrdersResponse *resp);
tw_status orders_stream(tw_call *c, const Tradewink__V1__StreamOrderUpdatesRequest *req,
                        tw_stream *s);
tw_status orders_positions(tw_call *c, const Tradewink__V1__ListPositionsRequest *req,
                           Tradewink__V1__ListPositionsResponse *resp);
tw_status orders_get_settings(tw_call *c, const Tradewink__V1__GetAccountSettingsRequest *req,
                              Tradewink__V1__GetAccountSettingsResponse *resp);
tw_status orders_get_settings_fast(tw_call *c, const Tradewink__V1__GetAccountSettingsRequest *req,
                                   Tradewink__V1__GetAccountSettingsResponse *resp);
tw_status orders_update_settings(tw_call *c, const Tradewink__V1__UpdateAccountSettingsRequest *req,
                                 Tradewink__V1__UpdateAccountSettingsResponse *resp);

/* Verified webhook payloads (webhook_service.c); ctx is the srv_app. Returns an HTTP status. */
int svc_webhook(void *ctx, const char *source, const char *webhook_id, const uint8_t *body,
                size_t len);

/* Sim (sim_service.c), admin only, present while the sim broker is on. */
tw_status sim_set_quotes(tw_call *c, const Tradewink__V1__SetQuotesRequest *req,
                         Tradewink__V1__SetQuotesResponse *resp);
tw_status sim_get_quote(tw_call *c, const Tradewink__V1__GetQuoteRequest *req,
                        Tradewink__V1__GetQuoteResponse *resp);
tw_status sim_set_account(tw_call *c, const Tradewink__V1__SetAccountRequest *req,
                          Tradewink__V1__SetAccountResponse *resp);
tw_status sim_set_clock(tw_call *c, const Tradewink__V1__SetClockRequest *req,
                        Tradewink__V1__SetClockResponse *resp);
tw_status sim_advance_clock(tw_call *c, const Tradewink__V1__AdvanceClockRequest *req,
                            Tradewink__V1__AdvanceClockResponse *resp);
tw_status sim_get_clock(tw_call *c, const Tradewink__V1__GetClockRequest *req,
                        Tradewink__V1__GetClockResponse *resp);

#endif
