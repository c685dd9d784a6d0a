/*
 * twctl.c - the tradewink admin CLI on libtwclient.
 *
 * Design: every verb is one row of a table naming the RPC path (resolved through the
 * generated twc_method table) and how to show the result. Verb options are not hand-written
 * either: they are the request message's fields (--limit-price sets limit_price), parsed by
 * type from the protobuf-c descriptor (enums by short name, wrappers, timestamps, repeated
 * enums as comma lists), so --help lists exactly what the contract accepts.
 * Output: human tables/key-value lists by default, proto3 JSON with --json.
 * Exit code: the gRPC status code of the call (0 = OK); 64 = usage error; 65 = a checkpoint
 * that does not verify (audit verify --checkpoint, offline); 70 = local failure
 * (key file, reading the secret).
 *
 * Invariants: a secret never comes from argv (any --secret... argument is refused before
 * anything else runs); `keys put` reads it from the terminal with echo off, or from stdin
 * when stdin is not a terminal; the buffer holding it is wiped before exit.
 */
#define _XOPEN_SOURCE 700 /* strptime */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "auth.h"
#include "twc_services.h"

#define EX_USAGE 64
#define EX_DATAERR 65 /* audit verify --checkpoint: the checkpoint does not verify */
#define EX_LOCAL 70

typedef struct twctl_ctx {
    const char *addr;
    const char *token;
    const char *tls_ca;
    const char *tls_cert;
    const char *tls_key;
    const char *tls_server_name;
    int json;
    int64_t timeout_ms; /* 0 = library default */
    twc_client *client;
} twctl_ctx;

struct verb;
typedef int (*verb_fn)(twctl_ctx *ctx, const struct verb *v, int argc, char **argv);

typedef struct verb {
    const char *group; /* NULL for top-level verbs */
    const char *name;
    const char *path; /* RPC, or NULL for local verbs */
    const char *summary;
    const char *positional; /* request field filled by the single positional argument */
    const char *defaults;   /* "field=value,..." applied before the options */
    const char *table;      /* repeated field shown as a table in human output */
    const char *columns;    /* its columns */
    verb_fn run;
} verb;

static int run_rpc(twctl_ctx *ctx, const verb *v, int argc, char **argv);
static int run_dev_token(twctl_ctx *ctx, const verb *v, int argc, char **argv);
static int run_set_quote(twctl_ctx *ctx, const verb *v, int argc, char **argv);
static int run_audit_verify(twctl_ctx *ctx, const verb *v, int argc, char **argv);

#define ORDER_DEFAULTS "type=market,time_in_force=day,origin=user"
#define ORDER_COLS "id,symbol,side,type,qty,filled_qty,limit_price,status,created_at"

static const verb verbs[] = {
    {NULL, "dev-token", NULL,
     "Mint a dev JWT locally with the dev key file (--sub ID --role user|admin [--ttl S] "
     "[--key-file PATH])",
     NULL, NULL, NULL, NULL, run_dev_token},
    {NULL, "whoami", "/tradewink.v1.Auth/WhoAmI", "Show the principal behind the token", NULL, NULL,
     NULL, NULL, run_rpc},
    {NULL, "health", "/grpc.health.v1.Health/Check", "Check server health (--service NAME)", NULL,
     NULL, NULL, NULL, run_rpc},
    {"keys", "put", "/tradewink.v1.KeyVault/PutBrokerKey",
     "Store a broker API key; the secret is read from a prompt (echo off) or stdin", NULL,
     "environment=paper", NULL, NULL, run_rpc},
    {"keys", "list", "/tradewink.v1.KeyVault/ListBrokerKeys", "List stored broker keys (masked)",
     NULL, NULL, "keys", "id,broker,label,environment,key_id_masked,created_at,last_used_at",
     run_rpc},
    {"keys", "delete", "/tradewink.v1.KeyVault/DeleteBrokerKey", "Delete a broker key: ID",
     "broker_key_id", NULL, NULL, NULL, run_rpc},
    {"keys", "test", "/tradewink.v1.KeyVault/TestBrokerKey",
     "Test a broker key against its broker: ID", "broker_key_id", NULL, NULL, NULL, run_rpc},
    {"keys", "rewrap", "/tradewink.v1.KeyVault/RewrapKeys",
     "Re-encrypt keys under the newest master key (admin)", NULL, NULL, NULL, NULL, run_rpc},
    {"orders", "submit", "/tradewink.v1.Orders/SubmitOrder",
     "Submit an order (--symbol --side --qty [--type --limit-price ...])", NULL, ORDER_DEFAULTS,
     NULL, NULL, run_rpc},
    {"orders", "confirm", "/tradewink.v1.Orders/ConfirmOrder", "Confirm a pending order: ID",
     "order_id", NULL, NULL, NULL, run_rpc},
    {"orders", "cancel", "/tradewink.v1.Orders/CancelOrder", "Cancel an order: ID", "order_id",
     NULL, NULL, NULL, run_rpc},
    {"orders", "get", "/tradewink.v1.Orders/GetOrder", "Show one order: ID", "order_id", NULL, NULL,
     NULL, run_rpc},
    {"orders", "list", "/tradewink.v1.Orders/ListOrders",
     "List orders, newest first (--statuses filled,canceled --symbol ...)", NULL, NULL, "orders",
     ORDER_COLS, run_rpc},
    {"orders", "watch", "/tradewink.v1.Orders/StreamOrderUpdates",
     "Follow order updates ([--from-sequence N] [--count N])", NULL, NULL, NULL, NULL, run_rpc},
    {"orders", "positions", "/tradewink.v1.Orders/ListPositions", "List open positions", NULL, NULL,
     "positions",
     "symbol,qty,avg_cost,current_price,market_value,unrealized_pl,realized_pl,trading_mode",
     run_rpc},
    {"settings", "get", "/tradewink.v1.Orders/GetAccountSettings", "Show account settings", NULL,
     NULL, NULL, NULL, run_rpc},
    {"settings", "set", "/tradewink.v1.Orders/UpdateAccountSettings",
     "Change trading mode, autonomous mode or the default broker key", NULL, NULL, NULL, NULL,
     run_rpc},
    {"risk", "limits", "/tradewink.v1.Risk/GetLimits", "Show risk limits ([--user-id] admin)", NULL,
     NULL, NULL, NULL, run_rpc},
    {"risk", "set-limits", "/tradewink.v1.Risk/SetLimits", "Change risk limits (unset = keep)",
     NULL, NULL, NULL, NULL, run_rpc},
    {"risk", "state", "/tradewink.v1.Risk/GetState", "Show trading state, breaker and P&L", NULL,
     NULL, NULL, NULL, run_rpc},
    {"risk", "check", "/tradewink.v1.Risk/CheckOrder",
     "Dry-run the risk checks for an order (same options as orders submit)", NULL, ORDER_DEFAULTS,
     "violations", "code,message,limit,value", run_rpc},
    {"risk", "halt", "/tradewink.v1.Risk/Halt", "Halt your own trading (--reason TEXT)", NULL, NULL,
     NULL, NULL, run_rpc},
    {"risk", "resume", "/tradewink.v1.Risk/Resume", "Resume your own trading", NULL, NULL, NULL,
     NULL, run_rpc},
    {"risk", "halt-all", "/tradewink.v1.Risk/HaltAll", "Kill switch for all users (admin)", NULL,
     NULL, NULL, NULL, run_rpc},
    {"risk", "resume-all", "/tradewink.v1.Risk/ResumeAll", "Lift the global halt (admin)", NULL,
     NULL, NULL, NULL, run_rpc},
    {"audit", "list", "/tradewink.v1.Audit/ListEvents", "List audit events", NULL, NULL, "events",
     "sequence,time,actor_type,actor_id,user_id,action,object_id,outcome", run_rpc},
    {"audit", "tail", "/tradewink.v1.Audit/StreamEvents",
     "Follow audit events ([--from-sequence N] [--count N])", NULL, NULL, NULL, NULL, run_rpc},
    {"audit", "verify", "/tradewink.v1.Audit/VerifyChain",
     "Verify the hash chain; offline: --checkpoint FILE --public-keys FILE checks a signed "
     "checkpoint with only the server's public keys",
     NULL, NULL, NULL, NULL, run_audit_verify},
    {"audit", "checkpoint", "/tradewink.v1.Audit/CreateCheckpoint",
     "Sign the chain's head now (keep the --json output for audit verify --checkpoint)", NULL, NULL,
     NULL, NULL, run_rpc},
    {"sim", "clock", "/tradewink.v1.Sim/GetClock", "Show the sim clock (admin)", NULL, NULL, NULL,
     NULL, run_rpc},
    {"sim", "quote", "/tradewink.v1.Sim/GetQuote", "Show the sim quote for a symbol: SYMBOL",
     "symbol", NULL, NULL, NULL, run_rpc},
    {"sim", "set-account", "/tradewink.v1.Sim/SetAccount",
     "Fund a sim account (--user-id --starting-cash --account-type cash|margin)", NULL, NULL, NULL,
     NULL, run_rpc},
    {"sim", "set-clock", "/tradewink.v1.Sim/SetClock", "Set the sim clock (--time RFC3339)", NULL,
     NULL, NULL, NULL, run_rpc},
    {"sim", "set-quote", "/tradewink.v1.Sim/SetQuotes",
     "Set one sim quote (--symbol S --bid B --ask A --last L) (admin)", NULL, NULL, NULL, NULL,
     run_set_quote},
};
#define N_VERBS (sizeof verbs / sizeof verbs[0])

