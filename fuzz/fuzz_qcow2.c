/* fuzz_qcow2.c: libFuzzer harness for the qcow2 parser (qcow2.h).
 *
 * The input is the start of an untrusted qcow2 file.  It is parsed
 *
 *   1. as a whole file: sif_qcow2_parse(input, size, file_size = size), in
 *      an exact-size buffer so ASan sees any read past the end;
 *   2. as the start of the smallest file that holds every table its header
 *      names (L1, refcount table, snapshot table, encryption header), the
 *      input followed by zeros: so a header cut from a real image, whose
 *      tables lie past the cut, still parses.  len = min(file_size, 2 MiB)
 *      covers the largest header cluster, as qcow2.h asks.
 *
 * When a parse succeeds, the result must satisfy what fmt_qcow2.c relies
 * on; then L1 entries (the image's own L1 table where the input holds it,
 * else words of the input) go through sif_qcow2_l1_entry, L2 entries (an L2
 * table the input holds, else bytes of the input) through
 * sif_qcow2_l2_entry, with their contracts checked, and the encryption
 * header region, where the input holds it, through
 * sif_luks_parse_embedded as fmt_qcow2.c does.
 */
#include "config.h"

#include <errno.h>

#include "fuzz.h"
#include "luks.h"
#include "qcow2.h"

#define PAD_LEN ((size_t)2 << 20) /* the largest cluster: the header cluster */
#define MAX_ENTRIES 64

static bool in_file(uint64_t off, uint64_t len, uint64_t file_size)
{
    return off <= file_size && len <= file_size - off;
}

static void parsed_ok(const struct sif_qcow2 *q, uint64_t file_size, bool plain_ok)
{
    uint64_t clusters, l1_bytes = (uint64_t)q->l1_size * 8;

    FUZZ_CHECK(q->version == 2 || q->version == 3);
    FUZZ_CHECK(q->cluster_bits >= 9 && q->cluster_bits <= 21);
    FUZZ_CHECK(q->cluster_size == 1ULL << q->cluster_bits);
    FUZZ_CHECK(q->size >= 512);
    FUZZ_CHECK(q->l2_entry_len == (q->extended_l2 ? 16u : 8u));
    FUZZ_CHECK((uint64_t)q->l2_entries * q->l2_entry_len == q->cluster_size);
    FUZZ_CHECK(q->subcluster_size == (q->extended_l2 ? q->cluster_size / 32 : q->cluster_size));
    FUZZ_CHECK(!q->extended_l2 || q->version == 3);
    /* The L1 entries in use map the whole virtual disk, and no more. */
    clusters = q->size / q->cluster_size + (q->size % q->cluster_size != 0);
    FUZZ_CHECK(q->l1_used <= q->l1_size);
    FUZZ_CHECK(q->l1_used == clusters / q->l2_entries + (clusters % q->l2_entries != 0));
    FUZZ_CHECK(l1_bytes <= SIF_QCOW2_L1_MAX_BYTES);
    /* Tables are cluster-aligned, after the header cluster, in the file. */
    FUZZ_CHECK(q->l1_offset % q->cluster_size == 0 && q->l1_offset >= q->cluster_size);
    FUZZ_CHECK(in_file(q->l1_offset, l1_bytes, file_size));
    FUZZ_CHECK(q->refcount_len > 0 && q->refcount_len <= SIF_QCOW2_REFTABLE_MAX);
    FUZZ_CHECK(q->refcount_offset % q->cluster_size == 0 && q->refcount_offset >= q->cluster_size);
    FUZZ_CHECK(in_file(q->refcount_offset, q->refcount_len, file_size));
    /* Only LUKS encryption, with its header in the file, clear of L1 (or,
     * when the caller allowed it, none at all and no header). */
    if (q->crypt_method == SIF_QCOW2_CRYPT_NONE && plain_ok) {
        FUZZ_CHECK(q->crypt_length == 0 && q->crypt_offset == 0);
        return;
    }
    FUZZ_CHECK(q->crypt_method == SIF_QCOW2_CRYPT_LUKS);
    FUZZ_CHECK(q->crypt_length > 0 && q->crypt_length <= SIF_QCOW2_CRYPT_MAX);
    FUZZ_CHECK(q->crypt_offset % q->cluster_size == 0 && q->crypt_offset >= q->cluster_size);
    FUZZ_CHECK(in_file(q->crypt_offset, q->crypt_length, file_size));
    FUZZ_CHECK(q->crypt_offset + q->crypt_length <= q->l1_offset || q->l1_offset + l1_bytes <= q->crypt_offset ||
               l1_bytes == 0);
}

