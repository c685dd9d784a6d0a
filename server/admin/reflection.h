/*
 * Server reflection (grpc.reflection.v1 and v1alpha) over the FileDescriptorSet embedded at
 * build time. The index maps file names and fully qualified symbols (packages' messages,
 * nested messages, enums, services, methods) to the raw FileDescriptorProto bytes, exactly as
 * protoc wrote them.
 */
#ifndef SRV_REFLECTION_H
#define SRV_REFLECTION_H

#include <stddef.h>

#include "core/call.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"

typedef struct refl_index refl_index;

/* Index set[0..len). services: the names list_services reports. NULL on a malformed set.
 * The set bytes must outlive the index. */
refl_index *refl_index_create(const unsigned char *set, size_t len, const char *const *services,
                              size_t nservices);
void refl_index_destroy(refl_index *ix);
/* Number of files indexed (tests). */
size_t refl_index_file_count(const refl_index *ix);

/* Route handlers (bidi: one response per request). The app must expose the index through
 * srv_app. */
tw_status refl_v1(tw_call *c, const Grpc__Reflection__V1__ServerReflectionRequest *req,
                  Grpc__Reflection__V1__ServerReflectionResponse *resp);
tw_status refl_v1alpha(tw_call *c, const Grpc__Reflection__V1alpha__ServerReflectionRequest *req,
                       Grpc__Reflection__V1alpha__ServerReflectionResponse *resp);

#endif
