/*
 * THE route table: every method tradewinkd serves, its kind, required role and rate-limit
 * class, and its handler. Review policy here. A row without a handler answers UNIMPLEMENTED.
 * routes_build() refuses to start if a served method has no row or a handler's types do not
 * match its method.
 */
#include "routes_table.h"

#include <string.h>

#include "admin/health.h"
#include "admin/reflection.h"
#include "services/risk_service.h"
#include "services/services.h"
#include "tradewink/v1/audit.pb-c.h"
#include "tradewink/v1/auth.pb-c.h"
#include "tradewink/v1/keyvault.pb-c.h"
#include "tradewink/v1/orders.pb-c.h"
#include "tradewink/v1/risk.pb-c.h"
#include "tradewink/v1/sim.pb-c.h"

TW_UNARY_THUNK(auth_whoami, Tradewink__V1__WhoAmIRequest, Tradewink__V1__WhoAmIResponse);
TW_UNARY_THUNK(auth_issue_dev_token, Tradewink__V1__IssueDevTokenRequest,
               Tradewink__V1__IssueDevTokenResponse);
TW_UNARY_THUNK(keyvault_put, Tradewink__V1__PutBrokerKeyRequest,
               Tradewink__V1__PutBrokerKeyResponse);
TW_UNARY_THUNK(keyvault_list, Tradewink__V1__ListBrokerKeysRequest,
               Tradewink__V1__ListBrokerKeysResponse);
TW_UNARY_THUNK(keyvault_delete, Tradewink__V1__DeleteBrokerKeyRequest,
               Tradewink__V1__DeleteBrokerKeyResponse);
TW_UNARY_THUNK(keyvault_test, Tradewink__V1__TestBrokerKeyRequest,
               Tradewink__V1__TestBrokerKeyResponse);
TW_UNARY_THUNK(keyvault_rewrap, Tradewink__V1__RewrapKeysRequest,
               Tradewink__V1__RewrapKeysResponse);
TW_UNARY_THUNK(keyvault_sealing_key, Tradewink__V1__GetSealingKeyRequest,
               Tradewink__V1__GetSealingKeyResponse);
TW_UNARY_THUNK(audit_list_events, Tradewink__V1__ListEventsRequest,
               Tradewink__V1__ListEventsResponse);
TW_STREAM_THUNK(audit_stream_events, Tradewink__V1__StreamEventsRequest,
                Tradewink__V1__StreamEventsResponse);
TW_UNARY_THUNK(audit_verify_chain_rpc, Tradewink__V1__VerifyChainRequest,
               Tradewink__V1__VerifyChainResponse);
TW_UNARY_THUNK(audit_create_checkpoint_rpc, Tradewink__V1__CreateCheckpointRequest,
               Tradewink__V1__CreateCheckpointResponse);
TW_UNARY_THUNK(orders_submit, Tradewink__V1__SubmitOrderRequest,
               Tradewink__V1__SubmitOrderResponse);
TW_UNARY_THUNK(orders_confirm, Tradewink__V1__ConfirmOrderRequest,
               Tradewink__V1__ConfirmOrderResponse);
TW_UNARY_THUNK(orders_cancel, Tradewink__V1__CancelOrderRequest,
               Tradewink__V1__CancelOrderResponse);
TW_UNARY_THUNK(orders_get, Tradewink__V1__GetOrderRequest, Tradewink__V1__GetOrderResponse);
TW_UNARY_THUNK(orders_list, Tradewink__V1__ListOrdersRequest, Tradewink__V1__ListOrdersResponse);
TW_STREAM_THUNK(orders_stream, Tradewink__V1__StreamOrderUpdatesRequest,
                Tradewink__V1__StreamOrderUpdatesResponse);
TW_UNARY_THUNK(orders_positions, Tradewink__V1__ListPositionsRequest,
               Tradewink__V1__ListPositionsResponse);
TW_UNARY_THUNK(orders_get_settings, Tradewink__V1__GetAccountSettingsRequest,
               Tradewink__V1__GetAccountSettingsResponse);
TW_UNARY_THUNK(orders_get_settings_fast, Tradewink__V1__GetAccountSettingsRequest,
               Tradewink__V1__GetAccountSettingsResponse);
TW_UNARY_THUNK(orders_update_settings, Tradewink__V1__UpdateAccountSettingsRequest,
               Tradewink__V1__UpdateAccountSettingsResponse);
TW_UNARY_THUNK(sim_set_quotes, Tradewink__V1__SetQuotesRequest, Tradewink__V1__SetQuotesResponse);
TW_UNARY_THUNK(sim_get_quote, Tradewink__V1__GetQuoteRequest, Tradewink__V1__GetQuoteResponse);
TW_UNARY_THUNK(sim_set_account, Tradewink__V1__SetAccountRequest,
               Tradewink__V1__SetAccountResponse);
