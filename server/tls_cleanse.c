/*
 * Every TLS connection in tradewinkd cleanses its received plaintext (issue 20 part 2).
 *
 * OpenSSL decrypts a record in place in the connection's read buffer and, by default, leaves
 * the plaintext there after SSL_read copied it out, until a later record happens to overwrite
 * it; on a long-lived gRPC connection that is a PutBrokerKey request, secret included, for as
 * long as the client stays connected. SSL_OP_CLEANSE_PLAINTEXT makes OpenSSL wipe it as soon
 * as it has been handed over. grpc 1.51 creates its SSL objects itself and offers no way to
 * set options on them, and OpenSSL's configuration file has no name for this option, so the
 * executable defines SSL_new: grpc's (and libcurl's) calls bind to this definition, which
 * creates the object with libssl's own SSL_new and sets the option on it.
 *
 * Linked into the tradewinkd executable only, in every build (AddressSanitizer does not care
 * about SSL_new). Cost: one OPENSSL_cleanse of each received record's plaintext.
 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>

#include <openssl/ssl.h>

typedef SSL *(*ssl_new_fn)(SSL_CTX *ctx);

static _Atomic(ssl_new_fn) libssl_new;

SSL *SSL_new(SSL_CTX *ctx)
{
    ssl_new_fn fn = atomic_load_explicit(&libssl_new, memory_order_acquire);
    if (!fn) {
        /* POSIX dlsym returns an object pointer for a function: the conversion is the
         * documented way through (a union would hide nothing more). */
        void *sym = dlsym(RTLD_NEXT, "SSL_new");
        if (!sym)
            return NULL; /* libssl not loaded: SSL_new cannot have been meant */
        *(void **)&fn = sym;
        atomic_store_explicit(&libssl_new, fn, memory_order_release);
    }
    SSL *ssl = fn(ctx);
    if (ssl)
        SSL_set_options(ssl, SSL_OP_CLEANSE_PLAINTEXT);
    return ssl;
}
