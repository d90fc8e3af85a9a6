/* qcow2.c: qcow2 header, extension and table-entry validation. */
#include "config.h"

#include "qcow2.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "bytes.h"
#include "checked.h"

/* Header field offsets (all big-endian). */
enum {
    Q_MAGIC = 0, Q_VERSION = 4, Q_BACKING_OFFSET = 8, Q_BACKING_SIZE = 16, Q_CLUSTER_BITS = 20,
    Q_SIZE = 24, Q_CRYPT = 32, Q_L1_SIZE = 36, Q_L1_OFFSET = 40, Q_REFCOUNT_OFFSET = 48,
    Q_REFCOUNT_CLUSTERS = 56, Q_NB_SNAPSHOTS = 60, Q_SNAPSHOTS_OFFSET = 64, Q_INCOMPAT = 72,
    Q_COMPAT = 80, Q_AUTOCLEAR = 88, Q_REFCOUNT_ORDER = 96, Q_HEADER_LENGTH = 100,
    Q_COMPRESSION_TYPE = 104,
};

#define Q_INCOMPAT_DIRTY (1ULL << 0)
#define Q_INCOMPAT_CORRUPT (1ULL << 1)
#define Q_INCOMPAT_DATA_FILE (1ULL << 2)
#define Q_INCOMPAT_COMPRESSION (1ULL << 3)
#define Q_INCOMPAT_EXTL2 (1ULL << 4)
#define Q_INCOMPAT_KNOWN (Q_INCOMPAT_DIRTY | Q_INCOMPAT_CORRUPT | Q_INCOMPAT_DATA_FILE | \
                          Q_INCOMPAT_COMPRESSION | Q_INCOMPAT_EXTL2)

#define Q_EXT_END 0x00000000u
#define Q_EXT_BACKING_FORMAT 0xe2792acau
#define Q_EXT_FEATURE_NAMES 0x6803f857u
#define Q_EXT_BITMAPS 0x23852875u
#define Q_EXT_CRYPT 0x0537be77u
#define Q_EXT_DATA_FILE 0x44415441u

#define Q_L1_OFFSET_MASK 0x00fffffffffffe00ULL
#define Q_L1_RESERVED 0x7f000000000001ffULL
#define Q_L2_COPIED (1ULL << 63)
#define Q_L2_COMPRESSED (1ULL << 62)
#define Q_L2_OFFSET_MASK 0x00fffffffffffe00ULL
#define Q_L2_RESERVED 0x3f000000000001feULL
#define Q_L2_ZERO 1ULL

/* Walks the header extensions in [start, end). */
static int sif_qcow2_extensions(const uint8_t *b, uint64_t start, uint64_t end, struct sif_qcow2 *q,
                                struct sif_verdict *v)
{
    bool seen_crypt = false, seen_features = false, seen_bitmaps = false;
    uint64_t off = start;

    while (off < end) {
        uint32_t type, len;
        uint64_t next;

        if (end - off < 8)
            return sif_reject(v, -EINVAL, "qcow2.extension", "header extension at %" PRIu64 " is truncated", off);
        type = sif_be32(b + off);
        len = sif_be32(b + off + 4);
        if (type == Q_EXT_END)
            return 0;
        if (len > end - off - 8)
            return sif_reject(v, -EINVAL, "qcow2.extension",
                              "header extension 0x%08" PRIx32 " at %" PRIu64 " has length %" PRIu32 " past the end of the header cluster",
                              type, off, len);
        next = off + 8 + (((uint64_t)len + 7) & ~7ULL);
        switch (type) {
        case Q_EXT_BACKING_FORMAT:
            return sif_reject(v, -EPERM, "qcow2.backing", "the image names a backing file format: it has a backing file");
        case Q_EXT_DATA_FILE:
            return sif_reject(v, -EPERM, "qcow2.data_file", "the image names an external data file");
        case Q_EXT_CRYPT:
            if (seen_crypt)
                return sif_reject(v, -EINVAL, "qcow2.extension", "the encryption header pointer appears twice");
            if (len != 16)
                return sif_reject(v, -EINVAL, "qcow2.crypt_header", "the encryption header pointer has length %" PRIu32 ", not 16", len);
            seen_crypt = true;
            q->crypt_offset = sif_be64(b + off + 8);
            q->crypt_length = sif_be64(b + off + 16);
            break;
        case Q_EXT_FEATURE_NAMES:
        case Q_EXT_BITMAPS: {
            bool *seen = type == Q_EXT_BITMAPS ? &seen_bitmaps : &seen_features;

            /* Descriptive or auto-clear metadata that reads never use. */
            if (*seen)
                return sif_reject(v, -EINVAL, "qcow2.extension", "header extension 0x%08" PRIx32 " appears twice", type);
            *seen = true;
            break;
        }
        default:
            /* The spec lets readers ignore unknown extensions. */
            break;
        }
        off = next;
    }
    return 0;
}