/* ------------------------------------------------------------------ usage */

static void usage_top(FILE *f)
{
    fprintf(f, "usage: twctl [global options] <verb> [<sub-verb>] [options]\n\n"
               "global options:\n"
               "  --addr HOST:PORT   server (default 127.0.0.1:50051)\n"
               "  --token T          bearer token (default: $TW_TOKEN)\n"
               "  --tls-ca FILE      verify the server with this CA (enables TLS)\n"
               "  --tls-cert FILE    client certificate for mTLS (with --tls-key)\n"
               "  --tls-key FILE     client key for mTLS\n"
               "  --tls-server-name NAME  name to verify instead of HOST\n"
               "  --json             print responses as proto3 JSON\n"
               "  --timeout DUR      deadline per call: 5, 5s, 500ms (default 10s; streams none)\n"
               "  -h, --help         this help; `twctl <verb> --help` for a verb\n\n"
               "verbs:\n");
    const char *last = "";
    for (size_t i = 0; i < N_VERBS; i++) {
        if (verbs[i].group == NULL) {
            fprintf(f, "  %-22s %s\n", verbs[i].name, verbs[i].summary);
        } else if (strcmp(verbs[i].group, last) != 0) {
            last = verbs[i].group;
            fprintf(f, "  %-22s", last);
            const char *sep = "";
            for (size_t k = i; k < N_VERBS; k++)
                if (verbs[k].group && strcmp(verbs[k].group, last) == 0) {
                    fprintf(f, "%s%s", sep, verbs[k].name);
                    sep = "|";
                }
            fprintf(f, "\n");
        }
    }
    fprintf(f, "\nexit status: the gRPC status code (0 OK, 16 UNAUTHENTICATED, ...); 64 usage;"
               " 70 local failure\n");
}

static void usage_group(FILE *f, const char *group)
{
    fprintf(f, "usage: twctl %s <sub-verb> [options]\n\n", group);
    for (size_t i = 0; i < N_VERBS; i++)
        if (verbs[i].group && strcmp(verbs[i].group, group) == 0)
            fprintf(f, "  %-12s %s\n", verbs[i].name, verbs[i].summary);
}

static const char *type_hint(const ProtobufCFieldDescriptor *f, char *buf, size_t cap)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        return "[=true|false]";
    case PROTOBUF_C_TYPE_STRING:
        return "TEXT";
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        size_t o = 0;
        buf[0] = '\0';
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            o = (size_t)snprintf(buf, cap, "comma list of ");
        for (unsigned i = 0; i < e->n_values && o + 2 < cap; i++) {
            const char *n = e->values[i].name;
            const char *z = e->values[0].name;
            size_t pl = strlen(z) > 11 ? strlen(z) - 11 : 0;
            if (e->values[i].value == 0)
                continue;
            if (strncmp(n, z, pl) == 0)
                n += pl;
            int w = snprintf(buf + o, cap - o, "%s%s", o && buf[o - 1] != ' ' ? "|" : "", n);
            if (w < 0)
                break;
            o += (size_t)w;
            for (char *p = buf + o - strlen(n); p < buf + o && p < buf + cap; p++)
                *p = (char)tolower((unsigned char)*p);
        }
        return buf;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *d = f->descriptor;
        if (strcmp(d->name, "google.protobuf.Timestamp") == 0)
            return "RFC3339|UNIX-SECONDS";
        if (strcmp(d->name, "google.protobuf.Duration") == 0)
            return "SECONDS";
        if (strcmp(d->name, "google.protobuf.BoolValue") == 0)
            return "true|false";
        return "VALUE";
    }
    default:
        return "N";
    }
}

