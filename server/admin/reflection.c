/*
 * Reflection index and handlers.
 *
 * The embedded set is walked at the wire level (field 1, length-delimited, repeated) so each
 * file's bytes are served verbatim; each file is also unpacked once with protobuf-c's
 * descriptor.proto bindings to learn its name, package, dependencies and symbols. Symbols are
 * kept in one sorted array for bsearch. file_by_filename and file_containing_symbol answer
 * with the file and its transitive dependencies (the file first). Extensions: none are
 * defined by our contracts, so file_containing_extension answers NOT_FOUND and
 * all_extension_numbers_of_type answers an empty list for known types.
 * v1alpha is wire-identical to v1: its handler re-encodes and reuses the v1 logic.
 */
#include "reflection.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "core/alloc.h"
#include "google/protobuf/descriptor.pb-c.h"

typedef struct {
    char *name;
    const unsigned char *bytes;
    size_t len;
    size_t *deps; /* indexes into files */
    size_t ndeps;
} refl_file;

typedef struct {
    char *symbol;
    size_t file;
    int is_message;
} refl_symbol;

struct refl_index {
    refl_file *files;
    size_t nfiles;
    refl_symbol *symbols;
    size_t nsymbols, capsymbols;
    char **services;
    size_t nservices;
};

static int read_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end)
            return -1;
        unsigned char b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

static int add_symbol(refl_index *ix, const char *prefix, const char *name, size_t file,
                      int is_message)
{
    if (ix->nsymbols == ix->capsymbols) {
        size_t cap = ix->capsymbols ? ix->capsymbols * 2 : 256;
        refl_symbol *n = realloc(ix->symbols, cap * sizeof(*n));
        if (!n)
            return -1;
        ix->symbols = n;
        ix->capsymbols = cap;
    }
    size_t len = strlen(prefix) + strlen(name) + 2;
    char *s = tw_malloc(len);
    if (!s)
        return -1;
    if (*prefix)
        snprintf(s, len, "%s.%s", prefix, name);
    else
        snprintf(s, len, "%s", name);
    ix->symbols[ix->nsymbols].symbol = s;
    ix->symbols[ix->nsymbols].file = file;
    ix->symbols[ix->nsymbols].is_message = is_message;
    ix->nsymbols++;
    return 0;
}

static int add_message(refl_index *ix, const char *prefix,
                       const Google__Protobuf__DescriptorProto *m, size_t file)
{
    if (add_symbol(ix, prefix, m->name, file, 1) != 0)
        return -1;
    const char *full = ix->symbols[ix->nsymbols - 1].symbol;
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (add_message(ix, full, m->nested_type[i], file) != 0)
            return -1;
    for (size_t i = 0; i < m->n_enum_type; i++)
        if (add_symbol(ix, full, m->enum_type[i]->name, file, 0) != 0)
            return -1;
    return 0;
}

static int index_file(refl_index *ix, size_t idx, char ***depnames, size_t *ndep)
{
    refl_file *f = &ix->files[idx];
    Google__Protobuf__FileDescriptorProto *fd =
        google__protobuf__file_descriptor_proto__unpack(NULL, f->len, f->bytes);
    int rc = -1;
    if (!fd || !fd->name)
        goto out;
    f->name = tw_strdup(fd->name);
    const char *pkg = fd->package ? fd->package : "";
    if (!f->name)
        goto out;
    for (size_t i = 0; i < fd->n_message_type; i++)
        if (add_message(ix, pkg, fd->message_type[i], idx) != 0)
            goto out;
    for (size_t i = 0; i < fd->n_enum_type; i++)
        if (add_symbol(ix, pkg, fd->enum_type[i]->name, idx, 0) != 0)
            goto out;
    for (size_t i = 0; i < fd->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *s = fd->service[i];
        if (add_symbol(ix, pkg, s->name, idx, 0) != 0)
            goto out;
        const char *full = ix->symbols[ix->nsymbols - 1].symbol;
        char *copy = tw_strdup(full);
        if (!copy)
            goto out;
        for (size_t k = 0; k < s->n_method; k++) {
            if (add_symbol(ix, copy, s->method[k]->name, idx, 0) != 0) {
                free(copy);
                goto out;
            }
        }
        free(copy);
    }
    *ndep = fd->n_dependency;
    *depnames = tw_calloc(fd->n_dependency ? fd->n_dependency : 1, sizeof(char *));
    if (!*depnames)
        goto out;
    for (size_t i = 0; i < fd->n_dependency; i++) {
        (*depnames)[i] = tw_strdup(fd->dependency[i]);
        if (!(*depnames)[i])
            goto out;
    }
    rc = 0;
out:
    if (fd)
        google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
    return rc;
}

static int cmp_symbol(const void *a, const void *b)
{
    return strcmp(((const refl_symbol *)a)->symbol, ((const refl_symbol *)b)->symbol);
}

static long find_file(const refl_index *ix, const char *name)
{
    for (size_t i = 0; i < ix->nfiles; i++)
        if (strcmp(ix->files[i].name, name) == 0)
            return (long)i;
    return -1;
}

