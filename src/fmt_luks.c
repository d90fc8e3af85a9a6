/* fmt_luks.c: raw LUKS1 and LUKS2 volumes as an outer format.
 *
 * Order matters: parse and check every header field and every key slot's
 * PBKDF cost (luks.c) before reading a key, copy the validated metadata into
 * a sealed memfd for the unlock sandbox (unlock.c), and only then set up
 * the cipher.  The data segment is read with pread and decrypted in place.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image.h"
#include "luks.h"
#include "secmem.h"
#include "sector.h"
#include "unlock.h"

static bool sif_luks_fmt_detect(const uint8_t *head, size_t len, uint64_t file_size)
{
    return sif_luks_detect(head, len);
}

int sif_luks_open_crypt(struct sif_image *img, const struct sif_inspect_env *env,
                        const struct sif_luks_info *info, const uint8_t *meta, size_t meta_len,
                        uint64_t dev_size, uint32_t sector_size)
{
    struct sif_verdict *v = &img->verdict;
    const struct sif_cipher_spec *spec = sif_cipher_lookup(info->cipher, info->mode, info->key_bytes);
    struct sif_keyset keys;
    uint8_t *key = NULL;
    int meta_fd = -1, r;

    memset(&keys, 0, sizeof(keys));
    if (!spec)
        return sif_reject(v, -EPERM, "luks.cipher", "cipher %s-%s is not allowed", info->cipher, info->mode);
    r = sif_keyset_load(env->keys, img->name, img->declared.key_id, &keys, v);
    if (keys.source)
        snprintf(v->key_source, sizeof(v->key_source), "%s", keys.source);
    if (r)
        goto out;
    meta_fd = sif_unlock_make_meta(meta, meta_len, dev_size);
    if (meta_fd < 0) {
        r = sif_reject(v, meta_fd, "unlock.error", "cannot create the metadata copy (%s)", strerror(-meta_fd));
        goto out;
    }
    key = sif_secure_alloc(64);
    if (!key) {
        r = sif_reject(v, -ENOMEM, "unlock.error", "cannot allocate locked memory for the key");
        goto out;
    }
    /* Each candidate form of the key in turn (hex, then the legacy hex of
     * old Cinder volumes): only a wrong key moves on to the next. */
    for (int i = 0; i < keys.n; i++) {
        struct sif_verdict tried = *v;

        r = sif_unlock(meta_fd, info, env->policy, keys.c[i].pass, keys.c[i].len, key, &tried);
        if (r && !strcmp(tried.check, "key.wrong") && i + 1 < keys.n)
            continue;
        *v = tried;
        if (!r)
            snprintf(v->key_form, sizeof(v->key_form), "%s", keys.c[i].form);
        break;
    }
    if (!keys.n)
        r = sif_reject(v, -ENOKEY, "key.missing", "no passphrase");
    if (r)
        goto out;
    r = sif_crypt_new(spec, key, info->key_bytes, sector_size, &img->crypt);
    if (r)
        r = sif_reject(v, r, r == -EINVAL ? "luks.xts_key" : "unlock.error",
                       r == -EINVAL ? "the XTS volume key has two identical halves" : "cannot set up the cipher");
out:
    if (meta_fd >= 0)
        close(meta_fd);
    sif_secure_free(key);
    sif_keyset_free(&keys);
    return r;
}

static int sif_luks_fmt_open(struct sif_image *img, const struct sif_inspect_env *env, const uint8_t *head,
                             size_t head_len)
{
    struct sif_verdict *v = &img->verdict;
    uint64_t fsize = (uint64_t)img->st.st_size;
    struct sif_luks_info *info = calloc(1, sizeof(*info));
    uint8_t *meta = NULL;
    int r;

    if (!info)
        return sif_reject(v, -ENOMEM, "blob.read", "out of memory");
    r = sif_luks_parse(head, head_len, fsize, info, v);
    if (r)
        goto out;
    sif_luks_describe(info, v);
    v->has_size = true;
    v->size = info->data_len;
    r = sif_luks_check(info, env->policy, v);
    if (r)
        goto out;
    if (info->meta_len > SIF_LUKS_META_MAX) {
        r = sif_reject(v, -EINVAL, "luks.header", "LUKS metadata of %" PRIu64 " bytes exceeds %u", info->meta_len,
                       SIF_LUKS_META_MAX);
        goto out;
    }
    meta = malloc(info->meta_len);
    if (!meta) {
        r = sif_reject(v, -ENOMEM, "blob.read", "out of memory for %" PRIu64 " bytes of metadata", info->meta_len);
        goto out;
    }
    /* The first head_len bytes were parsed; re-use them so the copy the
     * unlock child sees is exactly what was checked. */
    if (info->meta_len <= head_len) {
        memcpy(meta, head, info->meta_len);
    } else {
        memcpy(meta, head, head_len);
        r = sif_pread_full(img->fd, meta + head_len, info->meta_len - head_len, head_len);
        if (r) {
            r = sif_reject(v, r, "blob.read", "cannot read the key slot area (%s)", strerror(-r));
            goto out;
        }
    }
    r = sif_luks_open_crypt(img, env, info, meta, info->meta_len, fsize, info->sector_size);
    if (r)
        goto out;
    img->data_offset = info->data_offset;
    img->size = info->data_len;
    img->allocated = info->data_len;
    img->unit = info->sector_size;
out:
    free(meta);
    free(info);
    return r;
}

static int sif_luks_fmt_read(struct sif_image *img, struct sif_crypt_ctx *ctx, uint8_t *buf, size_t len,
                             uint64_t off)
{
    int r = sif_pread_full(img->fd, buf, len, img->data_offset + off);

    if (r)
        return r;
    return sif_crypt_decrypt(ctx, buf, len, off / 512);
}

static const char *sif_luks_outer_name(const uint8_t *head, size_t len)
{
    return head[7] == 1 ? "luks1" : "luks2";
}

const struct sif_format sif_format_luks = {
    .name = "luks",
    .probe = "luks",
    .outer_name = sif_luks_outer_name,
    .detect = sif_luks_fmt_detect,
    .open = sif_luks_fmt_open,
    .read = sif_luks_fmt_read,
};
