/* image.c: the inspection pipeline and the read path. */
#include "config.h"

#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"
#include "probe.h"
#include "secmem.h"
#include "sector.h"

const struct sif_format *const sif_formats[] = {
    &sif_format_luks,
    &sif_format_qcow2,
    NULL,
};

int sif_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;

    if (off > INT64_MAX || len > INT64_MAX - off)
        return -EINVAL;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

int sif_image_open(int dirfd, const char *name, const char *display_name, struct sif_image **out)
{
    struct sif_image *img = calloc(1, sizeof(*img));
    int e;

    *out = NULL;
    if (!img)
        return -ENOMEM;
    sif_verdict_init(&img->verdict);
    img->fd = -1;
    img->name = strdup(display_name);
    if (!img->name) {
        free(img);
        return -ENOMEM;
    }
    img->fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (img->fd < 0)
        goto fail;
    if (fstat(img->fd, &img->st) != 0)
        goto fail;
    if (!S_ISREG(img->st.st_mode)) {
        errno = EINVAL;
        goto fail;
    }
    *out = img;
    return 0;
fail:
    e = errno;
    sif_image_free(img);
    return -e;
}

void sif_image_free(struct sif_image *img)
{
    if (!img)
        return;
    for (int i = 0; i < SIF_CTX_POOL; i++)
        sif_crypt_ctx_free(atomic_exchange(&img->pool[i], NULL));
    if (img->fmt && img->fmt->close)
        img->fmt->close(img);
    sif_crypt_free(img->crypt);
    if (img->fd >= 0)
        close(img->fd);
    free(img->name);
    free(img);
}

/* ------------------------------------------------------- cipher contexts */

static struct sif_crypt_ctx *sif_ctx_get(struct sif_image *img)
{
    struct sif_crypt_ctx *ctx;

    for (int i = 0; i < SIF_CTX_POOL; i++) {
        ctx = atomic_exchange(&img->pool[i], NULL);
        if (ctx)
            return ctx;
    }
    if (!img->crypt || sif_crypt_ctx_new(img->crypt, &ctx) != 0)
        return NULL;
    return ctx;
}

static void sif_ctx_put(struct sif_image *img, struct sif_crypt_ctx *ctx)
{
    for (int i = 0; i < SIF_CTX_POOL; i++) {
        struct sif_crypt_ctx *expected = NULL;

        if (atomic_compare_exchange_strong(&img->pool[i], &expected, ctx))
            return;
    }
    sif_crypt_ctx_free(ctx);
}

/* --------------------------------------------------------------- reading */

ssize_t sif_image_pread(struct sif_image *img, void *buf, size_t len, uint64_t off)
{
    const uint64_t unit = img->unit;
    uint8_t bounce[4096];
    struct sif_crypt_ctx *ctx;
    uint8_t *out = buf;
    size_t done = 0;
    int r = 0;

    if (!img->fmt || (!img->crypt && !img->plain))
        return -EIO;
    if (off >= img->size || len == 0)
        return 0;
    if (len > img->size - off)
        len = (size_t)(img->size - off);
    ctx = img->plain ? NULL : sif_ctx_get(img);
    if (!ctx && !img->plain)
        return -ENOMEM;
    while (done < len && r == 0) {
        uint64_t pos = off + done;
        uint64_t skip = pos % unit;
        size_t n = len - done;

        if (skip || n < unit) {
            /* Partial unit: decrypt it whole in the bounce buffer. */
            uint64_t base = pos - skip;
            size_t take = (size_t)(unit - skip) < n ? (size_t)(unit - skip) : n;

            r = img->fmt->read(img, ctx, bounce, (size_t)unit, base);
            if (!r)
                memcpy(out + done, bounce + skip, take);
            done += take;
        } else {
            /* Whole units: read and decrypt in place in the caller's buffer. */
            n -= n % unit;
            r = img->fmt->read(img, ctx, out + done, n, pos);
            done += n;
        }
    }
    sif_wipe(bounce, sizeof(bounce));
    if (ctx)
        sif_ctx_put(img, ctx);
    return r ? r : (ssize_t)len;
}

