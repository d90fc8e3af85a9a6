/* fmt_qcow2.c: qcow2 images with LUKS encryption as an outer format.
 *
 * Inspection validates all active metadata before any key is used: the
 * header (qcow2.c), every L1 entry and every entry of every L2 table that
 * maps the virtual disk, and that no table or data cluster overlaps the
 * header, the L1 table, the refcount table, the encryption header or
 * another L2 table (refcount blocks are never read).  A digest
 * of each L2 table is kept; at read time tables are loaded through a
 * bounded cache and must still match their digest, so a read never follows
 * a pointer that was not inspected.
 *
 * Data: IV = host file offset / 512 (plain64 or ESSIV), 512-byte units;
 * unallocated and zero clusters or subclusters read as zeros without the
 * cipher.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bytes.h"
#include "policy.h"
#include "checked.h"
#include "image.h"
#include "luks.h"
#include "qcow2.h"
#include "sector.h"

/* L2 tables cached per image: 4 MiB, at least 4 tables. */
#define SIF_L2_CACHE_BYTES (4u << 20)
#define SIF_L2_CACHE_MIN 4
/* Bytes of SHA-256 kept per L2 table to recognise it at read time. */
#define SIF_L2_DIGEST 16

struct sif_range {
    uint64_t off, len;
};

struct sif_l2_slot {
    uint64_t off;       /* 0 = empty */
    uint8_t *table;
};

struct sif_qcow2_state {
    struct sif_qcow2 q;
    uint64_t *l2_off;           /* l1_used entries: L2 table offsets (0 = none) */
    uint8_t (*l2_digest)[SIF_L2_DIGEST];
    pthread_mutex_t lock;       /* guards the cache below */
    struct sif_l2_slot *slots;
    unsigned nslots;
    uint64_t data_bytes;        /* allocated data, for st_blocks */
};

static bool sif_qcow2_detect(const uint8_t *head, size_t len, uint64_t file_size)
{
    return len >= 8 && !memcmp(head, "QFI\xfb", 4) && sif_be32(head + 4) >= 2;
}

static int sif_digest(const uint8_t *buf, size_t len, uint8_t out[SIF_L2_DIGEST])
{
    uint8_t md[32];
    unsigned int n = 0;

    if (!EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL) || n != 32)
        return -EIO;
    memcpy(out, md, SIF_L2_DIGEST);
    return 0;
}

static int sif_range_cmp(const void *a, const void *b)
{
    const struct sif_range *x = a, *y = b;

    return x->off < y->off ? -1 : x->off > y->off;
}

/* True when [off, off + len) overlaps a range of the sorted, disjoint
 * metadata list. */
