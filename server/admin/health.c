/*
 * Health state and watchers. One mutex guards the serving flag and the watcher list; sends
 * happen under it too, which is fine because tw_stream_send only queues. A watcher holds a
 * stream reference from subscription until the stream's close callback removes it.
 */
#include "health.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "core/alloc.h"

typedef Grpc__Health__V1__HealthCheckResponse__ServingStatus serving_status;

struct watcher {
    struct watcher *next;
    tw_stream *stream;
    int known; /* service name known */
    serving_status last;
};

struct srv_health {
    pthread_mutex_t mu;
    int serving;
    char **names;
    size_t nnames;
    struct watcher *watchers;
};

srv_health *srv_health_create(const char *const *names, size_t n)
{
    srv_health *h = tw_calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    pthread_mutex_init(&h->mu, NULL);
    h->names = tw_calloc(n ? n : 1, sizeof(char *));
    if (!h->names) {
        srv_health_destroy(h);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        h->names[i] = tw_strdup(names[i]);
        if (!h->names[i]) {
            srv_health_destroy(h);
            return NULL;
        }
        h->nnames++;
    }
    return h;
}

void srv_health_destroy(srv_health *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    struct watcher *w = h->watchers;
    h->watchers = NULL;
    pthread_mutex_unlock(&h->mu);
    while (w) {
        struct watcher *next = w->next;
        tw_stream_on_close(w->stream, NULL, NULL);
        tw_stream_unref(w->stream);
        free(w);
        w = next;
    }
    for (size_t i = 0; i < h->nnames; i++)
        free(h->names[i]);
    free(h->names);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static int known(const srv_health *h, const char *name)
{
    if (*name == '\0')
        return 1;
    for (size_t i = 0; i < h->nnames; i++)
        if (strcmp(h->names[i], name) == 0)
            return 1;
    return 0;
}

static serving_status status_of(const srv_health *h)
{
    return h->serving ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                      : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
}

static void send_status(tw_stream *s, serving_status st)
{
    Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    r.status = st;
    tw_stream_send(s, &r.base);
}

void srv_health_set_serving(srv_health *h, int serving)
{
    pthread_mutex_lock(&h->mu);
    h->serving = serving ? 1 : 0;
    serving_status st = status_of(h);
    for (struct watcher *w = h->watchers; w; w = w->next) {
        if (w->known && w->last != st) {
            w->last = st;
            send_status(w->stream, st);
        }
    }
    pthread_mutex_unlock(&h->mu);
}

int srv_health_serving(srv_health *h)
{
    pthread_mutex_lock(&h->mu);
    int s = h->serving;
    pthread_mutex_unlock(&h->mu);
    return s;
}

tw_status health_check(tw_call *c, const Grpc__Health__V1__HealthCheckRequest *req,
                       Grpc__Health__V1__HealthCheckResponse *resp)
{
    srv_health *h = ((srv_app *)tw_call_app(c))->health;
    pthread_mutex_lock(&h->mu);
    int ok = known(h, req->service);
    serving_status st = status_of(h);
    pthread_mutex_unlock(&h->mu);
    if (!ok)
        return tw_err(TW_NOT_FOUND, "unknown service");
    resp->status = st;
    return tw_ok();
}

static void watcher_closed(tw_stream *s, void *arg)
{
    srv_health *h = arg;
    struct watcher *found = NULL;
    pthread_mutex_lock(&h->mu);
    for (struct watcher **pp = &h->watchers; *pp; pp = &(*pp)->next) {
        if ((*pp)->stream == s) {
            found = *pp;
            *pp = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    if (found) {
        tw_stream_unref(found->stream);
        free(found);
    }
}

tw_status health_watch(tw_call *c, const Grpc__Health__V1__HealthCheckRequest *req, tw_stream *s)
{
    srv_health *h = ((srv_app *)tw_call_app(c))->health;
    struct watcher *w = tw_calloc(1, sizeof(*w));
    if (!w)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    w->stream = s;
    tw_stream_ref(s);
    pthread_mutex_lock(&h->mu);
    w->known = known(h, req->service);
    w->last = w->known ? status_of(h)
                       : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
    send_status(s, w->last);
    w->next = h->watchers;
    h->watchers = w;
    pthread_mutex_unlock(&h->mu);
    /* After insertion: if the client already left, this runs watcher_closed at once. */
    tw_stream_on_close(s, watcher_closed, h);
    return tw_ok();
}