int sif_image_seek(struct sif_image *img, uint64_t off, int whence, uint64_t *out)
{
    if (whence != SEEK_DATA && whence != SEEK_HOLE)
        return -EINVAL;
    if (off >= img->size)
        return -ENXIO;
    if (!img->fmt->extent) {
        *out = whence == SEEK_DATA ? off : img->size;
        return 0;
    }
    while (off < img->size) {
        bool data;
        uint64_t len;
        int r = img->fmt->extent(img, off, &data, &len);

        if (r)
            return r;
        if (data == (whence == SEEK_DATA)) {
            *out = off;
            return 0;
        }
        off = len < img->size - off ? off + len : img->size;
    }
    /* Past the last data there is only the implicit hole at the end. */
    if (whence == SEEK_DATA)
        return -ENXIO;
    *out = img->size;
    return 0;
}

/* ------------------------------------------------------------ inspection */

static int sif_inner_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    ssize_t n = sif_image_pread(ctx, buf, len, off);

    return n == (ssize_t)len ? 0 : n < 0 ? (int)n : -EIO;
}

static int sif_inspect_inner(struct sif_image *img, const struct sif_policy *p)
{
    struct sif_verdict *v = &img->verdict;
    const struct sif_probe_rules rules = { .allow_iso_hybrid = p->iso_hybrid, .layouts = p->inner_layouts };
    struct sif_probe_content c;
    int r = sif_probe_gather(&c, img->size, NULL, 0, sif_inner_read, img);

    if (r)
        r = sif_reject(v, r, "inner.read", "cannot read and decrypt the content for inspection (%s)", strerror(-r));
    else
        r = sif_probe_inner(&c.in, &rules, v);
    sif_probe_content_free(&c);
    return r;
}

/* The outer file must be exactly its one format: no other probe may find
 * anything in it (a LUKS header that is also an ISO, a VHD footer on a
 * LUKS volume).  Layouts whose own checks fail are noise in key material,
 * not a second format. */
static int sif_outer_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    const struct sif_image *img = ctx;

    return sif_pread_full(img->fd, buf, len, off);
}

static int sif_inspect_outer(struct sif_image *img, const struct sif_format *fmt, const uint8_t *head, size_t hl)
{
    struct sif_verdict *v = &img->verdict;
    uint64_t fsize = (uint64_t)img->st.st_size;
    struct sif_probe_hit hits[SIF_HITS_MAX];
    struct sif_probe_content c;
    int n, r;

    r = sif_probe_gather(&c, fsize, head, hl, sif_outer_read, img);
    if (r) {
        sif_probe_content_free(&c);
        return sif_reject(v, r, "blob.read", "cannot read the regions the probes need (%s)", strerror(-r));
    }
    n = sif_probe_scan(&c.in, hits, SIF_HITS_MAX);
    sif_probe_content_free(&c);
    v->n_outer = 0;
    for (int i = 0; i < n && i < SIF_HITS_MAX; i++) {
        const struct sif_probe_hit *h = &hits[i];
        struct sif_verdict_match *m = &v->outer_hits[v->n_outer++];

        snprintf(m->format, sizeof(m->format), "%s", h->probe->format);
        m->where = h->where;
        m->unsafe = h->unsafe;
        snprintf(m->detail, sizeof(m->detail), "%s", h->detail);
    }
    for (int i = 0; i < n; i++) {
        const struct sif_probe_hit *h = &hits[i < SIF_HITS_MAX ? i : SIF_HITS_MAX - 1];

        if (i >= SIF_HITS_MAX)
            return sif_reject(v, -EPERM, "outer.multiple", "the file matches %d formats", n);
        if (!strcmp(h->probe->format, fmt->probe) || (h->probe->cls == SIF_CLASS_LAYOUT && h->unsafe))
            continue;
        return sif_reject(v, -EPERM, "outer.multiple", "the %s file is also a %s (signature at offset %" PRIu64 ")%s%s",
                          fmt->name, h->probe->format, h->where, h->detail[0] ? ": " : "", h->detail);
    }
    return 0;
}