static void option_name(const char *field, char *buf, size_t cap)
{
    size_t i = 0;
    for (; field[i] && i + 1 < cap; i++)
        buf[i] = field[i] == '_' ? '-' : field[i];
    buf[i] = '\0';
}

static void usage_verb(FILE *f, const verb *v)
{
    const twc_method *m = v->path ? twc_method_find(v->path) : NULL;
    fprintf(f, "usage: twctl %s%s%s [options]%s%s\n\n%s\n", v->group ? v->group : "",
            v->group ? " " : "", v->name, v->positional ? " " : "",
            v->positional ? v->positional : "", v->summary);
    if (v->run == run_dev_token) {
        fprintf(f, "\noptions:\n  --sub ID           subject (user id)\n"
                   "  --role user|admin\n  --ttl SECONDS      lifetime (default 3600)\n"
                   "  --key-file PATH    dev key (default $TW_DEV_KEY_FILE or "
                   "./tradewink-dev-key.pem; created if missing)\n"
                   "  --issuer ISS       iss claim (default $TW_JWT_ISSUER or tradewink-dev)\n");
        return;
    }
    if (m == NULL)
        return;
    fprintf(f, "RPC %s (%s -> %s)\n\noptions:\n", m->path, m->input->name, m->output->name);
    for (unsigned i = 0; i < m->input->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &m->input->fields[i];
        char name[64], hint[256];
        if (strcmp(fd->name, "secret") == 0)
            continue;
        option_name(fd->name, name, sizeof name);
        fprintf(f, "  --%-24s %s\n", name, type_hint(fd, hint, sizeof hint));
    }
    if (m->server_streaming)
        fprintf(f, "  --%-24s %s\n", "count", "stop after N messages (default: until ^C)");
    if (strcmp(m->path, "/tradewink.v1.KeyVault/PutBrokerKey") == 0)
        fprintf(f, "\nThe secret is never an option: it is read from the terminal with echo off,"
                   " or from stdin.\n");
    if (v->defaults)
        fprintf(f, "\ndefaults: %s\n", v->defaults);
}

/* ------------------------------------------------------------------ request building */

static int parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, protobuf_c_boolean *out)
{
    static const char *const t[] = {"true", "on", "yes", "1"};
    static const char *const f[] = {"false", "off", "no", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, t[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, f[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* "filled" / "FILLED" / "ORDER_STATUS_FILLED" / "partially-filled" -> the enum number. */
static int parse_enum(const ProtobufCEnumDescriptor *e, const char *s, int *out)
{
    char up[128], full[192];
    size_t i = 0;
    for (; s[i] && i + 1 < sizeof up; i++)
        up[i] = s[i] == '-' ? '_' : (char)toupper((unsigned char)s[i]);
    up[i] = '\0';
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(e, up);
    if (v == NULL && e->n_values > 0) {
        const char *z = e->values[0].name; /* X_UNSPECIFIED gives the prefix X_ */
        size_t zl = strlen(z);
        if (zl > 11 && strcmp(z + zl - 11, "UNSPECIFIED") == 0) {
            snprintf(full, sizeof full, "%.*s%s", (int)(zl - 11), z, up);
            v = protobuf_c_enum_descriptor_get_value_by_name(e, full);
        }
    }
    if (v == NULL || v->value == 0)
        return -1;
    *out = v->value;
    return 0;
}

/* RFC 3339 "2026-01-02T15:04:05Z" (optionally with fraction) or integer unix seconds. */
static int parse_time(const char *s, int64_t *secs, int32_t *nanos)
{
    struct tm tm;
    *nanos = 0;
    if (parse_i64(s, secs) == 0)
        return 0;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL)
        return -1;
    if (*p == '.') {
        int digits = 0;
        int32_t n = 0;
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 9)
                n = n * 10 + (*p - '0');
        for (; digits < 9; digits++)
            n *= 10;
        *nanos = n;
    }
    if (strcmp(p, "Z") != 0)
        return -1;
    *secs = (int64_t)timegm(&tm);
    return 0;
}

static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = calloc(1, d->sizeof_message);
    if (m != NULL)
        protobuf_c_message_init(d, m);
    return m;
}

/* Sets one field of m from text; messages are created as needed. Returns 0 or -1. */
static int set_scalar(const ProtobufCFieldDescriptor *f, void *p, const char *val)
{
    int64_t i64;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        char *copy = strdup(val);
        if (copy == NULL)
            return -1;
        char **slot = p;
        if (*slot != NULL && *slot != protobuf_c_empty_string)
            free(*slot);
        *slot = copy;
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL:
        return parse_bool(val, p);
    case PROTOBUF_C_TYPE_ENUM:
        return parse_enum(f->descriptor, val, p);
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (parse_i64(val, &i64) != 0 || i64 < INT32_MIN || i64 > INT32_MAX)
            return -1;
        *(int32_t *)p = (int32_t)i64;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (parse_i64(val, &i64) != 0 || i64 < 0 || i64 > (int64_t)UINT32_MAX)
            return -1;
        *(uint32_t *)p = (uint32_t)i64;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (parse_i64(val, &i64) != 0)
            return -1;
        *(int64_t *)p = i64;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        char *end = NULL;
        errno = 0;
        unsigned long long u = strtoull(val, &end, 10);
        if (errno != 0 || end == val || *end != '\0' || val[0] == '-')
            return -1;
        *(uint64_t *)p = u;
        return 0;
    }
    default:
        return -1;
    }
}