static bool sif_hits_meta(const struct sif_range *m, size_t n, uint64_t off, uint64_t len)
{
    size_t lo = 0, hi = n;

    /* First range that ends after off. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (m[mid].off + m[mid].len <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && m[lo].off < off + len;
}

static uint64_t sif_round_up(uint64_t v, uint64_t align)
{
    return (v + align - 1) / align * align;
}

/* Loads the L1 table, every L2 table, and checks every entry and every
 * overlap.  All before a key is touched. */
static int sif_qcow2_validate(struct sif_image *img, struct sif_qcow2_state *st, struct sif_verdict *v)
{
    const struct sif_qcow2 *q = &st->q;
    uint64_t fsize = (uint64_t)img->st.st_size, cs = q->cluster_size;
    uint64_t clusters = q->size / cs + (q->size % cs != 0);
    struct sif_range *meta = NULL;
    uint8_t *l1 = NULL, *table = NULL;
    size_t nmeta = 0;
    int r;

    l1 = malloc((size_t)q->l1_used * 8);
    st->l2_off = calloc(q->l1_used, sizeof(*st->l2_off));
    st->l2_digest = calloc(q->l1_used, sizeof(*st->l2_digest));
    meta = calloc((size_t)q->l1_used + 4, sizeof(*meta));
    table = malloc(cs);
    if (!l1 || !st->l2_off || !st->l2_digest || !meta || !table) {
        r = sif_reject(v, -ENOMEM, "blob.read", "out of memory for the qcow2 tables");
        goto out;
    }
    r = sif_pread_full(img->fd, l1, (size_t)q->l1_used * 8, q->l1_offset);
    if (r) {
        r = sif_reject(v, r, "blob.read", "cannot read the L1 table (%s)", strerror(-r));
        goto out;
    }
    meta[nmeta++] = (struct sif_range){ 0, cs };
    meta[nmeta++] = (struct sif_range){ q->l1_offset, sif_round_up((uint64_t)q->l1_size * 8, cs) };
    if (q->crypt_length)
        meta[nmeta++] = (struct sif_range){ q->crypt_offset, sif_round_up(q->crypt_length, cs) };
    meta[nmeta++] = (struct sif_range){ q->refcount_offset, q->refcount_len };
    for (uint32_t i = 0; i < q->l1_used; i++) {
        r = sif_qcow2_l1_entry(q, sif_be64(l1 + (size_t)i * 8), fsize, i, &st->l2_off[i], v);
        if (r)
            goto out;
        if (st->l2_off[i])
            meta[nmeta++] = (struct sif_range){ st->l2_off[i], cs };
    }
    qsort(meta, nmeta, sizeof(*meta), sif_range_cmp);
    for (size_t i = 1; i < nmeta; i++)
        if (meta[i - 1].off + meta[i - 1].len > meta[i].off) {
            r = sif_reject(v, -EINVAL, "qcow2.overlap",
                           "metadata at %" PRIu64 " overlaps metadata at %" PRIu64 " (header, L1, refcount or L2 table, encryption header)",
                           meta[i - 1].off, meta[i].off);
            goto out;
        }
    for (uint32_t i = 0; i < q->l1_used; i++) {
        uint64_t first = (uint64_t)i * q->l2_entries;

        if (!st->l2_off[i])
            continue;
        r = sif_pread_full(img->fd, table, cs, st->l2_off[i]);
        if (!r)
            r = sif_digest(table, cs, st->l2_digest[i]);
        if (r) {
            r = sif_reject(v, r, "blob.read", "cannot read the L2 table at %" PRIu64 " (%s)", st->l2_off[i], strerror(-r));
            goto out;
        }
        for (uint32_t j = 0; j < q->l2_entries && first + j < clusters; j++) {
            struct sif_qcow2_cluster c;
            uint64_t span;

            r = sif_qcow2_l2_entry(q, table + (size_t)j * q->l2_entry_len, first + j, fsize, &c, v);
            if (r)
                goto out;
            if (!c.alloc)
                continue;
            span = (uint64_t)(32 - __builtin_clz(c.alloc)) * q->subcluster_size;
            st->data_bytes += (uint64_t)__builtin_popcount(c.alloc) * q->subcluster_size;
            if (sif_hits_meta(meta, nmeta, c.host, span)) {
                r = sif_reject(v, -EINVAL, "qcow2.overlap",
                               "guest cluster %" PRIu64 " maps to host offset %" PRIu64 ", inside the image's metadata",
                               first + j, c.host);
                goto out;
            }
        }
    }
    r = 0;
out:
    free(l1);
    free(meta);
    free(table);
    return r;
}

static int sif_qcow2_open(struct sif_image *img, const struct sif_inspect_env *env, const uint8_t *head,
                          size_t head_len)
{
    struct sif_verdict *v = &img->verdict;
    uint64_t fsize = (uint64_t)img->st.st_size;
    struct sif_qcow2_state *st = calloc(1, sizeof(*st));
    struct sif_luks_info *info = calloc(1, sizeof(*info));
    uint8_t *region = NULL;
    int r;

    snprintf(v->outer, sizeof(v->outer), "qcow2");
    if (!st || !info) {
        free(st);
        free(info);
        return sif_reject(v, -ENOMEM, "blob.read", "out of memory");
    }
    pthread_mutex_init(&st->lock, NULL);
    img->priv = st;
    r = sif_qcow2_parse_opts(head, head_len, fsize, env->policy->unencrypted == SIF_UNENCRYPTED_SERVE, &st->q, v);
    if (r)
        goto out;
    img->plain = st->q.crypt_method == SIF_QCOW2_CRYPT_NONE;
    if (!img->plain)
        snprintf(v->outer, sizeof(v->outer), "qcow2+luks");
    v->has_size = true;
    v->size = st->q.size;
    r = sif_qcow2_validate(img, st, v);
    if (r)
        goto out;
    if (img->plain)
        goto tables;

    /* The embedded LUKS1 header, under the same policy as raw LUKS. */
    region = malloc(st->q.crypt_length);
    if (!region) {
        r = sif_reject(v, -ENOMEM, "blob.read", "out of memory");
        goto out;
    }
    r = sif_pread_full(img->fd, region, st->q.crypt_length, st->q.crypt_offset);
    if (r) {
        r = sif_reject(v, r, "blob.read", "cannot read the encryption header (%s)", strerror(-r));
        goto out;
    }
    r = sif_luks_parse_embedded(region, st->q.crypt_length, info, v);
    if (r)
        goto out;
    sif_luks_describe(info, v);
    /* Data units are 512 bytes wherever the clusters are. */
    v->sector_size = 512;
    v->data_offset = 0;
    r = sif_luks_check(info, env->policy, v);
    if (r)
        goto out;
    /* The region stands alone as the LUKS "device". */
    r = sif_luks_open_crypt(img, env, info, region, st->q.crypt_length, st->q.crypt_length, 512);
    if (r)
        goto out;
tables:
    st->nslots = SIF_L2_CACHE_BYTES / st->q.cluster_size;
    if (st->nslots < SIF_L2_CACHE_MIN)
        st->nslots = SIF_L2_CACHE_MIN;
    st->slots = calloc(st->nslots, sizeof(*st->slots));
    if (!st->slots) {
        r = sif_reject(v, -ENOMEM, "blob.read", "out of memory for the L2 cache");
        goto out;
    }
    /* Like qemu, serve whole 512-byte sectors: a tail shorter than a
     * sector is not part of the disk. */
    img->size = st->q.size & ~511ULL;
    img->allocated = st->data_bytes < img->size ? st->data_bytes : img->size;
    img->unit = 512;
out:
    free(region);
    free(info);
    return r;
}

static void sif_qcow2_close(struct sif_image *img)
{
    struct sif_qcow2_state *st = img->priv;

    if (!st)
        return;
    for (unsigned i = 0; st->slots && i < st->nslots; i++)
        free(st->slots[i].table);
    free(st->slots);
    free(st->l2_off);
    free(st->l2_digest);
    pthread_mutex_destroy(&st->lock);
    free(st);
    img->priv = NULL;
}

/* Copies the L2 entry of guest cluster gc (whose table is at l1 index l1i)
 * into e, loading the table through the cache.  A table that no longer
 * matches its digest from inspection is an I/O error. */
static int sif_qcow2_l2_get(struct sif_image *img, struct sif_qcow2_state *st, uint32_t l1i, uint32_t idx,
                            uint8_t e[16])
{
    const uint64_t off = st->l2_off[l1i], cs = st->q.cluster_size;
    const uint32_t elen = st->q.l2_entry_len;
    uint8_t digest[SIF_L2_DIGEST], *table;
    struct sif_l2_slot *slot;
    int r;

    /* Direct-mapped by L1 index: one probe, whatever the cache size. */
    slot = &st->slots[l1i % st->nslots];
    pthread_mutex_lock(&st->lock);
    if (slot->off == off) {
        memcpy(e, slot->table + (size_t)idx * elen, elen);
        pthread_mutex_unlock(&st->lock);
        return 0;
    }
    pthread_mutex_unlock(&st->lock);

    table = malloc(cs);
    if (!table)
        return -ENOMEM;
    r = sif_pread_full(img->fd, table, cs, off);
    if (!r)
        r = sif_digest(table, cs, digest);
    if (!r && memcmp(digest, st->l2_digest[l1i], SIF_L2_DIGEST) != 0)
        r = -ESTALE;
    if (r) {
        free(table);
        return r == -ESTALE ? -EIO : r;
    }
    memcpy(e, table + (size_t)idx * elen, elen);

    pthread_mutex_lock(&st->lock);
    if (slot->off != off) {
        free(slot->table);
        slot->table = table;
        slot->off = off;
        table = NULL;
    }
    pthread_mutex_unlock(&st->lock);
    free(table);
    return 0;
}

/* Decodes guest cluster gc. */
static int sif_qcow2_cluster(struct sif_image *img, uint64_t gc, struct sif_qcow2_cluster *c)
{
    struct sif_qcow2_state *st = img->priv;
    uint32_t l1i = (uint32_t)(gc / st->q.l2_entries), idx = (uint32_t)(gc % st->q.l2_entries);
    struct sif_verdict scratch;
    uint8_t e[16];
    int r;

    memset(c, 0, sizeof(*c));
    if (l1i >= st->q.l1_used)
        return -EIO;
    if (!st->l2_off[l1i])
        return 0;
    r = sif_qcow2_l2_get(img, st, l1i, idx, e);
    if (r)
        return r;
    sif_verdict_init(&scratch);
    return sif_qcow2_l2_entry(&st->q, e, gc, (uint64_t)img->st.st_size, c, &scratch) ? -EIO : 0;
}

/* The run of subclusters starting at byte `in` of cluster c that share its
 * state: *data, and the run's end (bytes into the cluster). */
static uint64_t sif_qcow2_run(const struct sif_qcow2 *q, const struct sif_qcow2_cluster *c, uint64_t in, bool *data)
{
    uint64_t scs = q->subcluster_size;
    uint32_t sc = (uint32_t)(in / scs);
    uint32_t nsc = q->extended_l2 ? 32 : 1;

    *data = (c->alloc >> sc) & 1;
    while (++sc < nsc && (bool)((c->alloc >> sc) & 1) == *data)
        ;
    return (uint64_t)sc * scs;
}

static int sif_qcow2_read(struct sif_image *img, struct sif_crypt_ctx *ctx, uint8_t *buf, size_t len, uint64_t off)
{
    struct sif_qcow2_state *st = img->priv;
    const struct sif_qcow2 *q = &st->q;

    while (len) {
        uint64_t gc = off >> q->cluster_bits, in = off & (q->cluster_size - 1), end;
        struct sif_qcow2_cluster c;
        bool data;
        size_t n;
        int r = sif_qcow2_cluster(img, gc, &c);

        if (r)
            return r;
        end = sif_qcow2_run(q, &c, in, &data);
        n = end - in < len ? (size_t)(end - in) : len;
        if (data) {
            uint64_t host = c.host + in;

            r = sif_pread_full(img->fd, buf, n, host);
            if (!r && !img->plain)
                r = sif_crypt_decrypt(ctx, buf, n, host / 512);
            if (r)
                return r;
        } else {
            memset(buf, 0, n);
        }
        buf += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int sif_qcow2_extent(struct sif_image *img, uint64_t off, bool *data, uint64_t *len)
{
    struct sif_qcow2_state *st = img->priv;
    const struct sif_qcow2 *q = &st->q;
    uint64_t gc = off >> q->cluster_bits, in = off & (q->cluster_size - 1);
    uint32_t l1i = (uint32_t)(gc / q->l2_entries);
    struct sif_qcow2_cluster c;
    int r;

    if (l1i < q->l1_used && !st->l2_off[l1i]) {
        /* A whole L2 span without a table reads as zeros. */
        uint64_t span_end = ((uint64_t)l1i + 1) * q->l2_entries * q->cluster_size;

        *data = false;
        *len = span_end - off;
        return 0;
    }
    r = sif_qcow2_cluster(img, gc, &c);
    if (r)
        return r;
    *len = sif_qcow2_run(q, &c, in, data) - in;
    return 0;
}

/* "qcow2" for an unencrypted image (crypt_method 0, the u32 at 32), which
 * only a policy that serves unencrypted images lets through. */
static const char *sif_qcow2_outer_name(const uint8_t *head, size_t len)
{
    return len >= 36 && sif_be32(head + 32) == 0 ? "qcow2" : "qcow2+luks";
}

const struct sif_format sif_format_qcow2 = {
    .name = "qcow2",
    .probe = "qcow2",
    .outer_name = sif_qcow2_outer_name,
    .detect = sif_qcow2_detect,
    .open = sif_qcow2_open,
    .read = sif_qcow2_read,
    .extent = sif_qcow2_extent,
    .close = sif_qcow2_close,
};