int sif_image_inspect(struct sif_image *img, const struct sif_inspect_env *env)
{
    struct sif_verdict *v = &img->verdict;
    uint64_t fsize = (uint64_t)img->st.st_size;
    size_t hl = fsize < SIF_HEAD_LEN ? (size_t)fsize : SIF_HEAD_LEN;
    const struct sif_format *match = NULL;
    uint8_t *head;
    int r, nmatch = 0;

    sif_verdict_init(v);
    head = malloc(hl ? hl : 1);
    if (!head)
        return sif_reject(v, -ENOMEM, "blob.read", "out of memory");
    r = sif_pread_full(img->fd, head, hl, 0);
    if (r) {
        free(head);
        return sif_reject(v, r, "blob.read", "cannot read the image header (%s)", strerror(-r));
    }
    for (int i = 0; sif_formats[i]; i++) {
        if (sif_formats[i]->detect(head, hl, fsize)) {
            match = sif_formats[i];
            nmatch++;
        }
    }
    /* A file no format claims is unencrypted: served only by policy,
     * and then its bytes are the content the inner inspection judges. */
    if (nmatch == 0 && env->policy->unencrypted == SIF_UNENCRYPTED_SERVE) {
        match = &sif_format_plain;
        nmatch = 1;
    }
    sif_verdict_ran(v, "outer.format");
    if (nmatch != 1) {
        snprintf(v->outer, sizeof(v->outer), "unknown");
        free(head);
        return sif_reject(v, -EINVAL, "outer.format",
                          nmatch ? "the file matches several encrypted formats"
                                 : "not an encrypted image (no LUKS or qcow2 header)");
    }
    img->fmt = match;
    snprintf(v->outer, sizeof(v->outer), "%s", match->outer_name(head, hl));
    /* Ambiguity and the sidecar are judged on the bytes alone, before any
     * key is read. */
    r = 0;
    if (match->probe) {
        sif_verdict_ran(v, "outer.multiple");
        r = sif_inspect_outer(img, match, head, hl);
    }
    if (!r && match != &sif_format_plain && strcmp(v->outer, "qcow2") != 0) {
        sif_verdict_ran(v, "outer.policy");
        if (!sif_policy_outer_allowed(env->policy, v->outer))
            r = sif_reject(v, -EPERM, "outer.policy", "%s images are not allowed by policy", v->outer);
    }
    if (!r) {
        sif_verdict_ran(v, "declared.format");
        r = sif_declared_check_format(&img->declared, v->outer, v);
    }
    if (!r) {
        /* headers, key slots, the key and the unlock: the format's own
         * checks (luks.*, qcow2.*, key.*, unlock.*) */
        sif_verdict_ran(v, match->name);
        r = match->open(img, env, head, hl);
    }
    free(head);
    if (r)
        return r;
    v->has_size = true;
    v->size = img->size;
    sif_verdict_ran(v, "size.limit");
    if (img->size > env->policy->max_virtual_size)
        return sif_reject(v, -EFBIG, "size.limit", "a virtual size of %" PRIu64 " bytes is over the policy's limit of %" PRIu64,
                          img->size, env->policy->max_virtual_size);
    sif_verdict_ran(v, "declared.size");
    r = sif_declared_check_size(&img->declared, v->outer, img->size, v);
    if (!r) {
        sif_verdict_ran(v, "inner");
        r = sif_inspect_inner(img, env->policy);
    }
    if (r)
        return r;
    if (img->plain) {
        sif_accept(v, "inner.raw", "raw content of %" PRIu64 " bytes (unencrypted %s, served by policy)", img->size,
                   v->outer);
        return 0;
    }
    sif_accept(v, "inner.raw", "raw plaintext of %" PRIu64 " bytes (%s, %" PRIu32 "-bit key, %" PRIu32 "-byte sectors)",
               img->size, v->cipher, v->key_bits, v->sector_size);
    return 0;
}
