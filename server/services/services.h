/*
 * Handlers of the tradewink.v1 services, one file per service in this folder. Every handler is
 * typed (request, response) and sees only tw_call; routes_table.c binds them to methods.
 */
#ifndef SRV_SERVICES_H
#define SRV_SERVICES_H

#include "core/call.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "tradewink/v1/auth.pb-c.h"

/* A Timestamp in the call's arena for unix seconds; NULL when out of memory. */
Google__Protobuf__Timestamp *svc_timestamp(tw_call *c, int64_t unix_s);

tw_status auth_whoami(tw_call *c, const Tradewink__V1__WhoAmIRequest *req,
                      Tradewink__V1__WhoAmIResponse *resp);
tw_status auth_issue_dev_token(tw_call *c, const Tradewink__V1__IssueDevTokenRequest *req,
                               Tradewink__V1__IssueDevTokenResponse *resp);

#endif