TW_UNARY_THUNK(sim_set_clock, Tradewink__V1__SetClockRequest, Tradewink__V1__SetClockResponse);
TW_UNARY_THUNK(sim_advance_clock, Tradewink__V1__AdvanceClockRequest,
               Tradewink__V1__AdvanceClockResponse);
TW_UNARY_THUNK(sim_get_clock, Tradewink__V1__GetClockRequest, Tradewink__V1__GetClockResponse);
TW_UNARY_THUNK(risksvc_get_limits, Tradewink__V1__GetLimitsRequest,
               Tradewink__V1__GetLimitsResponse);
TW_UNARY_THUNK(risksvc_set_limits, Tradewink__V1__SetLimitsRequest,
               Tradewink__V1__SetLimitsResponse);
TW_UNARY_THUNK(risksvc_get_state, Tradewink__V1__GetStateRequest, Tradewink__V1__GetStateResponse);
TW_UNARY_THUNK(risksvc_get_state_fast, Tradewink__V1__GetStateRequest,
               Tradewink__V1__GetStateResponse);
TW_UNARY_THUNK(risksvc_check_order, Tradewink__V1__CheckOrderRequest,
               Tradewink__V1__CheckOrderResponse);
TW_UNARY_THUNK(risksvc_halt, Tradewink__V1__HaltRequest, Tradewink__V1__HaltResponse);
TW_UNARY_THUNK(risksvc_resume, Tradewink__V1__ResumeRequest, Tradewink__V1__ResumeResponse);
TW_UNARY_THUNK(risksvc_halt_all, Tradewink__V1__HaltAllRequest, Tradewink__V1__HaltAllResponse);
TW_UNARY_THUNK(risksvc_resume_all, Tradewink__V1__ResumeAllRequest,
               Tradewink__V1__ResumeAllResponse);
TW_UNARY_THUNK(health_check, Grpc__Health__V1__HealthCheckRequest,
               Grpc__Health__V1__HealthCheckResponse);
TW_STREAM_THUNK(health_watch, Grpc__Health__V1__HealthCheckRequest,
                Grpc__Health__V1__HealthCheckResponse);
TW_UNARY_THUNK(refl_v1, Grpc__Reflection__V1__ServerReflectionRequest,
               Grpc__Reflection__V1__ServerReflectionResponse);
TW_UNARY_THUNK(refl_v1alpha, Grpc__Reflection__V1alpha__ServerReflectionRequest,
               Grpc__Reflection__V1alpha__ServerReflectionResponse);

#define AUTH "tradewink.v1.Auth"
#define VAULT "tradewink.v1.KeyVault"
#define ORDERS "tradewink.v1.Orders"
#define RISK "tradewink.v1.Risk"
#define AUDIT "tradewink.v1.Audit"
#define SIM "tradewink.v1.Sim"
#define HEALTH "grpc.health.v1.Health"
#define REFL1 "grpc.reflection.v1.ServerReflection"
#define REFL1A "grpc.reflection.v1alpha.ServerReflection"

#define U TW_KIND_UNARY
#define SS TW_KIND_SERVER_STREAM
#define BIDI TW_KIND_BIDI_STREAM
#define PUBLIC TW_ROLE_PUBLIC
#define USER TW_ROLE_USER
#define ADMIN TW_ROLE_ADMIN