/* The guest clusters of the virtual disk (at least 1). */
static uint64_t guest_clusters(const struct sif_qcow2 *q)
{
    return q->size / q->cluster_size + (q->size % q->cluster_size != 0);
}

static void l1_ok(const struct sif_qcow2 *q, uint64_t raw, uint64_t file_size, uint32_t index)
{
    struct sif_verdict v;
    uint64_t l2 = 0xdeadbeef;
    int r;

    sif_verdict_init(&v);
    r = sif_qcow2_l1_entry(q, raw, file_size, index, &l2, &v);
    if (r) {
        FUZZ_CHECK(l2 == 0);
        fuzz_rejected_ok(r, &v, "qcow2.l1");
        return;
    }
    FUZZ_CHECK(v.state == SIF_PENDING);
    /* 0 (unallocated) or a whole cluster inside the file. */
    FUZZ_CHECK(l2 == 0 || (l2 % q->cluster_size == 0 && in_file(l2, q->cluster_size, file_size)));
}

static void l2_ok(const struct sif_qcow2 *q, const uint8_t *e, uint64_t gcluster, uint64_t file_size)
{
    struct sif_qcow2_cluster c;
    struct sif_verdict v;
    uint64_t bytes = sif_qcow2_cluster_bytes(q, gcluster), need;
    int r;

    FUZZ_CHECK(bytes > 0 && bytes <= q->cluster_size);
    sif_verdict_init(&v);
    r = sif_qcow2_l2_entry(q, e, gcluster, file_size, &c, &v);
    if (r) {
        FUZZ_CHECK(v.state == SIF_REJECTED);
        FUZZ_CHECK(!strcmp(v.check, "qcow2.l2") || !strcmp(v.check, "qcow2.compressed"));
        fuzz_rejected_ok(r, &v, "qcow2.");
        return;
    }
    FUZZ_CHECK(v.state == SIF_PENDING);
    FUZZ_CHECK((c.alloc & c.zero) == 0);
    if (!q->extended_l2)
        FUZZ_CHECK(c.alloc <= 1 && c.zero <= 1);
    if (!c.alloc)
        return;
    /* Allocated data: an aligned host cluster, and the file holds every
     * allocated byte that lies inside the virtual disk (whole sectors). */
    FUZZ_CHECK(c.host != 0 && c.host % q->cluster_size == 0);
    need = q->extended_l2 ? (uint64_t)(32 - __builtin_clz(c.alloc)) * q->subcluster_size : q->cluster_size;
    if (need > bytes)
        need = (bytes + 511) & ~511ULL;
    FUZZ_CHECK(in_file(c.host, need, file_size));
}

/* Decodes table entries after a successful parse.  file is the content
 * the parser saw (flen bytes of a file_size-byte file). */
