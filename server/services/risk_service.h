/*
 * tradewink.v1.Risk: limits, kill switches and the stored-state view of a user's risk state,
 * plus the conversions the account snapshot builder shares with it (stored limits <-> engine
 * limits, stored state -> wire RiskState).
 *
 * Stored limits (store_risk_limits) use the wire's units and its "0 = check off" rule:
 * percentages in basis points (2.5 % = 250), daily_loss_abs in money units (1e6), windows in
 * seconds, rates per second. The engine (risk/risk.h) says "off" with RISK_OFF instead; only
 * risksvc_limits_to_engine crosses between the two.
 *
 * Stored state words (store_risk_state): trading_state "ACTIVE" / "HALTED" / "REDUCING";
 * halted_by "" / "user" / "admin" / "breaker". The breaker is in force while breaker_until_us
 * is in the future, whatever halted_by says (a user may Halt on top of a tripped breaker: the
 * halt then outlives the breaker, and Resume stays refused until breaker_until_us). Whoever
 * trips the breaker writes halted_by "breaker" and a halt_reason that starts with the rule's
 * name, "DAILY_LOSS: ..." or "DRAWDOWN: ...", so RiskState.breaker_rule can be reported.
 */
#ifndef SRV_RISK_SERVICE_H
#define SRV_RISK_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/call.h"
#include "risk/risk.h"
#include "store/store.h"
#include "tradewink/v1/risk.pb-c.h"

/* The server defaults for a user who never set limits (risk_limits_default and
 * risk_pdt_default, in stored units). */
void risksvc_limits_default(store_risk_limits *out);

/* The limits in force for user_id: the stored ones, or the defaults when the user never set
 * any (*is_default, may be NULL, tells which). Any other store result is returned as is. */
store_rc risksvc_limits_load(store_conn *c, int64_t user_id, store_risk_limits *out,
                             bool *is_default);

/* Stored limits to engine limits: 0 -> RISK_OFF, seconds -> milliseconds, one-second rate
 * window, the unknown-sector bucket bounded like a sector. pdt may be NULL; otherwise only
 * pdt->enabled is written (the other PDT parameters belong to the broker connection). */
void risksvc_limits_to_engine(const store_risk_limits *in, risk_limits *out, risk_pdt_config *pdt);

/* The wire RiskState of user_id as far as stored state tells it (trading state as the most
 * restrictive of global halt, breaker, user/admin halt and REDUCING; reasons; as_of = now).
 * Equity, P&L, positions and day-trade fields are left empty for the caller to fill. Arena
 * memory of c; NULL when out of memory. */
Tradewink__V1__RiskState *risksvc_state_to_wire(tw_call *c, int64_t user_id,
                                                const store_risk_state *rs,
                                                const store_global_state *g, int64_t now_us);

/* Handlers (bound in routes/routes_table.c). */
tw_status risksvc_get_limits(tw_call *c, const Tradewink__V1__GetLimitsRequest *req,
                             Tradewink__V1__GetLimitsResponse *resp);
tw_status risksvc_set_limits(tw_call *c, const Tradewink__V1__SetLimitsRequest *req,
                             Tradewink__V1__SetLimitsResponse *resp);
tw_status risksvc_get_state(tw_call *c, const Tradewink__V1__GetStateRequest *req,
                            Tradewink__V1__GetStateResponse *resp);
/* GetState's inline attempt on the completion-queue thread (routes.h, TW_FAST). */
tw_status risksvc_get_state_fast(tw_call *c, const Tradewink__V1__GetStateRequest *req,
                                 Tradewink__V1__GetStateResponse *resp);
tw_status risksvc_check_order(tw_call *c, const Tradewink__V1__CheckOrderRequest *req,
                              Tradewink__V1__CheckOrderResponse *resp);
tw_status risksvc_halt(tw_call *c, const Tradewink__V1__HaltRequest *req,
                       Tradewink__V1__HaltResponse *resp);
tw_status risksvc_resume(tw_call *c, const Tradewink__V1__ResumeRequest *req,
                         Tradewink__V1__ResumeResponse *resp);
tw_status risksvc_halt_all(tw_call *c, const Tradewink__V1__HaltAllRequest *req,
                           Tradewink__V1__HaltAllResponse *resp);
tw_status risksvc_resume_all(tw_call *c, const Tradewink__V1__ResumeAllRequest *req,
                             Tradewink__V1__ResumeAllResponse *resp);

#endif