static int set_field(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const char *val)
{
    char *p = (char *)m + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (f->type != PROTOBUF_C_TYPE_ENUM && f->type != PROTOBUF_C_TYPE_STRING)
            return -1;
        size_t *n = (size_t *)(void *)((char *)m + f->quantifier_offset);
        char *copy = strdup(val);
        int rc = 0;
        if (copy == NULL)
            return -1;
        for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && rc == 0;
             tok = strtok_r(NULL, ",", &save)) {
            size_t esz = f->type == PROTOBUF_C_TYPE_ENUM ? sizeof(int) : sizeof(char *);
            void **arr = (void **)(void *)p;
            char *grown = realloc(*arr, (*n + 1) * esz);
            if (grown == NULL) {
                rc = -1;
                break;
            }
            *arr = grown;
            if (f->type == PROTOBUF_C_TYPE_STRING)
                ((char **)(void *)grown)[*n] = NULL;
            rc = set_scalar(f, grown + *n * esz, tok);
            if (rc == 0)
                (*n)++;
        }
        free(copy);
        return rc;
    }
    if (f->type != PROTOBUF_C_TYPE_MESSAGE)
        return set_scalar(f, p, val);
    const ProtobufCMessageDescriptor *d = f->descriptor;
    ProtobufCMessage **slot = (ProtobufCMessage **)(void *)p;
    if (*slot == NULL && (*slot = new_message(d)) == NULL)
        return -1;
    ProtobufCMessage *sub = *slot;
    if (strcmp(d->name, "google.protobuf.Timestamp") == 0) {
        int64_t s;
        int32_t n;
        const ProtobufCFieldDescriptor *fs =
            protobuf_c_message_descriptor_get_field_by_name(d, "seconds");
        const ProtobufCFieldDescriptor *fn =
            protobuf_c_message_descriptor_get_field_by_name(d, "nanos");
        if (parse_time(val, &s, &n) != 0)
            return -1;
        memcpy((char *)sub + fs->offset, &s, sizeof s);
        memcpy((char *)sub + fn->offset, &n, sizeof n);
        return 0;
    }
    if (strcmp(d->name, "google.protobuf.Duration") == 0) {
        int64_t s;
        const ProtobufCFieldDescriptor *fs =
            protobuf_c_message_descriptor_get_field_by_name(d, "seconds");
        if (parse_i64(val, &s) != 0)
            return -1;
        memcpy((char *)sub + fs->offset, &s, sizeof s);
        return 0;
    }
    if (d->n_fields == 1 && strcmp(d->fields[0].name, "value") == 0) /* wrappers */
        return set_scalar(&d->fields[0], (char *)sub + d->fields[0].offset, val);
    return -1;
}

static int set_by_name(ProtobufCMessage *m, const char *name, const char *val, const char *verbname)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
    if (f == NULL) {
        fprintf(stderr, "twctl %s: unknown option --%s (see --help)\n", verbname, name);
        return EX_USAGE;
    }
    if (strcmp(f->name, "secret") == 0) {
        fprintf(stderr, "twctl: secrets are never accepted on the command line\n");
        return EX_USAGE;
    }
    if (set_field(m, f, val) != 0) {
        char hint[256];
        fprintf(stderr, "twctl %s: bad value for --%s: expected %s\n", verbname, name,
                type_hint(f, hint, sizeof hint));
        return EX_USAGE;
    }
    return 0;
}

/* Reads the broker secret: terminal with echo off, else one line of stdin. Caller wipes and
 * frees. NULL when nothing could be read. */
static char *read_secret(void)
{
    char *line = NULL;
    size_t cap = 0;
    struct termios old, quiet;
    int tty = isatty(STDIN_FILENO);
    if (tty) {
        fprintf(stderr, "broker API secret: ");
        fflush(stderr);
        if (tcgetattr(STDIN_FILENO, &old) != 0)
            return NULL;
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    ssize_t n = getline(&line, &cap, stdin);
    if (tty)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    if (n <= 0) {
        if (line != NULL) {
            explicit_bzero(line, cap);
            free(line);
        }
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

/* ------------------------------------------------------------------ output */

static void print_flat(const ProtobufCMessage *m, const char *prefix, const verb *v, int *rows);

static int is_plain_message(const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_MESSAGE)
        return 0;
    const ProtobufCMessageDescriptor *d = f->descriptor;
    return strncmp(d->name, "google.protobuf.", 16) != 0;
}

static void print_table(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                        const char *columns)
{
    size_t n = *(const size_t *)(const void *)((const char *)m + f->quantifier_offset);
    ProtobufCMessage *const *rows =
        *(ProtobufCMessage *const *const *)(const void *)((const char *)m + f->offset);
    const ProtobufCMessageDescriptor *d = f->descriptor;
    const ProtobufCFieldDescriptor *cols[24];
    size_t nc = 0, width[24];
    char *copy = strdup(columns);
    if (copy == NULL)
        return;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t && nc < 24;
         t = strtok_r(NULL, ",", &save)) {
        const ProtobufCFieldDescriptor *c = protobuf_c_message_descriptor_get_field_by_name(d, t);
        if (c != NULL) {
            cols[nc] = c;
            width[nc++] = strlen(t);
        }
    }
    free(copy);
    char **cells = calloc(n * nc + 1, sizeof *cells);
    if (cells == NULL)
        return;
    for (size_t r = 0; r < n; r++)
        for (size_t c = 0; c < nc; c++) {
            cells[r * nc + c] = twc_field_text(rows[r], cols[c]);
            size_t l = cells[r * nc + c] ? strlen(cells[r * nc + c]) : 0;
            if (l > width[c])
                width[c] = l;
        }
    for (size_t c = 0; c < nc; c++) {
        char up[64];
        size_t i = 0;
        for (; cols[c]->name[i] && i + 1 < sizeof up; i++)
            up[i] = (char)toupper((unsigned char)cols[c]->name[i]);
        up[i] = '\0';
        printf("%-*s%s", (int)width[c], up, c + 1 < nc ? "  " : "\n");
    }
    for (size_t r = 0; r < n; r++)
        for (size_t c = 0; c < nc; c++) {
            const char *s = cells[r * nc + c] ? cells[r * nc + c] : "";
            printf("%-*s%s", (int)width[c], s, c + 1 < nc ? "  " : "\n");
        }
    if (n == 0)
        printf("(none)\n");
    for (size_t i = 0; i < n * nc; i++)
        free(cells[i]);
    free(cells);
}

static void print_flat(const ProtobufCMessage *m, const char *prefix, const verb *v, int *rows)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char key[160];
        if (snprintf(key, sizeof key, "%s%s", prefix, f->name) >= (int)sizeof key)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED && is_plain_message(f)) {
            size_t n = *(const size_t *)(const void *)((const char *)m + f->quantifier_offset);
            if (v->table && strcmp(v->table, f->name) == 0) {
                if (*rows)
                    printf("\n");
                print_table(m, f, v->columns);
                (*rows)++;
                continue;
            }
            ProtobufCMessage *const *items =
                *(ProtobufCMessage *const *const *)(const void *)((const char *)m + f->offset);
            for (size_t k = 0; k < n; k++) {
                char sub[176];
                if (snprintf(sub, sizeof sub, "%s[%zu].", key, k) >= (int)sizeof sub)
                    continue;
                print_flat(items[k], sub, v, rows);
            }
            continue;
        }
        if (f->label != PROTOBUF_C_LABEL_REPEATED && is_plain_message(f)) {
            const ProtobufCMessage *sub =
                *(ProtobufCMessage *const *)(const void *)((const char *)m + f->offset);
            if (sub != NULL) {
                char p2[176];
                if (snprintf(p2, sizeof p2, "%s.", key) >= (int)sizeof p2)
                    continue;
                print_flat(sub, p2, v, rows);
            }
            continue;
        }
        char *text = twc_field_text(m, f);
        printf("%-28s %s\n", key, text ? text : "");
        (*rows)++;
        free(text);
    }
}

