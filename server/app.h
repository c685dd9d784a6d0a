/*
 * srv_app: what handlers reach through tw_call_app(). Built once in main before the transport
 * starts, read-only afterwards except through the modules' own thread-safe functions.
 */
#ifndef SRV_APP_H
#define SRV_APP_H

#include "config/config.h"

struct refl_index;
struct srv_health;

typedef struct srv_app {
    const tw_config *cfg;
    struct refl_index *refl;
    struct srv_health *health;
} srv_app;

#endif