static void decode_tables(const struct sif_qcow2 *q, const uint8_t *file, size_t flen, uint64_t file_size,
                          const uint8_t *data, size_t size)
{
    uint64_t clusters = guest_clusters(q), last = clusters - 1;
    uint32_t n1 = q->l1_used < MAX_ENTRIES ? q->l1_used : MAX_ENTRIES;
    uint64_t l2_first = 0, l2_index = 0;

    /* The edges of the virtual disk. */
    FUZZ_CHECK(sif_qcow2_cluster_bytes(q, clusters) == 0);
    FUZZ_CHECK(sif_qcow2_cluster_bytes(q, last) == q->size - last * q->cluster_size);

    /* L1: the image's own table where the content holds it. */
    for (uint32_t i = 0; i < n1; i++) {
        uint64_t off = q->l1_offset + (uint64_t)i * 8;
        uint64_t raw = off + 8 <= flen ? fuzz_be64(file + off) : 0;
        struct sif_verdict v;
        uint64_t l2;

        l1_ok(q, raw, file_size, i);
        sif_verdict_init(&v);
        if (!l2_first && raw && !sif_qcow2_l1_entry(q, raw, file_size, i, &l2, &v) && l2 && l2 < flen) {
            l2_first = l2;
            l2_index = i;
        }
    }
    /* ... and words of the input, at the last L1 index too. */
    for (size_t i = 0; i + 8 <= size && i / 8 < MAX_ENTRIES; i += 8)
        l1_ok(q, fuzz_be64(data + size - 8 - i), file_size, (uint32_t)(i / 8 % q->l1_used));

    /* L2: the first table the L1 points at inside the content. */
    if (l2_first) {
        size_t avail = flen - (size_t)l2_first, n = avail / q->l2_entry_len;
        uint64_t g0 = l2_index * q->l2_entries;

        for (size_t j = 0; j < n && j < MAX_ENTRIES && g0 + j < clusters; j++)
            l2_ok(q, file + l2_first + j * q->l2_entry_len, g0 + j, file_size);
    }
    /* ... and entries cut from the end of the input, mapped over the
     * whole disk: first, last and in between. */
    for (size_t i = 0, k = 0; i + q->l2_entry_len <= size && k < MAX_ENTRIES; i += q->l2_entry_len, k++) {
        uint8_t e[16];
        uint64_t g = k == 0 ? 0 : k == 1 ? last : fuzz_be64(data + size - i - q->l2_entry_len) % clusters;

        memcpy(e, data + size - i - q->l2_entry_len, q->l2_entry_len);
        l2_ok(q, e, g, file_size);
    }
}

/* The encryption header region, as fmt_qcow2.c hands it to the LUKS parser. */
static void crypt_header(const struct sif_qcow2 *q, const uint8_t *file, size_t flen)
{
    struct sif_luks_info info;
    struct sif_verdict v;
    uint8_t *region;
    int r;

    if (q->crypt_offset >= flen || q->crypt_length > flen - q->crypt_offset)
        return;
    /* An exact-size copy shows reads past the region; past 64 KiB (the
     * 1 MiB key material of real images) copying would dominate the run
     * time, and fuzz_luks covers the parser on exact buffers. */
    region = q->crypt_length <= (64u << 10) ? malloc(q->crypt_length) : NULL;
    if (region)
        memcpy(region, file + q->crypt_offset, q->crypt_length);
    sif_verdict_init(&v);
    r = sif_luks_parse_embedded(region ? region : file + q->crypt_offset, q->crypt_length, &info, &v);
    if (r) {
        FUZZ_CHECK(v.state == SIF_REJECTED);
        FUZZ_CHECK(!strncmp(v.check, "luks.", 5) || !strcmp(v.check, "qcow2.crypt_header"));
        fuzz_verdict_ok(&v);
    } else {
        FUZZ_CHECK(info.version == 1);
        FUZZ_CHECK(info.meta_len <= info.data_offset && info.data_offset <= q->crypt_length);
    }
    free(region);
}

static void parse(const uint8_t *buf, size_t len, uint64_t file_size, const uint8_t *data, size_t size,
                  bool render)
{
    struct sif_qcow2 q;
    struct sif_verdict v;
    int r;

    sif_verdict_init(&v);
    r = sif_qcow2_parse(buf, len, file_size, &q, &v);
    if (r) {
        FUZZ_CHECK(r == -EINVAL || r == -EPERM);
        fuzz_rejected_ok(r, &v, "qcow2.");
        if (render)
            fuzz_verdict_ok(&v);
        return;
    }
    FUZZ_CHECK(v.state == SIF_PENDING);
    parsed_ok(&q, file_size, false);
    decode_tables(&q, buf, len < file_size ? len : (size_t)file_size, file_size, data, size);
    crypt_header(&q, buf, len < file_size ? len : (size_t)file_size);
}