static void print_message(const twctl_ctx *ctx, const verb *v, const ProtobufCMessage *m)
{
    if (ctx->json) {
        twc_json_write(stdout, m, TWC_JSON_PRETTY);
        printf("\n");
        return;
    }
    int rows = 0;
    print_flat(m, "", v, &rows);
    if (rows == 0)
        printf("ok\n");
}

/* Stream messages: one compact JSON object, or one line of non-empty key=value pairs. */
static void print_line(FILE *out, const ProtobufCMessage *m, const char *prefix)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char key[160];
        if (snprintf(key, sizeof key, "%s%s", prefix, f->name) >= (int)sizeof key)
            continue;
        if (f->label != PROTOBUF_C_LABEL_REPEATED && is_plain_message(f)) {
            const ProtobufCMessage *sub =
                *(ProtobufCMessage *const *)(const void *)((const char *)m + f->offset);
            if (sub != NULL) {
                char p2[176];
                if (snprintf(p2, sizeof p2, "%s.", key) >= (int)sizeof p2)
                    continue;
                print_line(out, sub, p2);
            }
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED && is_plain_message(f))
            continue;
        char *text = twc_field_text(m, f);
        if (text && text[0] && strcmp(text, "0") != 0 && strcmp(text, "false") != 0)
            fprintf(out, "%s=%s ", key, text);
        free(text);
    }
}

/* ------------------------------------------------------------------ verbs */

static int fail_status(twc_status *st)
{
    fprintf(stderr, "twctl: %s%s%s\n", twc_code_name(st->code), st->message ? ": " : "",
            st->message ? st->message : "");
    if (st->retry_after_ms >= 0)
        fprintf(stderr, "twctl: retry after %lld ms\n", (long long)st->retry_after_ms);
    int code = st->code;
    twc_status_clear(st);
    return code;
}

static int connect_client(twctl_ctx *ctx)
{
    twc_client_opts o = {0};
    o.target = ctx->addr;
    o.token = ctx->token;
    o.tls_ca_file = ctx->tls_ca;
    o.tls_cert_file = ctx->tls_cert;
    o.tls_key_file = ctx->tls_key;
    o.tls_server_name = ctx->tls_server_name;
    o.timeout_ms = ctx->timeout_ms;
    o.user_agent = "twctl";
    twc_status st = twc_client_create(&o, &ctx->client);
    if (st.code != TWC_OK) {
        fail_status(&st);
        return EX_USAGE;
    }
    return 0;
}

static int apply_defaults(ProtobufCMessage *req, const verb *v)
{
    if (v->defaults == NULL)
        return 0;
    char *copy = strdup(v->defaults);
    int rc = copy ? 0 : EX_LOCAL;
    for (char *save = NULL, *t = copy ? strtok_r(copy, ",", &save) : NULL; t && rc == 0;
         t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        rc = set_by_name(req, t, eq + 1, v->name);
    }
    free(copy);
    return rc;
}

/* SetQuotes takes a repeated message, which the field-based option parser cannot fill: one
 * quote from four options. */
static int run_set_quote(twctl_ctx *ctx, const verb *v, int argc, char **argv)
{
    const twc_method *m = twc_method_find(v->path);
    Tradewink__V1__Quote q = TRADEWINK__V1__QUOTE__INIT;
    Tradewink__V1__Quote *qs[1] = {&q};
    Tradewink__V1__SetQuotesRequest req = TRADEWINK__V1__SET_QUOTES_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char **slots[] = {&q.symbol, &q.bid, &q.ask, &q.last};
    const char *names[] = {"--symbol", "--bid", "--ask", "--last"};
    if (m == NULL)
        return EX_LOCAL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage_verb(stdout, v);
            return 0;
        }
        size_t k;
        for (k = 0; k < 4 && strcmp(argv[i], names[k]) != 0; k++)
            ;
        if (k == 4 || i + 1 >= argc) {
            fprintf(stderr, "twctl sim set-quote: bad or incomplete option '%s'\n", argv[i]);
            return EX_USAGE;
        }
        *slots[k] = argv[++i];
    }
    for (size_t k = 0; k < 4; k++) {
        if (*slots[k] == NULL || **slots[k] == '\0') {
            fprintf(stderr, "twctl sim set-quote: missing %s\n", names[k]);
            return EX_USAGE;
        }
    }
    req.n_quotes = 1;
    req.quotes = qs;
    int rc = connect_client(ctx);
    if (rc != 0)
        return rc;
    twc_status st = m->invoke(ctx->client, &req.base, &resp, NULL);
    if (st.code != TWC_OK)
        return fail_status(&st);
    print_message(ctx, v, resp);
    twc_message_free(resp);
    return 0;
}