static const tw_route_def table[] = {
    /* service  method                   kind  role    rate limit class */
    {AUTH, "WhoAmI", U, USER, TW_RL_API, TW_HANDLER(auth_whoami)},
    {AUTH, "IssueDevToken", U, PUBLIC, TW_RL_PUBLIC,
     TW_HANDLER(auth_issue_dev_token)}, /* dev mode only */

    {VAULT, "PutBrokerKey", U, USER, TW_RL_KEY_SUBMIT, TW_HANDLER(keyvault_put)},
    {VAULT, "ListBrokerKeys", U, USER, TW_RL_API, TW_HANDLER(keyvault_list)},
    {VAULT, "DeleteBrokerKey", U, USER, TW_RL_API, TW_HANDLER(keyvault_delete)},
    {VAULT, "TestBrokerKey", U, USER, TW_RL_KEY_SUBMIT, TW_HANDLER(keyvault_test)},
    {VAULT, "RewrapKeys", U, ADMIN, TW_RL_API, TW_HANDLER(keyvault_rewrap)},
    {VAULT, "GetSealingKey", U, USER, TW_RL_API, TW_HANDLER(keyvault_sealing_key)},

    {ORDERS, "SubmitOrder", U, USER, TW_RL_ORDERS, TW_HANDLER(orders_submit)},
    {ORDERS, "ConfirmOrder", U, USER, TW_RL_ORDERS, TW_HANDLER(orders_confirm)},
    {ORDERS, "CancelOrder", U, USER, TW_RL_ORDERS, TW_HANDLER(orders_cancel)},
    {ORDERS, "GetOrder", U, USER, TW_RL_API, TW_HANDLER(orders_get)},
    {ORDERS, "ListOrders", U, USER, TW_RL_API, TW_HANDLER(orders_list)},
    {ORDERS, "StreamOrderUpdates", SS, USER, TW_RL_API, TW_STREAMER(orders_stream)},
    {ORDERS, "ListPositions", U, USER, TW_RL_API, TW_HANDLER(orders_positions)},
    {ORDERS, "GetAccountSettings", U, USER, TW_RL_API, TW_HANDLER(orders_get_settings),
     TW_FAST(orders_get_settings_fast)},
    {ORDERS, "UpdateAccountSettings", U, USER, TW_RL_API, TW_HANDLER(orders_update_settings)},

    {RISK, "GetLimits", U, USER, TW_RL_API, TW_HANDLER(risksvc_get_limits)},
    {RISK, "SetLimits", U, USER, TW_RL_API, TW_HANDLER(risksvc_set_limits)},
    {RISK, "GetState", U, USER, TW_RL_API, TW_HANDLER(risksvc_get_state),
     TW_FAST(risksvc_get_state_fast)},
    {RISK, "CheckOrder", U, USER, TW_RL_API, TW_HANDLER(risksvc_check_order)},
    {RISK, "Halt", U, USER, TW_RL_API, TW_HANDLER(risksvc_halt)},
    {RISK, "Resume", U, USER, TW_RL_API, TW_HANDLER(risksvc_resume)},
    {RISK, "HaltAll", U, ADMIN, TW_RL_API, TW_HANDLER(risksvc_halt_all)},
    {RISK, "ResumeAll", U, ADMIN, TW_RL_API, TW_HANDLER(risksvc_resume_all)},

    {AUDIT, "ListEvents", U, USER, TW_RL_API, TW_HANDLER(audit_list_events)},
    {AUDIT, "StreamEvents", SS, USER, TW_RL_API, TW_STREAMER(audit_stream_events)},
    {AUDIT, "VerifyChain", U, USER, TW_RL_API, TW_HANDLER(audit_verify_chain_rpc)},
    {AUDIT, "CreateCheckpoint", U, USER, TW_RL_API, TW_HANDLER(audit_create_checkpoint_rpc)},

    {SIM, "SetQuotes", U, ADMIN, TW_RL_API, TW_HANDLER(sim_set_quotes)},
    {SIM, "GetQuote", U, ADMIN, TW_RL_API, TW_HANDLER(sim_get_quote)},
    {SIM, "SetAccount", U, ADMIN, TW_RL_API, TW_HANDLER(sim_set_account)},
    {SIM, "SetClock", U, ADMIN, TW_RL_API, TW_HANDLER(sim_set_clock)},
    {SIM, "AdvanceClock", U, ADMIN, TW_RL_API, TW_HANDLER(sim_advance_clock)},
    {SIM, "GetClock", U, ADMIN, TW_RL_API, TW_HANDLER(sim_get_clock)},

    {HEALTH, "Check", U, PUBLIC, TW_RL_PUBLIC, TW_HANDLER(health_check)},
    {HEALTH, "Watch", SS, PUBLIC, TW_RL_PUBLIC, TW_STREAMER(health_watch)},
    {REFL1, "ServerReflectionInfo", BIDI, PUBLIC, TW_RL_PUBLIC, TW_HANDLER(refl_v1)},
    {REFL1A, "ServerReflectionInfo", BIDI, PUBLIC, TW_RL_PUBLIC, TW_HANDLER(refl_v1alpha)},
};

static const ProtobufCServiceDescriptor *const with_sim[] = {
    &tradewink__v1__auth__descriptor,
    &tradewink__v1__key_vault__descriptor,
    &tradewink__v1__orders__descriptor,
    &tradewink__v1__risk__descriptor,
    &tradewink__v1__audit__descriptor,
    &grpc__health__v1__health__descriptor,
    &grpc__reflection__v1__server_reflection__descriptor,
    &grpc__reflection__v1alpha__server_reflection__descriptor,
    &tradewink__v1__sim__descriptor, /* last: dropped when the sim broker is off */
};

int routes_table_build(int sim_enabled, tw_routes *out, FILE *err)
{
    size_t nsvc = sizeof(with_sim) / sizeof(with_sim[0]);
    size_t nrows = sizeof(table) / sizeof(table[0]);
    if (!sim_enabled) {
        /* Sim rows are contiguous; without the service they would be dead rows. */
        static tw_route_def rows[sizeof(table) / sizeof(table[0])];
        size_t n = 0;
        for (size_t i = 0; i < nrows; i++)
            if (strcmp(table[i].service, SIM) != 0)
                rows[n++] = table[i];
        return routes_build(with_sim, nsvc - 1, rows, n, out, err);
    }
    return routes_build(with_sim, nsvc, table, nrows, out, err);
}

const ProtobufCServiceDescriptor *const *routes_table_services(int sim_enabled, size_t *n)
{
    *n = sizeof(with_sim) / sizeof(with_sim[0]) - (sim_enabled ? 0 : 1);
    return with_sim;
}