int sif_qcow2_parse(const uint8_t *b, size_t len, uint64_t file_size, struct sif_qcow2 *q,
                    struct sif_verdict *v)
{
    return sif_qcow2_parse_opts(b, len, file_size, false, q, v);
}

int sif_qcow2_parse_opts(const uint8_t *b, size_t len, uint64_t file_size, bool plain_ok, struct sif_qcow2 *q,
                         struct sif_verdict *v)
{
    uint64_t hdr_len, ext_end, l1_bytes, l1_needed, clusters, unknown;
    uint32_t order;

    memset(q, 0, sizeof(*q));
    if (len > file_size)
        len = (size_t)file_size;
    if (len < SIF_QCOW2_V2_HDR_LEN || memcmp(b, "QFI\xfb", 4) != 0)
        return sif_reject(v, -EINVAL, "qcow2.header", "qcow2 header truncated or without magic");
    q->version = sif_be32(b + Q_VERSION);
    if (q->version != 2 && q->version != 3)
        return sif_reject(v, -EINVAL, "qcow2.version", "qcow2 version %" PRIu32 " is not 2 or 3", q->version);
    q->cluster_bits = sif_be32(b + Q_CLUSTER_BITS);
    if (q->cluster_bits < 9 || q->cluster_bits > 21)
        return sif_reject(v, -EINVAL, "qcow2.header", "cluster_bits %" PRIu32 " is outside 9..21", q->cluster_bits);
    q->cluster_size = 1ULL << q->cluster_bits;
    if (len < SIF_QCOW2_V3_HDR_LEN && q->version == 3)
        return sif_reject(v, -EINVAL, "qcow2.header", "qcow2 v3 header truncated");
    if (sif_be64(b + Q_BACKING_OFFSET) != 0)
        return sif_reject(v, -EPERM, "qcow2.backing", "the image has a backing file (name at offset %" PRIu64 ")",
                          sif_be64(b + Q_BACKING_OFFSET));
    if (q->version == 3) {
        q->incompat = sif_be64(b + Q_INCOMPAT);
        order = sif_be32(b + Q_REFCOUNT_ORDER);
        hdr_len = sif_be32(b + Q_HEADER_LENGTH);
        if (hdr_len < SIF_QCOW2_V3_HDR_LEN || hdr_len % 8 || hdr_len > q->cluster_size || hdr_len > len)
            return sif_reject(v, -EINVAL, "qcow2.header", "header_length %" PRIu64 " is invalid", hdr_len);
        if (order > 6)
            return sif_reject(v, -EINVAL, "qcow2.header", "refcount_order %" PRIu32 " exceeds 6", order);
    } else {
        hdr_len = SIF_QCOW2_V2_HDR_LEN;
    }
    if (q->incompat & Q_INCOMPAT_CORRUPT)
        return sif_reject(v, -EPERM, "qcow2.corrupt", "the image is marked corrupt");
    if (q->incompat & Q_INCOMPAT_DATA_FILE)
        return sif_reject(v, -EPERM, "qcow2.data_file", "the image uses an external data file");
    unknown = q->incompat & ~Q_INCOMPAT_KNOWN;
    if (unknown)
        return sif_reject(v, -EPERM, "qcow2.feature", "unknown incompatible feature bits 0x%" PRIx64, unknown);
    if ((q->incompat & Q_INCOMPAT_COMPRESSION) && (hdr_len <= Q_COMPRESSION_TYPE || b[Q_COMPRESSION_TYPE] == 0))
        return sif_reject(v, -EINVAL, "qcow2.header", "compression type bit set without a compression type");
    q->dirty = q->incompat & Q_INCOMPAT_DIRTY;
    q->extended_l2 = q->incompat & Q_INCOMPAT_EXTL2;
    if (q->extended_l2 && q->cluster_bits < 14)
        return sif_reject(v, -EINVAL, "qcow2.header", "extended L2 entries need clusters of 16 KiB or more");
    q->l2_entry_len = q->extended_l2 ? 16 : 8;
    q->l2_entries = (uint32_t)(q->cluster_size / q->l2_entry_len);
    q->subcluster_size = q->extended_l2 ? q->cluster_size / 32 : q->cluster_size;

