/* The product's route table (routes_table.c) and the list of services it serves. */
#ifndef SRV_ROUTES_TABLE_H
#define SRV_ROUTES_TABLE_H

#include "routes.h"

/* Build tradewinkd's routes; the Sim service only when sim_enabled. See routes_build. */
int routes_table_build(int sim_enabled, tw_routes *out, FILE *err);
/* The served services' descriptors (for reflection's list and health's names). */
const ProtobufCServiceDescriptor *const *routes_table_services(int sim_enabled, size_t *n);

#endif