/* With unencrypted images allowed (policy "serve"): the same contract, and
 * whatever passes only because of it has no encryption header at all. */
static void parse_plain(const uint8_t *buf, size_t len, uint64_t file_size)
{
    struct sif_qcow2 q;
    struct sif_verdict v;
    int r;

    sif_verdict_init(&v);
    r = sif_qcow2_parse_opts(buf, len, file_size, true, &q, &v);
    if (r) {
        FUZZ_CHECK(r == -EINVAL || r == -EPERM);
        fuzz_rejected_ok(r, &v, "qcow2.");
        FUZZ_CHECK(strcmp(v.check, "qcow2.unencrypted") != 0);
        return;
    }
    FUZZ_CHECK(v.state == SIF_PENDING);
    parsed_ok(&q, file_size, true);
}

/* End of the table [off, off + len), saturating. */
static uint64_t table_end(uint64_t off, uint64_t len)
{
    uint64_t end;

    return __builtin_add_overflow(off, len, &end) ? UINT64_MAX : end;
}

/* The smallest file that holds every table the header names, at least the
 * input itself (0 when there is nothing to add). */
static uint64_t derived_size(const uint8_t *d, size_t size)
{
    uint64_t fs = size, e;
    uint32_t bits;

    if (size < 72 || memcmp(d, "QFI\xfb", 4) != 0)
        return 0;
    bits = fuzz_be32(d + 20);
    if (bits < 9 || bits > 21)
        return 0;
#define GROW(x) do { e = (x); if (e > fs) fs = e; } while (0)
    GROW(table_end(fuzz_be64(d + 40), (uint64_t)fuzz_be32(d + 36) * 8));          /* L1 */
    GROW(table_end(fuzz_be64(d + 48), (uint64_t)fuzz_be32(d + 56) << bits));      /* refcount */
    if (fuzz_be32(d + 60))
        GROW(table_end(fuzz_be64(d + 64), 1));                                     /* snapshots */
    /* The header cluster and its extensions: the encryption header. */
    for (size_t off = size >= 104 && fuzz_be32(d + 4) == 3 ? fuzz_be32(d + 100) : 72;
         off + 8 <= size && off < (1u << bits);) {
        uint32_t type = fuzz_be32(d + off), len = fuzz_be32(d + off + 4);

        if (!type)
            break;
        if (type == 0x0537be77u && len == 16 && off + 24 <= size)
            GROW(table_end(fuzz_be64(d + off + 8), fuzz_be64(d + off + 16)));
        if (len > size)
            break;
        off += 8 + (((size_t)len + 7) & ~(size_t)7);
    }
    GROW((uint64_t)1 << bits);
#undef GROW
    /* Past 1 PiB nothing is a table a real image has. */
    return fs > size && fs <= (1ULL << 50) ? fs : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *pad;
    uint8_t *copy = malloc(size);
    uint64_t fs;

    /* 1: exactly the input. */
    FUZZ_CHECK(size == 0 || copy != NULL);
    if (size)
        memcpy(copy, data, size);
    parse(copy, size, size, data, size, true);
    parse_plain(copy, size, size);
    free(copy);

    /* 2: the input at the start of a file with room for its tables. */
    fs = derived_size(data, size);
    if (fs && size <= PAD_LEN) {
        size_t len = fs < PAD_LEN ? (size_t)fs : PAD_LEN;

        if (!pad)
            pad = calloc(1, PAD_LEN);
        FUZZ_CHECK(pad != NULL);
        memcpy(pad, data, size);
        parse(pad, len, fs, data, size, false);
        parse_plain(pad, len, fs);
        memset(pad, 0, size);
    }
    return 0;
}