static int run_rpc(twctl_ctx *ctx, const verb *v, int argc, char **argv)
{
    const twc_method *m = twc_method_find(v->path);
    const ProtobufCFieldDescriptor *sf = NULL;
    ProtobufCMessage *req = NULL, *resp = NULL;
    char *secret = NULL;
    long count = -1;
    int rc = 0;
    const char *positional = NULL;

    if (m == NULL) {
        fprintf(stderr, "twctl: %s is not in this build's contracts\n", v->path);
        return EX_LOCAL;
    }
    req = new_message(m->input);
    if (req == NULL)
        return EX_LOCAL;
    if ((rc = apply_defaults(req, v)) != 0)
        goto out;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage_verb(stdout, v);
            goto out;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (v->positional == NULL || positional != NULL) {
                fprintf(stderr, "twctl %s: unexpected argument '%s'\n", v->name, a);
                rc = EX_USAGE;
                goto out;
            }
            positional = a;
            continue;
        }
        char name[64];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (nl == 0 || nl >= sizeof name) {
            fprintf(stderr, "twctl %s: bad option '%s'\n", v->name, a);
            rc = EX_USAGE;
            goto out;
        }
        for (size_t k = 0; k < nl; k++)
            name[k] = a[2 + k] == '-' ? '_' : a[2 + k];
        name[nl] = '\0';
        if (strcmp(name, "tif") == 0)
            snprintf(name, sizeof name, "time_in_force");
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field_by_name(m->input, name);
        if (eq) {
            val = eq + 1;
        } else if (fd && fd->type == PROTOBUF_C_TYPE_BOOL) {
            protobuf_c_boolean b;
            val = (i + 1 < argc && parse_bool(argv[i + 1], &b) == 0) ? argv[++i] : "true";
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "twctl %s: --%.*s needs a value\n", v->name, (int)nl, a + 2);
            rc = EX_USAGE;
            goto out;
        }
        if (m->server_streaming && strcmp(name, "count") == 0) {
            char *end = NULL;
            count = strtol(val, &end, 10);
            if (end == val || *end != '\0' || count < 1) {
                fprintf(stderr, "twctl %s: --count needs a positive number\n", v->name);
                rc = EX_USAGE;
                goto out;
            }
            continue;
        }
        if ((rc = set_by_name(req, name, val, v->name)) != 0)
            goto out;
    }
    if (v->positional != NULL) {
        if (positional == NULL) {
            const ProtobufCFieldDescriptor *pf =
                protobuf_c_message_descriptor_get_field_by_name(m->input, v->positional);
            const char *cur = pf ? *(char **)(void *)((char *)req + pf->offset) : NULL;
            if (cur == NULL || cur[0] == '\0') {
                fprintf(stderr, "twctl %s %s: missing %s\n", v->group ? v->group : "", v->name,
                        v->positional);
                rc = EX_USAGE;
                goto out;
            }
        } else if ((rc = set_by_name(req, v->positional, positional, v->name)) != 0) {
            goto out;
        }
    }
    const ProtobufCFieldDescriptor *client_id =
        protobuf_c_message_descriptor_get_field_by_name(m->input, "client_order_id");
    if (client_id != NULL) {
        char **slot = (char **)(void *)((char *)req + client_id->offset);
        if (*slot == NULL || (*slot)[0] == '\0') {
            char gen[64];
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            snprintf(gen, sizeof gen, "twctl-%lld-%ld-%d", (long long)ts.tv_sec, ts.tv_nsec / 1000,
                     (int)getpid());
            if ((rc = set_by_name(req, "client_order_id", gen, v->name)) != 0)
                goto out;
        }
    }
    sf = protobuf_c_message_descriptor_get_field_by_name(m->input, "secret");
    if (sf != NULL) {
        secret = read_secret();
        if (secret == NULL || secret[0] == '\0') {
            fprintf(stderr, "twctl: no secret given (type it at the prompt or pipe it on stdin)\n");
            rc = EX_USAGE;
            goto out;
        }
        *(char **)(void *)((char *)req + sf->offset) = secret; /* borrowed until out: */
    }

    if ((rc = connect_client(ctx)) != 0)
        goto out;
    if (m->server_streaming) {
        twc_stream *s = NULL;
        twc_call_opts o = {0};
        o.timeout_ms = ctx->timeout_ms > 0 ? ctx->timeout_ms : -1;
        twc_status st = m->open(ctx->client, req, &s, &o);
        if (st.code != TWC_OK) {
            rc = fail_status(&st);
            goto out;
        }
        ProtobufCMessage *msg = NULL;
        long seen = 0;
        while ((count < 0 || seen < count) && twc_stream_next(s, &msg) == 1) {
            if (ctx->json)
                twc_json_write(stdout, msg, 0);
            else
                print_line(stdout, msg, "");
            printf("\n");
            fflush(stdout);
            twc_message_free(msg);
            seen++;
        }
        if (count >= 0 && seen >= count) {
            rc = 0;
        } else {
            twc_status fin = *twc_stream_status(s);
            fin.message = fin.message ? strdup(fin.message) : NULL;
            rc = fin.code == TWC_OK ? 0 : fail_status(&fin);
        }
        twc_stream_close(s);
        goto out;
    }
    twc_status st = m->invoke(ctx->client, req, &resp, NULL);
    if (st.code != TWC_OK) {
        rc = fail_status(&st);
        goto out;
    }
    print_message(ctx, v, resp);
out:
    if (secret != NULL) {
        explicit_bzero(secret, strlen(secret));
        *(char **)(void *)((char *)req + sf->offset) = (char *)(uintptr_t)protobuf_c_empty_string;
        free(secret);
    }
    twc_message_free(resp);
    if (req != NULL)
        protobuf_c_message_free_unpacked(req, NULL);
    return rc;
}

/* ------------------------------------------------------------------ offline checkpoint check */

/* The checkpoint fields audit.proto's AuditCheckpoint defines. */
typedef struct {
    char user_id[24];
    unsigned long long seq, key_version;
    long long time_us;
    unsigned char hash[32], sig[64];
} ckpt;

static int b64_exact(const char *in, unsigned char *out, size_t want)
{
    size_t len = in ? strlen(in) : 0;
    unsigned char buf[96];
    if (len != 4 * ((want + 2) / 3) || len > 4 * sizeof(buf) / 3)
        return -1;
    int n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len);
    size_t pad = (len && in[len - 1] == '=') + (len > 1 && in[len - 2] == '=');
    if (n < 0 || (size_t)n - pad != want)
        return -1;
    memcpy(out, buf, want);
    return 0;
}

/* RFC 3339 UTC ("...T...Z", 0-9 fraction digits) to microseconds. */
static int rfc3339_us(const char *s, long long *out)
{
    struct tm tm = {0};
    const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    long long frac = 0;
    int digits = 0;
    if (!p)
        return -1;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 6)
                frac = frac * 10 + (*p - '0');
    for (; digits < 6; digits++)
        frac *= 10;
    if (strcmp(p, "Z") != 0)
        return -1;
    *out = (long long)timegm(&tm) * 1000000 + frac;
    return 0;
}

/* A checkpoint from FILE: the "audit_checkpoint" log line, or `twctl --json audit checkpoint`
 * output (a CreateCheckpointResponse, or a bare AuditCheckpoint), in proto3 JSON. */
