/*
 * grpc.health.v1.Health: Check and Watch. Status per service name ("" is the whole server).
 * Every served service is SERVING exactly when the server is: the store answering and not
 * shutting down. Watchers get the current status at once and every change after it.
 */
#ifndef SRV_HEALTH_H
#define SRV_HEALTH_H

#include <stddef.h>

#include "core/call.h"
#include "grpc/health/v1/health.pb-c.h"

typedef struct srv_health srv_health;

/* names: the services reported as known (besides ""). NULL on allocation failure. */
srv_health *srv_health_create(const char *const *names, size_t n);
/* Ends every watch stream's subscription; the streams themselves end with the transport. */
void srv_health_destroy(srv_health *h);
/* Set overall serving state; notifies watchers when it changes. Thread-safe. */
void srv_health_set_serving(srv_health *h, int serving);
int srv_health_serving(srv_health *h);

tw_status health_check(tw_call *c, const Grpc__Health__V1__HealthCheckRequest *req,
                       Grpc__Health__V1__HealthCheckResponse *resp);
tw_status health_watch(tw_call *c, const Grpc__Health__V1__HealthCheckRequest *req, tw_stream *s);

#endif
