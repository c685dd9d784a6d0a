/*
 * tw_config: every setting of tradewinkd, filled from TW_* environment variables through one
 * table (config.c) that also drives --help and deploy/CONFIG.md. Validation reports every bad
 * field, one line each naming the variable, before any port opens.
 */
#ifndef TW_CONFIG_H
#define TW_CONFIG_H

#include <stdio.h>

typedef enum { TW_AUTH_DEV = 0, TW_AUTH_JWKS, TW_AUTH_PEM } tw_auth_mode;

typedef struct tw_config {
    char *listen;       /* TW_LISTEN host:port */
    char *ops_listen;   /* TW_OPS_LISTEN host:port */
    char *database_url; /* TW_DATABASE_URL */
    char *redis_url;    /* TW_REDIS_URL, NULL = in-process limiter */
    int auth_mode;      /* tw_auth_mode */
    char *jwks_url;     /* TW_JWKS_URL */
    char *jwks_ca_file; /* TW_JWKS_CA_FILE */
    char *jwt_public_key_file;
    char *jwt_issuer;
    char *jwt_audience; /* comma-separated */
    char *jwt_role_claim;
    int jwt_clock_skew_s;
    int jwks_cache_ttl_s;
    char *dev_key_file;
    char *vault_master_keys; /* secret */
    char *vault_master_key_file;
    int pbkdf2_iterations;
    char *tls_cert_file;
    char *tls_key_file;
    char *tls_client_ca_file;
    char *webhook_secrets;           /* secret */
    char *audit_signing_keys;        /* secret: TW_AUDIT_SIGNING_KEYS vN:BASE64,... newest first */
    int audit_checkpoint_interval_s; /* TW_AUDIT_CHECKPOINT_INTERVAL_S; 0 = on demand only */
    char *vault_sealing_keys;        /* secret: TW_VAULT_SEALING_KEYS vN:BASE64[@UNTIL],... */
    int require_sealed_keys; /* TW_REQUIRE_SEALED_KEYS: PutBrokerKey only with sealed_secret */
    int workers;             /* 0 = number of cores */
    int log_level;           /* tw_log_level */
    int max_message_bytes;
    int shutdown_grace_ms;
    char *broker; /* default broker for new users: "sim" */
    int sim_enabled;
    char *sector_map_file;
    char *alpaca_base_url;  /* TW_ALPACA_BASE_URL: override (tests: a local stub) */
    char *alpaca_interface; /* TW_ALPACA_INTERFACE: outbound interface/address */
    char *alpaca_data_url;  /* TW_ALPACA_DATA_URL: Market Data API base (tests: a local stub) */
    char *alpaca_data_feed; /* TW_ALPACA_DATA_FEED: latest-trade feed, "iex" */
    int alpaca_requests_per_min; /* TW_ALPACA_REQUESTS_PER_MIN: per-account request budget */
    int ref_price_max_age_s;     /* TW_REF_PRICE_MAX_AGE_S: oldest last trade used as a reference */
    int mark_interval_s;         /* TW_MARK_INTERVAL_S: real-broker marks in the session */
    int mark_closed_interval_s;  /* TW_MARK_CLOSED_INTERVAL_S: ... outside it */
    int ledger_verify;           /* TW_LEDGER_VERIFY: check cached books against the store */
    int ledger_read_max_age_ms;  /* TW_LEDGER_READ_MAX_AGE_MS: reads answered from memory */
    char *rate_auth_fail, *rate_key_submit, *rate_orders, *rate_api, *rate_public;
    char *trusted_fronts; /* TW_TRUSTED_FRONTS: peers whose x-forwarded-for is believed */
} tw_config;

/* Fill cfg from getenv-like lookup (NULL = getenv). Writes one line per bad field to err and
 * returns the number of errors; cfg is usable only when 0. Every value is checked here, by
 * the parser that will use it (rate rules, webhook secrets, master keys, signing and sealing
 * keys, the sector map file), so nothing is opened before the whole configuration is known
 * good. Free with tw_config_free. */
int tw_config_load(tw_config *cfg, const char *(*lookup)(const char *name), FILE *err);
void tw_config_free(tw_config *cfg);

/* 1 when name is one of the TW_* settings above. */
int tw_config_is_setting(const char *name);
/* The setting name closest to name when it looks like a typo of one (at most 3 edits, an
 * adjacent swap counting as one), else NULL: for the warning about an unknown TW_* variable. */
const char *tw_config_nearest(const char *name);

/* --help text: every variable, its default and meaning. */
void tw_config_print_help(FILE *out);
/* The same table as a Markdown reference (deploy/CONFIG.md is generated from this). */
void tw_config_print_markdown(FILE *out);

/* 1 when host in "host:port" is a loopback address (127.0.0.0/8, ::1, localhost). */
int tw_config_addr_is_loopback(const char *addr);

#endif