static int read_checkpoint(const char *path, ckpt *cp)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr), *o;
    int rc = -1;
    if (!root) {
        fprintf(stderr, "twctl: %s: %s\n", path, jerr.text);
        return -1;
    }
    o = json_object_get(root, "checkpoint") ? json_object_get(root, "checkpoint") : root;
    if (json_object_get(o, "ed25519_b64")) { /* the log line */
        const char *hex = json_string_value(json_object_get(o, "hash_hex"));
        json_t *uid = json_object_get(o, "user_id");
        if (!json_is_integer(uid) || !hex || strlen(hex) != 64)
            goto out;
        snprintf(cp->user_id, sizeof cp->user_id, "%lld", (long long)json_integer_value(uid));
        for (int i = 0; i < 32; i++)
            if (sscanf(hex + 2 * i, "%2hhx", &cp->hash[i]) != 1)
                goto out;
        cp->seq = (unsigned long long)json_integer_value(json_object_get(o, "sequence"));
        cp->time_us = json_integer_value(json_object_get(o, "time_us"));
        cp->key_version = (unsigned long long)json_integer_value(json_object_get(o, "key_version"));
        if (b64_exact(json_string_value(json_object_get(o, "ed25519_b64")), cp->sig, 64) != 0)
            goto out;
    } else { /* proto3 JSON */
        const char *uid = json_string_value(json_object_get(o, "userId"));
        const char *seq = json_string_value(json_object_get(o, "sequence"));
        if (!uid || strlen(uid) >= sizeof cp->user_id || !seq || parse_i64(seq, &(int64_t){0}) ||
            b64_exact(json_string_value(json_object_get(o, "hash")), cp->hash, 32) != 0 ||
            b64_exact(json_string_value(json_object_get(o, "signature")), cp->sig, 64) != 0 ||
            rfc3339_us(json_string_value(json_object_get(o, "time")), &cp->time_us) != 0)
            goto out;
        snprintf(cp->user_id, sizeof cp->user_id, "%s", uid);
        cp->seq = strtoull(seq, NULL, 10);
        cp->key_version = (unsigned long long)json_integer_value(json_object_get(o, "keyVersion"));
    }
    rc = cp->seq >= 1 && cp->key_version >= 1 ? 0 : -1;
out:
    if (rc != 0)
        fprintf(stderr, "twctl: %s: not an audit checkpoint\n", path);
    json_decref(root);
    return rc;
}

static size_t put_field(unsigned char *buf, size_t at, const void *data, size_t len)
{
    for (int i = 0; i < 8; i++)
        buf[at + (size_t)i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    memcpy(buf + at + 8, data, len);
    return at + 8 + len;
}

/* The signed bytes, as audit.proto's AuditCheckpoint.signature comment defines them. */
static size_t checkpoint_message(const ckpt *cp, unsigned char *buf)
{
    static const char domain[] = "tradewink-audit-checkpoint-v1";
    char n[3][24];
    snprintf(n[0], sizeof n[0], "%llu", cp->seq);
    snprintf(n[1], sizeof n[1], "%lld", cp->time_us);
    snprintf(n[2], sizeof n[2], "%llu", cp->key_version);
    size_t at = put_field(buf, 0, domain, sizeof domain - 1);
    at = put_field(buf, at, cp->user_id, strlen(cp->user_id));
    at = put_field(buf, at, n[0], strlen(n[0]));
    at = put_field(buf, at, cp->hash, 32);
    at = put_field(buf, at, n[1], strlen(n[1]));
    return put_field(buf, at, n[2], strlen(n[2]));
}

/* Exit 0 when the checkpoint's signature verifies under the listed key of its version, 65
 * when it does not (or no key of that version is listed), 64/70 on usage/local errors. */
static int verify_checkpoint_offline(const char *cp_path, const char *keys_path)
{
    ckpt cp = {0};
    unsigned char msg[256], pub[32];
    char line[256];
    int found = 0, ok = 0;
    if (read_checkpoint(cp_path, &cp) != 0)
        return EX_DATAERR;
    FILE *f = fopen(keys_path, "r");
    if (!f) {
        fprintf(stderr, "twctl: %s: %s\n", keys_path, strerror(errno));
        return EX_LOCAL;
    }
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long long v;
        char b64[128];
        if (sscanf(line, "v%llu:%127s", &v, b64) == 2 && v == cp.key_version &&
            b64_exact(b64, pub, 32) == 0)
            found = 1;
    }
    fclose(f);
    if (!found) {
        fprintf(stderr, "twctl: no public key v%llu in %s\n", cp.key_version, keys_path);
        return EX_DATAERR;
    }
    size_t n = checkpoint_message(&cp, msg);
    EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, sizeof pub);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ok = key && md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1 &&
         EVP_DigestVerify(md, cp.sig, sizeof cp.sig, msg, n) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    if (!ok) {
        fprintf(stderr, "twctl: checkpoint signature does NOT verify (altered or forged)\n");
        return EX_DATAERR;
    }
    printf("checkpoint ok: chain %s sequence %llu signed by key v%llu\n", cp.user_id, cp.seq,
           cp.key_version);
    return 0;
}

static int run_audit_verify(twctl_ctx *ctx, const verb *v, int argc, char **argv)
{
    const char *cp_path = NULL, *keys_path = NULL;
    for (int i = 0; i < argc; i++) {
        const char **slot = strcmp(argv[i], "--checkpoint") == 0    ? &cp_path
                            : strcmp(argv[i], "--public-keys") == 0 ? &keys_path
                                                                    : NULL;
        if (slot) {
            if (i + 1 >= argc) {
                fprintf(stderr, "twctl audit verify: %s needs a FILE\n", argv[i]);
                return EX_USAGE;
            }
            *slot = argv[++i];
        }
    }
    if (!cp_path && !keys_path)
        return run_rpc(ctx, v, argc, argv);
    if (!cp_path || !keys_path) {
        fprintf(stderr, "twctl audit verify: --checkpoint FILE and --public-keys FILE (the "
                        "output of tradewinkd --audit-public-keys) go together\n");
        return EX_USAGE;
    }
    return verify_checkpoint_offline(cp_path, keys_path);
}