    q->size = sif_be64(b + Q_SIZE);
    if (q->size < 512)
        return sif_reject(v, -EINVAL, "qcow2.size", "the virtual disk is smaller than one sector");
    /* Guest clusters, then L2 tables needed: both overflow-safe. */
    clusters = q->size / q->cluster_size + (q->size % q->cluster_size != 0);
    l1_needed = clusters / q->l2_entries + (clusters % q->l2_entries != 0);
    q->l1_size = sif_be32(b + Q_L1_SIZE);
    q->l1_offset = sif_be64(b + Q_L1_OFFSET);
    if (l1_needed > SIF_QCOW2_L1_MAX_BYTES / 8)
        return sif_reject(v, -EINVAL, "qcow2.size", "virtual size %" PRIu64 " needs an L1 table larger than 32 MiB", q->size);
    if (q->l1_size < l1_needed)
        return sif_reject(v, -EINVAL, "qcow2.l1", "L1 table has %" PRIu32 " entries, the virtual size needs %" PRIu64,
                          q->l1_size, l1_needed);
    if ((uint64_t)q->l1_size > SIF_QCOW2_L1_MAX_BYTES / 8)
        return sif_reject(v, -EINVAL, "qcow2.l1", "L1 table of %" PRIu32 " entries exceeds 32 MiB", q->l1_size);
    q->l1_used = (uint32_t)l1_needed;
    l1_bytes = (uint64_t)q->l1_size * 8;
    if (q->l1_offset % q->cluster_size || q->l1_offset < q->cluster_size ||
        !sif_range_ok(q->l1_offset, l1_bytes, file_size))
        return sif_reject(v, -EINVAL, "qcow2.l1", "L1 table at %" PRIu64 " (%" PRIu64 " bytes) is misaligned, overlaps the header or lies outside the file",
                          q->l1_offset, l1_bytes);

    q->refcount_offset = sif_be64(b + Q_REFCOUNT_OFFSET);
    q->refcount_len = (uint64_t)sif_be32(b + Q_REFCOUNT_CLUSTERS) * q->cluster_size;
    if (!q->refcount_len || q->refcount_len > SIF_QCOW2_REFTABLE_MAX || q->refcount_offset % q->cluster_size ||
        q->refcount_offset < q->cluster_size || !sif_range_ok(q->refcount_offset, q->refcount_len, file_size))
        return sif_reject(v, -EINVAL, "qcow2.header", "refcount table at %" PRIu64 " (%" PRIu64 " bytes) is empty, misaligned, too large or outside the file",
                          q->refcount_offset, q->refcount_len);

    if (sif_be32(b + Q_NB_SNAPSHOTS)) {
        uint64_t so = sif_be64(b + Q_SNAPSHOTS_OFFSET);

        /* Snapshots are never read; their table must still be where a
         * table can be. */
        if (sif_be32(b + Q_NB_SNAPSHOTS) > 65536 || so % q->cluster_size || so < q->cluster_size || so >= file_size)
            return sif_reject(v, -EINVAL, "qcow2.header", "snapshot table at %" PRIu64 " (%" PRIu32 " snapshots) is misaligned or outside the file",
                              so, sif_be32(b + Q_NB_SNAPSHOTS));
    }

    q->crypt_method = sif_be32(b + Q_CRYPT);
    /* Extensions live in the header cluster: all of it must be here (or
     * all of the file, when it is shorter). */
    if (len < q->cluster_size && len < file_size)
        return sif_reject(v, -EINVAL, "qcow2.header", "the header cluster was not read whole (%zu bytes)", len);
    ext_end = q->cluster_size < len ? q->cluster_size : len;
    int r = sif_qcow2_extensions(b, hdr_len, ext_end, q, v);
    if (r)
        return r;
    switch (q->crypt_method) {
    case SIF_QCOW2_CRYPT_NONE:
        if (!plain_ok)
            return sif_reject(v, -EPERM, "qcow2.unencrypted", "the qcow2 image is not encrypted");
        if (q->crypt_length || q->crypt_offset)
            return sif_reject(v, -EINVAL, "qcow2.crypt_header", "an encryption header pointer in an unencrypted image");
        return 0;
    case SIF_QCOW2_CRYPT_AES:
        return sif_reject(v, -EPERM, "qcow2.aes",
                          "legacy qcow2 AES encryption (a passphrase used directly as the key, predictable IVs) is broken by design");
    case SIF_QCOW2_CRYPT_LUKS:
        break;
    default:
        return sif_reject(v, -EINVAL, "qcow2.header", "unknown crypt_method %" PRIu32, q->crypt_method);
    }
    if (!q->crypt_length)
        return sif_reject(v, -EINVAL, "qcow2.crypt_header", "LUKS encryption without an encryption header pointer");
    if (q->crypt_offset % q->cluster_size || q->crypt_offset < q->cluster_size ||
        q->crypt_length > SIF_QCOW2_CRYPT_MAX || !sif_range_ok(q->crypt_offset, q->crypt_length, file_size))
        return sif_reject(v, -EINVAL, "qcow2.crypt_header",
                          "encryption header at %" PRIu64 " (%" PRIu64 " bytes) is misaligned, too large or outside the file",
                          q->crypt_offset, q->crypt_length);
    if (sif_ranges_overlap(q->crypt_offset, q->crypt_length, q->l1_offset, l1_bytes))
        return sif_reject(v, -EINVAL, "qcow2.overlap", "the encryption header overlaps the L1 table");
    return 0;
}