static const refl_symbol *find_symbol(const refl_index *ix, const char *name)
{
    refl_symbol key = {(char *)name, 0, 0};
    return bsearch(&key, ix->symbols, ix->nsymbols, sizeof(key), cmp_symbol);
}

refl_index *refl_index_create(const unsigned char *set, size_t len, const char *const *services,
                              size_t nservices)
{
    refl_index *ix = tw_calloc(1, sizeof(*ix));
    char ***deps = NULL;
    size_t *ndeps = NULL;
    int ok = 0;
    if (!ix)
        return NULL;
    /* Pass 1: count and slice the files. */
    for (int pass = 0; pass < 2; pass++) {
        const unsigned char *p = set, *end = set + len;
        size_t n = 0;
        while (p < end) {
            uint64_t key, flen;
            if (read_varint(&p, end, &key) != 0 || key != ((1 << 3) | 2) ||
                read_varint(&p, end, &flen) != 0 || flen > (uint64_t)(end - p))
                goto out;
            if (pass == 1) {
                ix->files[n].bytes = p;
                ix->files[n].len = (size_t)flen;
            }
            p += flen;
            n++;
        }
        if (pass == 0) {
            ix->nfiles = n;
            ix->files = tw_calloc(n ? n : 1, sizeof(*ix->files));
            deps = tw_calloc(n ? n : 1, sizeof(*deps));
            ndeps = tw_calloc(n ? n : 1, sizeof(*ndeps));
            if (!ix->files || !deps || !ndeps)
                goto out;
        }
    }
    for (size_t i = 0; i < ix->nfiles; i++)
        if (index_file(ix, i, &deps[i], &ndeps[i]) != 0)
            goto out;
    for (size_t i = 0; i < ix->nfiles; i++) {
        refl_file *f = &ix->files[i];
        f->deps = tw_calloc(ndeps[i] ? ndeps[i] : 1, sizeof(size_t));
        if (!f->deps)
            goto out;
        for (size_t k = 0; k < ndeps[i]; k++) {
            long d = find_file(ix, deps[i][k]);
            if (d < 0) /* --include_imports guarantees every dependency is present */
                goto out;
            f->deps[f->ndeps++] = (size_t)d;
        }
    }
    qsort(ix->symbols, ix->nsymbols, sizeof(*ix->symbols), cmp_symbol);
    ix->services = tw_calloc(nservices ? nservices : 1, sizeof(char *));
    if (!ix->services)
        goto out;
    for (size_t i = 0; i < nservices; i++) {
        if (!find_symbol(ix, services[i]))
            goto out; /* a served service missing from the set is a build error */
        ix->services[i] = tw_strdup(services[i]);
        if (!ix->services[i])
            goto out;
        ix->nservices++;
    }
    ok = 1;
out:
    for (size_t i = 0; deps && i < ix->nfiles; i++) {
        for (size_t k = 0; deps[i] && ndeps && k < ndeps[i]; k++)
            free(deps[i][k]);
        free(deps[i]);
    }
    free(deps);
    free(ndeps);
    if (!ok) {
        refl_index_destroy(ix);
        return NULL;
    }
    return ix;
}

void refl_index_destroy(refl_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->nfiles; i++) {
        free(ix->files[i].name);
        free(ix->files[i].deps);
    }
    free(ix->files);
    for (size_t i = 0; i < ix->nsymbols; i++)
        free(ix->symbols[i].symbol);
    free(ix->symbols);
    for (size_t i = 0; i < ix->nservices; i++)
        free(ix->services[i]);
    free(ix->services);
    free(ix);
}

size_t refl_index_file_count(const refl_index *ix)
{
    return ix->nfiles;
}

/* ---- handlers --------------------------------------------------------------------------- */

typedef Grpc__Reflection__V1__ServerReflectionRequest v1_req;
typedef Grpc__Reflection__V1__ServerReflectionResponse v1_resp;

static tw_status set_error(tw_call *c, v1_resp *resp, tw_code code, const char *msg)
{
    tw_arena *a = tw_call_arena(c);
    Grpc__Reflection__V1__ErrorResponse *e = tw_arena_alloc(a, sizeof(*e));
    if (!e)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    grpc__reflection__v1__error_response__init(e);
    e->error_code = (int32_t)code;
    e->error_message = tw_arena_strdup(a, msg);
    if (!e->error_message)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    resp->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    resp->error_response = e;
    return tw_ok();
}