static int run_dev_token(twctl_ctx *ctx, const verb *v, int argc, char **argv)
{
    const char *sub = NULL, *role = NULL, *ttl_s = "3600", *issuer = getenv("TW_JWT_ISSUER");
    const char *key_file = getenv("TW_DEV_KEY_FILE");
    char err[256];
    char *tok = NULL;
    int64_t ttl;
    (void)ctx;
    for (int i = 0; i < argc; i++) {
        const char **slot = NULL;
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage_verb(stdout, v);
            return 0;
        }
        if (strcmp(a, "--sub") == 0)
            slot = &sub;
        else if (strcmp(a, "--role") == 0)
            slot = &role;
        else if (strcmp(a, "--ttl") == 0)
            slot = &ttl_s;
        else if (strcmp(a, "--key-file") == 0)
            slot = &key_file;
        else if (strcmp(a, "--issuer") == 0)
            slot = &issuer;
        if (slot == NULL || i + 1 >= argc) {
            fprintf(stderr, "twctl dev-token: bad or incomplete option '%s' (see --help)\n", a);
            return EX_USAGE;
        }
        *slot = argv[++i];
    }
    auth_role r;
    if (role != NULL && strcmp(role, "user") == 0)
        r = AUTH_ROLE_USER;
    else if (role != NULL && strcmp(role, "admin") == 0)
        r = AUTH_ROLE_ADMIN;
    else {
        fprintf(stderr, "twctl dev-token: --role user|admin is required\n");
        return EX_USAGE;
    }
    if (sub == NULL || sub[0] == '\0') {
        fprintf(stderr, "twctl dev-token: --sub ID is required\n");
        return EX_USAGE;
    }
    if (parse_i64(ttl_s, &ttl) != 0 || ttl < 1 || ttl > 31 * 86400) {
        fprintf(stderr, "twctl dev-token: --ttl must be 1..2678400 seconds\n");
        return EX_USAGE;
    }
    if (key_file == NULL || key_file[0] == '\0')
        key_file = "./tradewink-dev-key.pem";
    auth_devkey *k = auth_devkey_load_or_create(key_file, err, sizeof err);
    if (k == NULL) {
        fprintf(stderr, "twctl dev-token: %s\n", err);
        return EX_LOCAL;
    }
    struct timespec now; /* exact: time(NULL) reads the coarse clock, up to a tick behind */
    clock_gettime(CLOCK_REALTIME, &now);
    int mr = auth_devkey_mint(k, issuer && issuer[0] ? issuer : NULL, sub, r, ttl,
                              (int64_t)now.tv_sec, &tok);
    auth_devkey_destroy(k);
    if (mr != 0) {
        fprintf(stderr, "twctl dev-token: cannot mint a token for that subject\n");
        return EX_USAGE;
    }
    printf("%s\n", tok);
    explicit_bzero(tok, strlen(tok));
    free(tok);
    return 0;
}

/* ------------------------------------------------------------------ main */

static int parse_duration_ms(const char *s, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || v <= 0)
        return -1;
    if (strcmp(end, "ms") == 0)
        *out = (int64_t)v;
    else if (*end == '\0' || strcmp(end, "s") == 0)
        *out = (int64_t)(v * 1000);
    else if (strcmp(end, "m") == 0)
        *out = (int64_t)(v * 60000);
    else
        return -1;
    return *out > 0 ? 0 : -1;
}

/* A secret must never be typed on a command line, where ps and shell history keep it. */
static int argv_has_secret(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        while (*a == '-')
            a++;
        if (a != argv[i] && (strncmp(a, "secret", 6) == 0 || strstr(a, "-secret") != NULL ||
                             strstr(a, "_secret") != NULL))
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    twctl_ctx ctx = {0};
    int i = 1, rc;

    if (argv_has_secret(argc, argv)) {
        fprintf(stderr, "twctl: secrets are never accepted on the command line; `twctl keys put`"
                        " reads the secret from a prompt or from stdin\n");
        return EX_USAGE;
    }
    ctx.addr = TWC_DEFAULT_TARGET;
    ctx.token = getenv("TW_TOKEN");
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage_top(stdout);
            return 0;
        }
        if (strcmp(a, "--json") == 0) {
            ctx.json = 1;
            continue;
        }
        if (strcmp(a, "--addr") == 0)
            slot = &ctx.addr;
        else if (strcmp(a, "--token") == 0)
            slot = &ctx.token;
        else if (strcmp(a, "--tls-ca") == 0)
            slot = &ctx.tls_ca;
        else if (strcmp(a, "--tls-cert") == 0)
            slot = &ctx.tls_cert;
        else if (strcmp(a, "--tls-key") == 0)
            slot = &ctx.tls_key;
        else if (strcmp(a, "--tls-server-name") == 0)
            slot = &ctx.tls_server_name;
        else if (strcmp(a, "--timeout") == 0) {
            if (i + 1 >= argc || parse_duration_ms(argv[i + 1], &ctx.timeout_ms) != 0) {
                fprintf(stderr, "twctl: --timeout needs a duration like 5, 5s or 500ms\n");
                return EX_USAGE;
            }
            i++;
            continue;
        }
        if (slot == NULL || i + 1 >= argc) {
            fprintf(stderr, "twctl: unknown or incomplete global option '%s'\n", a);
            usage_top(stderr);
            return EX_USAGE;
        }
        *slot = argv[++i];
    }
    if (i >= argc) {
        usage_top(stderr);
        return EX_USAGE;
    }
    const char *word = argv[i++];
    const verb *v = NULL;
    int is_group = 0;
    for (size_t k = 0; k < N_VERBS && v == NULL; k++) {
        if (verbs[k].group == NULL && strcmp(verbs[k].name, word) == 0)
            v = &verbs[k];
        else if (verbs[k].group != NULL && strcmp(verbs[k].group, word) == 0)
            is_group = 1;
    }
    if (v == NULL && is_group) {
        if (i >= argc || strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage_group(i >= argc ? stderr : stdout, word);
            return i >= argc ? EX_USAGE : 0;
        }
        for (size_t k = 0; k < N_VERBS && v == NULL; k++)
            if (verbs[k].group && strcmp(verbs[k].group, word) == 0 &&
                strcmp(verbs[k].name, argv[i]) == 0)
                v = &verbs[k];
        if (v == NULL) {
            fprintf(stderr, "twctl %s: unknown sub-verb '%s'\n", word, argv[i]);
            usage_group(stderr, word);
            return EX_USAGE;
        }
        i++;
    }
    if (v == NULL) {
        fprintf(stderr, "twctl: unknown verb '%s'\n", word);
        usage_top(stderr);
        return EX_USAGE;
    }
    rc = v->run(&ctx, v, argc - i, argv + i);
    twc_client_destroy(ctx.client);
    return rc;
}