int sif_qcow2_l1_entry(const struct sif_qcow2 *q, uint64_t raw, uint64_t file_size, uint32_t index,
                       uint64_t *l2, struct sif_verdict *v)
{
    uint64_t off = raw & Q_L1_OFFSET_MASK;

    *l2 = 0;
    if (raw & Q_L1_RESERVED)
        return sif_reject(v, -EINVAL, "qcow2.l1", "L1 entry %" PRIu32 " has reserved bits set (0x%016" PRIx64 ")", index, raw);
    if (!off)
        return 0;
    if (off % q->cluster_size || !sif_range_ok(off, q->cluster_size, file_size))
        return sif_reject(v, -EINVAL, "qcow2.l1", "L1 entry %" PRIu32 " points at %" PRIu64 ", misaligned or outside the file",
                          index, off);
    *l2 = off;
    return 0;
}

uint64_t sif_qcow2_cluster_bytes(const struct sif_qcow2 *q, uint64_t gcluster)
{
    uint64_t start;

    if (gcluster > (q->size - 1) >> q->cluster_bits)
        return 0;
    start = gcluster << q->cluster_bits;
    return q->size - start < q->cluster_size ? q->size - start : q->cluster_size;
}

int sif_qcow2_l2_entry(const struct sif_qcow2 *q, const uint8_t *e, uint64_t gcluster, uint64_t file_size,
                       struct sif_qcow2_cluster *c, struct sif_verdict *v)
{
    uint64_t word = sif_be64(e), host = word & Q_L2_OFFSET_MASK;
    uint64_t bytes = sif_qcow2_cluster_bytes(q, gcluster), need = 0;

    memset(c, 0, sizeof(*c));
    if (word & Q_L2_COMPRESSED)
        return sif_reject(v, -EPERM, "qcow2.compressed",
                          "guest cluster %" PRIu64 " is compressed: compressed clusters are stored unencrypted", gcluster);
    if (word & Q_L2_RESERVED)
        return sif_reject(v, -EINVAL, "qcow2.l2", "L2 entry of guest cluster %" PRIu64 " has reserved bits set (0x%016" PRIx64 ")",
                          gcluster, word);
    if (host % q->cluster_size)
        return sif_reject(v, -EINVAL, "qcow2.l2", "guest cluster %" PRIu64 " maps to misaligned host offset %" PRIu64,
                          gcluster, host);
    if (q->extended_l2) {
        uint64_t bitmap = sif_be64(e + 8);

        if (word & Q_L2_ZERO)
            return sif_reject(v, -EINVAL, "qcow2.l2", "extended L2 entry of guest cluster %" PRIu64 " sets the reserved zero bit", gcluster);
        c->alloc = (uint32_t)bitmap;
        c->zero = (uint32_t)(bitmap >> 32);
        if (c->alloc & c->zero)
            return sif_reject(v, -EINVAL, "qcow2.l2", "guest cluster %" PRIu64 " has subclusters both allocated and zero", gcluster);
        if (c->alloc && !host)
            return sif_reject(v, -EINVAL, "qcow2.l2", "guest cluster %" PRIu64 " has allocated subclusters but no host cluster", gcluster);
        if (!host && (word & Q_L2_COPIED))
            return sif_reject(v, -EINVAL, "qcow2.l2", "guest cluster %" PRIu64 " maps to host offset 0", gcluster);
        if (c->alloc) {
            /* The file must hold every allocated subcluster that lies
             * inside the virtual disk. */
            int last = 31 - __builtin_clz(c->alloc);
            need = (uint64_t)(last + 1) * q->subcluster_size;
        }
    } else {
        if ((word & Q_L2_ZERO) && q->version < 3)
            return sif_reject(v, -EINVAL, "qcow2.l2", "guest cluster %" PRIu64 " sets the zero bit in a version 2 image", gcluster);
        if (word & Q_L2_ZERO) {
            c->zero = 1;
        } else if (host) {
            c->alloc = 1;
            need = q->cluster_size;
        } else if (word & Q_L2_COPIED) {
            return sif_reject(v, -EINVAL, "qcow2.l2", "guest cluster %" PRIu64 " maps to host offset 0", gcluster);
        }
    }
    if (need) {
        if (need > bytes)
            need = (bytes + 511) & ~511ULL;
        if (!sif_range_ok(host, need, file_size))
            return sif_reject(v, -EINVAL, "qcow2.l2", "guest cluster %" PRIu64 " maps to %" PRIu64 "+%" PRIu64 ", past the end of the file",
                              gcluster, host, need);
        c->host = host;
    }
    return 0;
}
