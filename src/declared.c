/* declared.c: sidecar parsing and agreement checks. */
#include "config.h"

#include "declared.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Sidecars are flat property maps: nesting beyond this is not one. */
#define SIF_SIDECAR_DEPTH 8

/* A property from the top level or from "properties"; present in both, it
 * must say the same thing in both.  0 with *out NULL when absent. */
static int sif_prop(struct json_object *top, struct json_object *props, const char *key, struct json_object **out,
                    struct sif_verdict *v)
{
    struct json_object *a = NULL, *b = NULL;

    json_object_object_get_ex(top, key, &a);
    if (props)
        json_object_object_get_ex(props, key, &b);
    if (a && b && !json_object_equal(a, b))
        return sif_reject(v, -EINVAL, "declared.invalid", "the sidecar gives %s twice, with different values", key);
    *out = a ? a : b;
    return 0;
}

/* A string property: absent is fine, any other type is not. */
static int sif_prop_str(struct json_object *top, struct json_object *props, const char *key, char *out,
                        size_t cap, struct sif_verdict *v)
{
    struct json_object *m = NULL;
    int r = sif_prop(top, props, key, &m, v);

    if (r || !m)
        return r;
    if (!json_object_is_type(m, json_type_string) || (size_t)json_object_get_string_len(m) >= cap)
        return sif_reject(v, -EINVAL, "declared.invalid", "sidecar property %s is not a short string", key);
    /* "k\u0000../x" would otherwise be read as "k" */
    if (memchr(json_object_get_string(m), 0, (size_t)json_object_get_string_len(m)))
        return sif_reject(v, -EINVAL, "declared.invalid", "sidecar property %s holds a NUL character", key);
    snprintf(out, cap, "%s", json_object_get_string(m));
    return 0;
}

int sif_declared_parse(const char *buf, size_t len, struct sif_declared *d, struct sif_verdict *v)
{
    struct json_tokener *tok = json_tokener_new_ex(SIF_SIDECAR_DEPTH);
    struct json_object *root = NULL, *props = NULL, *m = NULL;
    int r = 0;

    memset(d, 0, sizeof(*d));
    if (!tok)
        return sif_reject(v, -ENOMEM, "declared.invalid", "out of memory parsing the sidecar");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    if (len <= INT32_MAX)
        root = json_tokener_parse_ex(tok, buf, (int)len);
    if (!root || json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != len ||
        !json_object_is_type(root, json_type_object)) {
        r = sif_reject(v, -EINVAL, "declared.invalid", "the sidecar is not one JSON object");
        goto out;
    }
    if (json_object_object_get_ex(root, "properties", &props) && !json_object_is_type(props, json_type_object)) {
        r = sif_reject(v, -EINVAL, "declared.invalid", "the sidecar's properties is not an object");
        goto out;
    }
    d->present = true;
    if ((r = sif_prop_str(root, props, "disk_format", d->disk_format, sizeof(d->disk_format), v)) ||
        (r = sif_prop_str(root, props, "os_encrypt_format", d->encrypt_format, sizeof(d->encrypt_format), v)) ||
        (r = sif_prop_str(root, props, "os_encrypt_key_id", d->key_id, sizeof(d->key_id), v)))
        goto out;
    if ((r = sif_prop(root, props, "os_decrypt_size", &m, v)))
        goto out;
    if (m) {
        int64_t n = -1;

        /* Glance stores properties as strings; accept a number too. */
        if (json_object_is_type(m, json_type_int)) {
            n = json_object_get_int64(m);
        } else if (json_object_is_type(m, json_type_string)) {
            const char *s = json_object_get_string(m);
            char *end = NULL;

            if (*s >= '0' && *s <= '9') {
                errno = 0;
                n = (int64_t)strtoll(s, &end, 10);
                if (errno || *end)
                    n = -1;
            }
        }
        if (n < 0) {
            r = sif_reject(v, -EINVAL, "declared.invalid", "sidecar property os_decrypt_size is not a size");
            goto out;
        }
        d->has_decrypt_size = true;
        d->decrypt_size = (uint64_t)n;
    }
out:
    json_object_put(root);
    json_tokener_free(tok);
    return r;
}

int sif_declared_load(int dirfd, const char *name, struct sif_declared *d, struct sif_verdict *v)
{
    char path[512];
    struct stat st;
    char *buf;
    int fd, r;

    memset(d, 0, sizeof(*d));
    if ((size_t)snprintf(path, sizeof(path), "%s.json", name) >= sizeof(path))
        return 0;
    fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        /* No sidecar; a name too long to have one cannot have one. */
        if (errno == ENOENT || errno == ENAMETOOLONG)
            return 0;
        return sif_reject(v, -errno, "declared.invalid", "cannot open the sidecar %s (%s)", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > SIF_SIDECAR_MAX) {
        close(fd);
        return sif_reject(v, -EINVAL, "declared.invalid", "the sidecar is not a regular file of at most %u bytes",
                          SIF_SIDECAR_MAX);
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return sif_reject(v, -ENOMEM, "declared.invalid", "out of memory reading the sidecar");
    }
    r = pread(fd, buf, (size_t)st.st_size, 0) == st.st_size ? 0 : -EIO;
    close(fd);
    if (r)
        r = sif_reject(v, r, "declared.invalid", "cannot read the sidecar");
    else
        r = sif_declared_parse(buf, (size_t)st.st_size, d, v);
    free(buf);
    return r;
}

int sif_declared_check_format(const struct sif_declared *d, const char *outer, struct sif_verdict *v)
{
    bool qcow2 = !strcmp(outer, "qcow2+luks");
    /* unencrypted images (served only by policy): "raw" or "qcow2" */
    bool plain = !strcmp(outer, "raw") || !strcmp(outer, "qcow2");
    const char *want_disk = plain ? outer : qcow2 ? "qcow2" : "luks";
    const char *want_enc = !strcmp(outer, "luks2") ? "LUKSv2" : "LUKSv1";

    if (!d->present)
        return 0;
    if (plain && d->encrypt_format[0])
        return sif_reject(v, -EPERM, "declared.mismatch", "declared os_encrypt_format %s, but the image is not encrypted (%s)",
                          d->encrypt_format, outer);
    if (d->disk_format[0] && strcmp(d->disk_format, want_disk) != 0)
        return sif_reject(v, -EPERM, "declared.mismatch", "declared disk_format %s, but the image is %s",
                          d->disk_format, outer);
    if (!plain && d->encrypt_format[0] && strcasecmp(d->encrypt_format, want_enc) != 0)
        return sif_reject(v, -EPERM, "declared.mismatch", "declared os_encrypt_format %s, but the image is %s",
                          d->encrypt_format, outer);
    return 0;
}

int sif_declared_check_size(const struct sif_declared *d, const char *outer, uint64_t size, struct sif_verdict *v)
{
    if (!d->present || !d->has_decrypt_size || strncmp(outer, "luks", 4) != 0)
        return 0;
    if (d->decrypt_size != size)
        return sif_reject(v, -EPERM, "declared.mismatch", "declared os_decrypt_size %" PRIu64 ", but the plaintext is %" PRIu64 " bytes",
                          d->decrypt_size, size);
    return 0;
}
