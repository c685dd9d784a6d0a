/* master.c - versioned master secrets: parsing TW_VAULT_MASTER_KEYS and the dev-mode key file.
 *
 * Format: "v<N>:<base64>[,v<N>:<base64>...]", newest first. Versions are positive decimal
 * integers without sign or leading zeros, strictly descending (so "newest first" is checked,
 * not assumed, and duplicates are impossible); each key decodes (standard or url-safe
 * alphabet, padding optional) to at least 32 bytes. Whitespace around entries is ignored.
 * Error messages name the entry by position and, once it parsed, by version; they never copy
 * any part of the input, which may be key material.
 * Decoded keys live in secure memory (smem.c) and are wiped on destroy.
 */
#include "vault/vault_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MK_MAX_ENTRIES 64
#define MK_MAX_KEY_B64 1024
#define MK_FILE_MAX 65536

struct mk_entry {
    int version;
    unsigned char *key; /* secure memory */
    size_t len;
};

struct vault_masterkeys {
    size_t count;
    struct mk_entry e[MK_MAX_ENTRIES];
};

static void set_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || err_len == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parses "v<N>" in s[0..n) into *version; 0 ok, -1 not a valid version. */
static int parse_version(const char *s, size_t n, int *version)
{
    long v = 0;
    size_t i;

    if (n < 2 || (s[0] != 'v' && s[0] != 'V') || s[1] == '0' || n > 1 + 9)
        return -1;
    for (i = 1; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *version = (int)v;
    return 0;
}

void vault_masterkeys_destroy(vault_masterkeys *mk)
{
    size_t i;
    if (mk == NULL)
        return;
    for (i = 0; i < mk->count; i++)
        vault_smem_free(mk->e[i].key, mk->e[i].len);
    OPENSSL_cleanse(mk, sizeof(*mk));
    free(mk);
}

vault_rc vault_masterkeys_parse(const char *spec, size_t len, vault_masterkeys **out, char *err,
                                size_t err_len)
{
    vault_masterkeys *mk = NULL;
    unsigned char buf[MK_MAX_KEY_B64 / 4 * 3 + 3];
    size_t pos = 0, idx = 0;
    vault_rc rc = VAULT_ERR_MASTER_KEY;

    set_err(err, err_len, "ok");
    if (spec == NULL || out == NULL) {
        set_err(err, err_len, "master keys: missing");
        return VAULT_ERR_INVALID_ARG;
    }
    mk = vault_calloc(1, sizeof(*mk));
    if (mk == NULL) {
        rc = VAULT_ERR_NOMEM;
        goto out;
    }
    while (pos <= len) {
        size_t start = pos, end, b, colon, klen = 0;
        int version = 0;

        while (pos < len && spec[pos] != ',')
            pos++;
        end = pos;
        pos++; /* skip the comma (or step past the end) */
        idx++;
        while (start < end && is_space(spec[start]))
            start++;
        while (end > start && is_space(spec[end - 1]))
            end--;
        if (start == end) {
            set_err(err, err_len, "master keys: entry %zu is empty", idx);
            goto out;
        }
        if (mk->count == MK_MAX_ENTRIES) {
            set_err(err, err_len, "master keys: more than %d entries", MK_MAX_ENTRIES);
            goto out;
        }
        for (colon = start; colon < end && spec[colon] != ':'; colon++)
            ;
        if (colon == end || parse_version(spec + start, colon - start, &version) != 0) {
            set_err(err, err_len,
                    "master keys: entry %zu must look like v<N>:<base64> with N a positive "
                    "integer",
                    idx);
            goto out;
        }
        for (b = 0; b < mk->count; b++) {
            if (mk->e[b].version == version) {
                set_err(err, err_len, "master keys: entry %zu (v%d): duplicate version", idx,
                        version);
                goto out;
            }
        }
        if (mk->count > 0 && version > mk->e[mk->count - 1].version) {
            set_err(err, err_len,
                    "master keys: entry %zu (v%d): versions must be listed newest first "
                    "(descending)",
                    idx, version);
            goto out;
        }
        b = colon + 1;
        if (end - b > MK_MAX_KEY_B64 ||
            vault_b64_decode(spec + b, end - b, 2, 0, buf, &klen) != 0) {
            set_err(err, err_len, "master keys: entry %zu (v%d): key is not valid base64", idx,
                    version);
            goto out;
        }
        if (klen < VAULT_MASTER_MIN_BYTES) {
            set_err(err, err_len,
                    "master keys: entry %zu (v%d): key decodes to %zu bytes, need at least %d", idx,
                    version, klen, VAULT_MASTER_MIN_BYTES);
            goto out;
        }
        mk->e[mk->count].key = vault_smem_alloc(klen);
        if (mk->e[mk->count].key == NULL) {
            rc = VAULT_ERR_NOMEM;
            set_err(err, err_len, "master keys: out of secure memory");
            goto out;
        }
        memcpy(mk->e[mk->count].key, buf, klen);
        mk->e[mk->count].len = klen;
        mk->e[mk->count].version = version;
        mk->count++;
        OPENSSL_cleanse(buf, sizeof(buf));
    }
    *out = mk;
    mk = NULL;
    rc = VAULT_OK;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    vault_masterkeys_destroy(mk);
    return rc;
}

size_t vault_masterkeys_count(const vault_masterkeys *mk)
{
    return mk != NULL ? mk->count : 0;
}

int vault_masterkeys_version(const vault_masterkeys *mk, size_t i)
{
    return mk != NULL && i < mk->count ? mk->e[i].version : 0;
}

const unsigned char *vault_masterkeys_lookup(const vault_masterkeys *mk, int version, size_t *len)
{
    size_t i;
    if (mk == NULL)
        return NULL;
    for (i = 0; i < mk->count; i++) {
        if (mk->e[i].version == version) {
            if (len != NULL)
                *len = mk->e[i].len;
            return mk->e[i].key;
        }
    }
    return NULL;
}

/* Creates path with one fresh key. 0 created, 1 already exists, -1 error (err set). */
static int create_key_file(const char *path, char *err, size_t err_len)
{
    unsigned char key[32];
    char line[3 + 44 + 2];
    size_t n, off = 0;
    int fd = -1, ret = -1;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return 1;
        set_err(err, err_len, "master key file %s: cannot create: %s", path, strerror(errno));
        return -1;
    }
    if (RAND_bytes(key, sizeof(key)) != 1) {
        set_err(err, err_len, "master key file %s: random generator failed", path);
        goto out;
    }
    memcpy(line, "v1:", 3);
    vault_b64_encode(key, sizeof(key), 0, line + 3);
    n = strlen(line);
    line[n++] = '\n';
    while (off < n) {
        ssize_t w = write(fd, line + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            set_err(err, err_len, "master key file %s: write failed", path);
            goto out;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        set_err(err, err_len, "master key file %s: fsync failed", path);
        goto out;
    }
    ret = 0;
out:
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(line, sizeof(line));
    if (fd >= 0)
        (void)close(fd);
    if (ret != 0)
        (void)unlink(path);
    return ret;
}

vault_rc vault_masterkeys_load_or_create(const char *path, vault_masterkeys **out, char *err,
                                         size_t err_len)
{
    char *buf = NULL;
    size_t n = 0;
    struct stat st;
    int fd = -1, created;
    vault_rc rc = VAULT_ERR_IO;

    if (path == NULL || out == NULL)
        return VAULT_ERR_INVALID_ARG;
    memset(&st, 0, sizeof(st));
    created = create_key_file(path, err, err_len);
    if (created < 0)
        return VAULT_ERR_IO;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, err_len, "master key file %s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        set_err(err, err_len, "master key file %s: cannot stat", path);
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        set_err(err, err_len,
                "master key file %s: must be a regular file owned by this user with mode 0600 "
                "(found %03o); refusing to use it",
                path, (unsigned)(st.st_mode & 0777));
        rc = VAULT_ERR_PERMISSION;
        goto out;
    }
    if (st.st_size > MK_FILE_MAX) {
        set_err(err, err_len, "master key file %s: too large", path);
        goto out;
    }
    buf = vault_smem_alloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = VAULT_ERR_NOMEM;
        goto out;
    }
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    rc = vault_masterkeys_parse(buf, n, out, err, err_len);
out:
    vault_smem_free(buf, buf != NULL ? (size_t)st.st_size + 1 : 0);
    if (fd >= 0)
        (void)close(fd);
    return rc;
}
