/*
 * Route table construction and lookup. Build cost is paid once at start; lookup is only used
 * for unregistered paths and tests (registered methods carry their route pointer as the tag).
 */
#include "routes.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

const char *tw_role_name(tw_role role)
{
    switch (role) {
    case TW_ROLE_PUBLIC:
        return "public";
    case TW_ROLE_USER:
        return "user";
    case TW_ROLE_ADMIN:
        return "admin";
    }
    return "?";
}

static const tw_route_def *find_def(const tw_route_def *defs, size_t n, const char *svc,
                                    const char *method, size_t *count)
{
    const tw_route_def *hit = NULL;
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(defs[i].service, svc) == 0 && strcmp(defs[i].method, method) == 0) {
            hit = &defs[i];
            (*count)++;
        }
    }
    return hit;
}

static int check_def(const tw_route_def *d, const ProtobufCMethodDescriptor *m, FILE *err)
{
    int bad = 0;
    int has_handler = d->unary || d->stream;
    if (d->kind == TW_KIND_SERVER_STREAM && d->unary) {
        fprintf(err, "route %s/%s: server-streaming row has a unary handler\n", d->service,
                d->method);
        bad++;
    }
    if (d->kind != TW_KIND_SERVER_STREAM && d->stream) {
        fprintf(err, "route %s/%s: non-streaming row has a stream handler\n", d->service,
                d->method);
        bad++;
    }
    if (has_handler) {
        if (!d->req_c_name || strcmp(d->req_c_name, m->input->c_name) != 0) {
            fprintf(err, "route %s/%s: handler takes %s but the method's input is %s\n", d->service,
                    d->method, d->req_c_name ? d->req_c_name : "?", m->input->c_name);
            bad++;
        }
        if (!d->resp_c_name || strcmp(d->resp_c_name, m->output->c_name) != 0) {
            fprintf(err, "route %s/%s: handler returns %s but the method's output is %s\n",
                    d->service, d->method, d->resp_c_name ? d->resp_c_name : "?",
                    m->output->c_name);
            bad++;
        }
    }
    if (d->fast && (d->kind != TW_KIND_UNARY || !d->unary)) {
        fprintf(err, "route %s/%s: a fast handler needs a unary row with a unary handler\n",
                d->service, d->method);
        bad++;
    }
    if (d->fast && (!d->fast_req_c_name || strcmp(d->fast_req_c_name, m->input->c_name) != 0 ||
                    !d->fast_resp_c_name || strcmp(d->fast_resp_c_name, m->output->c_name) != 0)) {
        fprintf(err, "route %s/%s: the fast handler's types are not the method's (%s -> %s)\n",
                d->service, d->method, m->input->c_name, m->output->c_name);
        bad++;
    }
    return bad;
}

int routes_build(const ProtobufCServiceDescriptor *const *services, size_t nservices,
                 const tw_route_def *defs, size_t ndefs, tw_routes *out, FILE *err)
{
    int bad = 0;
    size_t total = 0, used = 0;
    out->routes = NULL;
    out->count = 0;
    for (size_t s = 0; s < nservices; s++)
        total += services[s]->n_methods;
    tw_route *routes = tw_calloc(total ? total : 1, sizeof(*routes));
    if (!routes) {
        fprintf(err, "routes: out of memory\n");
        return 1;
    }
    for (size_t s = 0; s < nservices; s++) {
        const ProtobufCServiceDescriptor *sd = services[s];
        for (unsigned i = 0; i < sd->n_methods; i++) {
            const ProtobufCMethodDescriptor *m = &sd->methods[i];
            size_t count;
            const tw_route_def *d = find_def(defs, ndefs, sd->name, m->name, &count);
            if (count == 0) {
                fprintf(err, "route %s/%s: no row in the route table\n", sd->name, m->name);
                bad++;
                continue;
            }
            if (count > 1) {
                fprintf(err, "route %s/%s: %zu rows in the route table\n", sd->name, m->name,
                        count);
                bad++;
                continue;
            }
            bad += check_def(d, m, err);
            tw_route *r = &routes[used++];
            size_t len = strlen(sd->name) + strlen(m->name) + 3;
            r->path = tw_malloc(len);
            if (!r->path) {
                fprintf(err, "routes: out of memory\n");
                bad++;
                continue;
            }
            snprintf(r->path, len, "/%s/%s", sd->name, m->name);
            r->def = d;
            r->in = m->input;
            r->out = m->output;
        }
    }
    /* Rows that name no served method are dead policy: refuse them too. */
    for (size_t i = 0; i < ndefs; i++) {
        int found = 0;
        for (size_t s = 0; s < nservices && !found; s++) {
            if (strcmp(services[s]->name, defs[i].service) != 0)
                continue;
            for (unsigned k = 0; k < services[s]->n_methods; k++)
                if (strcmp(services[s]->methods[k].name, defs[i].method) == 0)
                    found = 1;
        }
        if (!found) {
            fprintf(err, "route %s/%s: row names no method of a served service\n", defs[i].service,
                    defs[i].method);
            bad++;
        }
    }
    out->routes = routes;
    out->count = used;
    if (bad) {
        routes_free(out);
        return bad;
    }
    return 0;
}

void routes_free(tw_routes *r)
{
    if (!r || !r->routes)
        return;
    for (size_t i = 0; i < r->count; i++)
        free(r->routes[i].path);
    free(r->routes);
    r->routes = NULL;
    r->count = 0;
}

const tw_route *routes_find(const tw_routes *r, const char *path)
{
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->routes[i].path, path) == 0)
            return &r->routes[i];
    return NULL;
}