/* The file and its transitive dependencies, file first, each once. */
static tw_status set_files(tw_call *c, const refl_index *ix, size_t root, v1_resp *resp)
{
    tw_arena *a = tw_call_arena(c);
    size_t *order = tw_arena_alloc(a, ix->nfiles * sizeof(size_t));
    unsigned char *seen = tw_arena_zalloc(a, ix->nfiles);
    Grpc__Reflection__V1__FileDescriptorResponse *fr = tw_arena_alloc(a, sizeof(*fr));
    if (!order || !seen || !fr)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    size_t n = 0;
    order[n++] = root;
    seen[root] = 1;
    for (size_t i = 0; i < n; i++) { /* breadth-first over dependencies */
        const refl_file *f = &ix->files[order[i]];
        for (size_t k = 0; k < f->ndeps; k++) {
            if (!seen[f->deps[k]]) {
                seen[f->deps[k]] = 1;
                order[n++] = f->deps[k];
            }
        }
    }
    grpc__reflection__v1__file_descriptor_response__init(fr);
    fr->file_descriptor_proto = tw_arena_alloc(a, n * sizeof(ProtobufCBinaryData));
    if (!fr->file_descriptor_proto)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < n; i++) {
        fr->file_descriptor_proto[i].data = (uint8_t *)ix->files[order[i]].bytes;
        fr->file_descriptor_proto[i].len = ix->files[order[i]].len;
    }
    fr->n_file_descriptor_proto = n;
    resp->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    resp->file_descriptor_response = fr;
    return tw_ok();
}

static tw_status list_services(tw_call *c, const refl_index *ix, v1_resp *resp)
{
    tw_arena *a = tw_call_arena(c);
    Grpc__Reflection__V1__ListServiceResponse *l = tw_arena_alloc(a, sizeof(*l));
    Grpc__Reflection__V1__ServiceResponse **items =
        tw_arena_alloc(a, (ix->nservices + 1) * sizeof(*items));
    if (!l || !items)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    grpc__reflection__v1__list_service_response__init(l);
    for (size_t i = 0; i < ix->nservices; i++) {
        items[i] = tw_arena_alloc(a, sizeof(**items));
        if (!items[i])
            return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
        grpc__reflection__v1__service_response__init(items[i]);
        items[i]->name = ix->services[i];
    }
    l->service = items;
    l->n_service = ix->nservices;
    resp->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
    resp->list_services_response = l;
    return tw_ok();
}

static tw_status all_extension_numbers(tw_call *c, const refl_index *ix, const char *type,
                                       v1_resp *resp)
{
    const refl_symbol *s = find_symbol(ix, type);
    if (!s || !s->is_message)
        return set_error(c, resp, TW_NOT_FOUND, "unknown message type");
    Grpc__Reflection__V1__ExtensionNumberResponse *e = tw_arena_alloc(tw_call_arena(c), sizeof(*e));
    if (!e)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    grpc__reflection__v1__extension_number_response__init(e);
    e->base_type_name = (char *)s->symbol;
    resp->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
    resp->all_extension_numbers_response = e;
    return tw_ok();
}

static tw_status answer(tw_call *c, const refl_index *ix, const v1_req *req, v1_resp *resp)
{
    resp->valid_host = req->host;
    resp->original_request = (v1_req *)req;
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        return list_services(c, ix, resp);
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME: {
        long f = find_file(ix, req->file_by_filename);
        if (f < 0)
            return set_error(c, resp, TW_NOT_FOUND, "unknown file name");
        return set_files(c, ix, (size_t)f, resp);
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL: {
        const refl_symbol *s = find_symbol(ix, req->file_containing_symbol);
        if (!s)
            return set_error(c, resp, TW_NOT_FOUND, "unknown symbol");
        return set_files(c, ix, s->file, resp);
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        return set_error(c, resp, TW_NOT_FOUND, "no extensions are defined");
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        return all_extension_numbers(c, ix, req->all_extension_numbers_of_type, resp);
    default:
        return set_error(c, resp, TW_INVALID_ARGUMENT, "empty or unknown reflection request");
    }
}

tw_status refl_v1(tw_call *c, const v1_req *req, v1_resp *resp)
{
    const srv_app *app = tw_call_app(c);
    return answer(c, app->refl, req, resp);
}

tw_status refl_v1alpha(tw_call *c, const Grpc__Reflection__V1alpha__ServerReflectionRequest *req,
                       Grpc__Reflection__V1alpha__ServerReflectionResponse *resp)
{
    /* Same wire format: translate through bytes, answer with the v1 logic, translate back. */
    tw_arena *a = tw_call_arena(c);
    ProtobufCAllocator *pa = tw_arena_protobuf_allocator(a);
    size_t n = protobuf_c_message_get_packed_size(&req->base);
    uint8_t *buf = tw_arena_alloc(a, n);
    if (!buf)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    protobuf_c_message_pack(&req->base, buf);
    v1_req *r1 = grpc__reflection__v1__server_reflection_request__unpack(pa, n, buf);
    if (!r1)
        return tw_err(TW_INTERNAL, "reflection request translation failed");
    v1_resp out1 = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    tw_status st = refl_v1(c, r1, &out1);
    if (st.code != TW_OK)
        return st;
    n = protobuf_c_message_get_packed_size(&out1.base);
    buf = tw_arena_alloc(a, n);
    if (!buf)
        return tw_err(TW_RESOURCE_EXHAUSTED, "out of memory");
    protobuf_c_message_pack(&out1.base, buf);
    Grpc__Reflection__V1alpha__ServerReflectionResponse *r2 =
        grpc__reflection__v1alpha__server_reflection_response__unpack(pa, n, buf);
    if (!r2)
        return tw_err(TW_INTERNAL, "reflection response translation failed");
    *resp = *r2;
    return tw_ok();
}
