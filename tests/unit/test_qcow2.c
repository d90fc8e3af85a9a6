/* test_qcow2.c: sif_qcow2_parse(), the L1/L2 entry decoders,
 * sif_qcow2_cluster_bytes() and sif_luks_parse_embedded() on crafted bytes.
 *
 * A valid qcow2 v3 + LUKS header is built in memory from the field offsets
 * of qemu's docs/interop/qcow2.txt (written here independently of
 * src/qcow2.c, so that a wrong offset in one shows up); each refuse
 * condition then changes one thing and asserts the return code and the
 * exact check id.  Every buffer handed to the parser is allocated with
 * exactly the length passed, so the sanitizer build catches over-reads.
 * A fixed-seed mutation loop ends the file.
 */
#include "config.h"

#include "unit.h"

#include "luks.h"
#include "qcow2.h"
#include "verdict.h"

/* ------------------------------------------------------------ layout */

/* qcow2 header fields (big-endian), docs/interop/qcow2.txt. */
#define H_MAGIC 0
#define H_VERSION 4
#define H_BACKING_OFFSET 8
#define H_BACKING_SIZE 16
#define H_CLUSTER_BITS 20
#define H_SIZE 24
#define H_CRYPT 32
#define H_L1_SIZE 36
#define H_L1_OFFSET 40
#define H_REFCOUNT_OFFSET 48
#define H_REFCOUNT_CLUSTERS 56
#define H_INCOMPAT 72
#define H_REFCOUNT_ORDER 96
#define H_HEADER_LENGTH 100
#define H_COMPRESSION_TYPE 104

/* Header extension types. */
#define X_END 0x00000000u
#define X_BACKING_FORMAT 0xe2792acau
#define X_FEATURE_NAMES 0x6803f857u
#define X_BITMAPS 0x23852875u
#define X_FDE 0x0537be77u
#define X_DATA_FILE 0x44415441u
#define X_UNKNOWN 0x12345678u

/* Incompatible feature bits. */
#define F_DIRTY (1ULL << 0)
#define F_CORRUPT (1ULL << 1)
#define F_DATA_FILE (1ULL << 2)
#define F_COMPRESSION (1ULL << 3)
#define F_EXTL2 (1ULL << 4)

/* The default image: 64 KiB clusters, the L1 table in cluster 1, the LUKS1
 * region qemu writes for a 512-bit key (4040 sectors) from cluster 2, and
 * a virtual disk of 163840 full clusters plus 4096 bytes, so that the last
 * guest cluster is partial and 21 L2 tables (20 full + 1) are needed. */
#define CS 65536u
#define L1_OFF 0x10000u
#define FDE_OFF 0x20000u
#define FDE_LEN (4040u * 512)
#define FILE_SIZE (4u << 20)
#define FULL_CLUSTERS 163840u
#define DISK ((uint64_t)FULL_CLUSTERS * CS + 4096)
#define L1_USED 21u
#define L1_SIZE 24u
/* With extended L2 entries an L2 table maps 4096 clusters: 41 tables. */
#define L1_USED_EXT 41u
#define L1_SIZE_EXT 48u
/* Bytes handed to the parser (the caller hands it 8 MiB; the extension
 * walk never looks past the first cluster). */
#define PARSE_LEN (256u << 10)
/* A host cluster well inside the default file, and the last one. */
#define HOST 0x300000u
#define LAST_HOST (FILE_SIZE - CS)

struct hdr {
    uint32_t version;
    uint64_t backing_offset;
    uint32_t backing_size;
    uint32_t cluster_bits;
    uint64_t size;
    uint32_t crypt;
    uint32_t l1_size;
    uint64_t l1_offset;
    uint64_t incompat;
    uint32_t refcount_order;
    uint32_t header_length;     /* v3 only; v2 extensions start at 72 */
    uint8_t compression_type;   /* written when header_length > 104 */
    bool fde;                   /* write the FDE pointer extension first */
    uint32_t fde_ext_len;       /* its length field (16) */
    uint64_t fde_offset;
    uint64_t fde_length;
    uint64_t file_size;
    size_t len;                 /* bytes passed to the parser */
};

/* An image in memory: the first len bytes of a file of file_size bytes.
 * ext is where the next header extension goes (the end marker is the
 * zeros that follow). */
struct img {
    uint8_t *buf;
    size_t len;
    uint64_t file_size;
    size_t ext;
};

static void hdr_default(struct hdr *h)
{
    memset(h, 0, sizeof(*h));
    h->version = 3;
    h->cluster_bits = 16;
    h->size = DISK;
    h->crypt = 2;
    h->l1_size = L1_SIZE;
    h->l1_offset = L1_OFF;
    h->refcount_order = 4;
    h->header_length = 112;
    h->fde = true;
    h->fde_ext_len = 16;
    h->fde_offset = FDE_OFF;
    h->fde_length = FDE_LEN;
    h->file_size = FILE_SIZE;
    h->len = PARSE_LEN;
}

static void hdr_v2(struct hdr *h)
{
    hdr_default(h);
    h->version = 2;
    h->header_length = 0;
}

static void hdr_extl2(struct hdr *h)
{
    hdr_default(h);
    h->incompat = F_EXTL2;
    h->l1_size = L1_SIZE_EXT;
}

/* Writes one extension (type, length, data padded to 8) at b + *off. */
static void ext_write(uint8_t *b, size_t cap, size_t *off, uint32_t type, uint32_t len, const void *data)
{
    size_t padded = ((size_t)len + 7) & ~(size_t)7;

    assert_true(*off + 8 + padded <= cap);
    unit_put_be32(b + *off, type);
    unit_put_be32(b + *off + 4, len);
    if (data)
        memcpy(b + *off + 8, data, len);
    *off += 8 + padded;
}

static struct img img_build(const struct hdr *h)
{
    size_t cap = h->len > 4096 ? h->len : 4096;
    uint8_t *full = calloc(cap, 1);
    struct img im;

    assert_non_null(full);
    memcpy(full + H_MAGIC, "QFI\xfb", 4);
    unit_put_be32(full + H_VERSION, h->version);
    unit_put_be64(full + H_BACKING_OFFSET, h->backing_offset);
    unit_put_be32(full + H_BACKING_SIZE, h->backing_size);
    unit_put_be32(full + H_CLUSTER_BITS, h->cluster_bits);
    unit_put_be64(full + H_SIZE, h->size);
    unit_put_be32(full + H_CRYPT, h->crypt);
    unit_put_be32(full + H_L1_SIZE, h->l1_size);
    unit_put_be64(full + H_L1_OFFSET, h->l1_offset);
    /* a refcount table in cluster 1: the parser checks only that it is
     * aligned and inside the file (overlaps are fmt_qcow2.c's business) */
    unit_put_be64(full + H_REFCOUNT_OFFSET,
                  h->cluster_bits >= 9 && h->cluster_bits <= 21 ? 1ull << h->cluster_bits : 0x10000);
    unit_put_be32(full + H_REFCOUNT_CLUSTERS, 1);
    im.ext = 72;
    if (h->version == 3) {
        unit_put_be64(full + H_INCOMPAT, h->incompat);
        unit_put_be32(full + H_REFCOUNT_ORDER, h->refcount_order);
        unit_put_be32(full + H_HEADER_LENGTH, h->header_length);
        if (h->header_length > H_COMPRESSION_TYPE)
            full[H_COMPRESSION_TYPE] = h->compression_type;
        im.ext = h->header_length < cap ? h->header_length : cap;
    }
    if (h->fde) {
        uint8_t d[64] = { 0 };

        assert_true(h->fde_ext_len <= sizeof(d));
        unit_put_be64(d, h->fde_offset);
        unit_put_be64(d + 8, h->fde_length);
        ext_write(full, cap, &im.ext, X_FDE, h->fde_ext_len, d);
    }
    im.file_size = h->file_size;
    im.len = h->len;
    im.buf = malloc(im.len ? im.len : 1);
    assert_non_null(im.buf);
    memcpy(im.buf, full, im.len);
    free(full);
    return im;
}

/* Appends an extension after those written so far. */
static void img_ext(struct img *im, uint32_t type, uint32_t len, const void *data)
{
    ext_write(im->buf, im->len, &im->ext, type, len, data);
}

static void img_free(struct img *im)
{
    free(im->buf);
    im->buf = NULL;
}

/* ------------------------------------------------------------ expectations */

/* Refusals of well-formed images (policy) return -EPERM, malformed ones
 * -EINVAL. */
static int check_err(const char *check)
{
    static const char *const perm[] = {
        "qcow2.backing", "qcow2.data_file", "qcow2.corrupt", "qcow2.feature",
        "qcow2.unencrypted", "qcow2.aes", "qcow2.compressed",
    };

    for (size_t i = 0; i < sizeof(perm) / sizeof(perm[0]); i++)
        if (strcmp(check, perm[i]) == 0)
            return -EPERM;
    return -EINVAL;
}

static int parse(const struct img *im, struct sif_qcow2 *q, struct sif_verdict *v)
{
    sif_verdict_init(v);
    return sif_qcow2_parse(im->buf, im->len, im->file_size, q, v);
}

static void expect_ok(const struct img *im, struct sif_qcow2 *q)
{
    struct sif_verdict v;
    int r = parse(im, q, &v);

    if (r)
        fail_msg("parse failed (%d): [%s] %s", r, v.check, v.reason);
    assert_int_equal(v.state, SIF_PENDING);
    assert_string_equal(v.check, "");
}

/* The parser refuses the image with this check id; when why is not NULL
 * the reason mentions it (for qcow2.header, which covers many causes). */
static void expect_reject_why(const struct img *im, const char *check, const char *why)
{
    struct sif_qcow2 q;
    struct sif_verdict v;
    int r = parse(im, &q, &v);

    if (r == 0)
        fail_msg("parse accepted the image, expected [%s]", check);
    if (strcmp(v.check, check) != 0)
        fail_msg("rejected with [%s] %s, expected [%s]", v.check, v.reason, check);
    assert_int_equal(r, check_err(check));
    assert_int_equal(v.state, SIF_REJECTED);
    assert_true(v.reason[0] != 0);
    if (why && !strstr(v.reason, why))
        fail_msg("reason \"%s\" does not mention \"%s\"", v.reason, why);
}

static void expect_reject(const struct img *im, const char *check)
{
    expect_reject_why(im, check, NULL);
}

static void hdr_expect_ok(const struct hdr *h, struct sif_qcow2 *q)
{
    struct img im = img_build(h);

    expect_ok(&im, q);
    img_free(&im);
}

static void hdr_expect_why(const struct hdr *h, const char *check, const char *why)
{
    struct img im = img_build(h);

    expect_reject_why(&im, check, why);
    img_free(&im);
}

static void hdr_expect(const struct hdr *h, const char *check)
{
    hdr_expect_why(h, check, NULL);
}

/* The parsed default (or variant) header, for the entry tests. */
static void q_of(const struct hdr *h, struct sif_qcow2 *q)
{
    hdr_expect_ok(h, q);
}

/* ------------------------------------------------------------ valid headers */

static void test_v3_valid(void **state)
{
    struct sif_qcow2 q;
    struct hdr h;

    (void)state;
    hdr_default(&h);
    hdr_expect_ok(&h, &q);
    assert_int_equal(q.version, 3);
    assert_int_equal(q.cluster_bits, 16);
    assert_int_equal(q.cluster_size, CS);
    assert_int_equal(q.size, DISK);
    assert_int_equal(q.crypt_method, SIF_QCOW2_CRYPT_LUKS);
    assert_int_equal(q.l1_size, L1_SIZE);
    assert_int_equal(q.l1_offset, L1_OFF);
    assert_int_equal(q.l1_used, L1_USED);
    assert_int_equal(q.incompat, 0);
    assert_false(q.dirty);
    assert_false(q.extended_l2);
    assert_int_equal(q.l2_entries, CS / 8);
    assert_int_equal(q.l2_entry_len, 8);
    assert_int_equal(q.subcluster_size, CS);
    assert_int_equal(q.crypt_offset, FDE_OFF);
    assert_int_equal(q.crypt_length, FDE_LEN);

    /* the header alone (no extension area besides FDE, 104-byte header) */
    h.header_length = 104;
    hdr_expect_ok(&h, &q);
    assert_int_equal(q.crypt_offset, FDE_OFF);

    /* l1_size exactly what the size needs */
    hdr_default(&h);
    h.l1_size = L1_USED;
    hdr_expect_ok(&h, &q);
    assert_int_equal(q.l1_used, L1_USED);
    assert_int_equal(q.l1_size, L1_USED);

    /* a disk of exactly 20 full L2 tables needs 20 */
    h.size = (uint64_t)FULL_CLUSTERS * CS;
    hdr_expect_ok(&h, &q);
    assert_int_equal(q.l1_used, 20);
    /* one byte more needs a 21st */
    h.size++;
    hdr_expect_ok(&h, &q);
    assert_int_equal(q.l1_used, 21);

    /* a one-sector disk needs one L2 table */
    h.size = 512;
    h.l1_size = 1;
    hdr_expect_ok(&h, &q);
    assert_int_equal(q.l1_used, 1);
    /* less than a sector is no disk at all (qemu serves whole sectors) */
    h.size = 511;
    hdr_expect(&h, "qcow2.size");
}

static void test_v2_valid(void **state)
{
    struct sif_qcow2 q;
    struct hdr h;
    struct img im;

    (void)state;
    hdr_v2(&h);
    im = img_build(&h);
    /* the extensions start at 72: bytes 72.. are the FDE extension, which
     * must not be read as v3 feature bits */
    assert_int_equal(im.buf[72], 0x05);
    assert_int_equal(im.buf[75], 0x77);
    expect_ok(&im, &q);
    img_free(&im);
    assert_int_equal(q.version, 2);
    assert_int_equal(q.cluster_size, CS);
    assert_int_equal(q.size, DISK);
    assert_int_equal(q.l1_used, L1_USED);
    assert_int_equal(q.l1_size, L1_SIZE);
    assert_int_equal(q.l1_offset, L1_OFF);
    assert_int_equal(q.incompat, 0);
    assert_false(q.dirty);
    assert_false(q.extended_l2);
    assert_int_equal(q.l2_entries, CS / 8);
    assert_int_equal(q.l2_entry_len, 8);
    assert_int_equal(q.subcluster_size, CS);
    assert_int_equal(q.crypt_offset, FDE_OFF);
    assert_int_equal(q.crypt_length, FDE_LEN);

    /* a v2 file of exactly 72 bytes is a header without extensions (and
     * then fails later for the L1 table, not for the header) */
    h.file_size = 72;
    h.len = 72;
    h.fde = false;
    hdr_expect(&h, "qcow2.l1");
}

static void test_extl2_valid(void **state)
{
    struct sif_qcow2 q;
    struct hdr h;

    (void)state;
    hdr_extl2(&h);
    hdr_expect_ok(&h, &q);
    assert_int_equal(q.version, 3);
    assert_int_equal(q.cluster_size, CS);
    assert_true(q.extended_l2);
    assert_false(q.dirty);
    assert_int_equal(q.incompat, F_EXTL2);
    assert_int_equal(q.l2_entry_len, 16);
    assert_int_equal(q.l2_entries, CS / 16);
    assert_int_equal(q.subcluster_size, 2048);
    assert_int_equal(q.l1_used, L1_USED_EXT);
    assert_int_equal(q.l1_size, L1_SIZE_EXT);
    assert_int_equal(q.crypt_offset, FDE_OFF);
    assert_int_equal(q.crypt_length, FDE_LEN);

    /* the smallest cluster extended L2 allows: 16 KiB, 512-byte subclusters */
    h.cluster_bits = 14;
    h.size = 1u << 30;
    h.l1_size = 1;          /* 65536 clusters / 1024 entries = 64 */
    hdr_expect(&h, "qcow2.l1");
    h.l1_size = 64;
    h.l1_offset = 0x4000;
    h.fde_offset = 0x8000;
    hdr_expect_ok(&h, &q);
    assert_int_equal(q.subcluster_size, 512);
    assert_int_equal(q.l2_entries, 1024);
    assert_int_equal(q.l1_used, 64);
}

/* The cluster_bits limits: 512-byte and 2 MiB clusters are accepted. */
static void test_cluster_bits_limits(void **state)
{
    struct sif_qcow2 q;
    struct hdr h;

    (void)state;
    hdr_default(&h);
    h.cluster_bits = 9;
    h.size = 1u << 20;      /* 2048 clusters, 64 per L2 table */
    h.l1_size = 32;
    h.l1_offset = 512;
    h.fde_offset = 1024;
    hdr_expect_ok(&h, &q);
    assert_int_equal(q.cluster_size, 512);
    assert_int_equal(q.l2_entries, 64);
    assert_int_equal(q.l1_used, 32);

    hdr_default(&h);
    h.cluster_bits = 21;
    h.l1_size = 1;          /* 5121 clusters, 262144 per L2 table */
    h.l1_offset = 2u << 20;
    h.fde_offset = 4u << 20;
    h.file_size = 8u << 20;
    h.len = 2u << 20;
    hdr_expect_ok(&h, &q);
    assert_int_equal(q.cluster_size, 2u << 20);
    assert_int_equal(q.l2_entries, 262144);
    assert_int_equal(q.l1_used, 1);
}

/* refcount_order up to 6 and a zstd compression type are fine. */
static void test_valid_variants(void **state)
{
    struct sif_qcow2 q;
    struct hdr h;

    (void)state;
    hdr_default(&h);
    h.refcount_order = 6;
    hdr_expect_ok(&h, &q);
    h.refcount_order = 0;
    hdr_expect_ok(&h, &q);

    hdr_default(&h);
    h.incompat = F_COMPRESSION;
    h.compression_type = 1;
    hdr_expect_ok(&h, &q);
    assert_int_equal(q.incompat, F_COMPRESSION);

    /* all known harmless bits together */
    hdr_extl2(&h);
    h.incompat |= F_DIRTY | F_COMPRESSION;
    h.compression_type = 1;
    hdr_expect_ok(&h, &q);
    assert_true(q.dirty);
    assert_true(q.extended_l2);
}

static void test_dirty_accepted(void **state)
{
    struct sif_qcow2 q;
    struct hdr h;

    (void)state;
    hdr_default(&h);
    h.incompat = F_DIRTY;
    hdr_expect_ok(&h, &q);
    assert_true(q.dirty);
    assert_false(q.extended_l2);
    assert_int_equal(q.incompat, F_DIRTY);
}

/* ------------------------------------------------------------ header refusals */

static void test_magic_and_truncation(void **state)
{
    struct hdr h;
    struct img im;

    (void)state;
    hdr_default(&h);
    im = img_build(&h);
    im.buf[3] = 0xfc;
    expect_reject_why(&im, "qcow2.header", "magic");
    img_free(&im);
    im = img_build(&h);
    memset(im.buf, 0, 4);
    expect_reject(&im, "qcow2.header");
    img_free(&im);

    /* an empty file, and files shorter than the v2 header */
    h.file_size = 0;
    h.len = 0;
    hdr_expect(&h, "qcow2.header");
    h.file_size = 3;
    h.len = 3;
    hdr_expect(&h, "qcow2.header");
    h.file_size = 71;
    h.len = 71;
    hdr_expect(&h, "qcow2.header");
    /* the buffer is long but the file is not: file_size wins */
    h.len = PARSE_LEN;
    hdr_expect(&h, "qcow2.header");
    /* a v3 header cut inside its 104 bytes */
    h.file_size = 100;
    h.len = 100;
    hdr_expect_why(&h, "qcow2.header", "truncated");
    h.file_size = 103;
    h.len = 103;
    hdr_expect_why(&h, "qcow2.header", "truncated");
    /* the file is long but only 72 bytes were passed */
    hdr_default(&h);
    h.len = 72;
    hdr_expect_why(&h, "qcow2.header", "truncated");
    /* header_length 112 with only 104 bytes passed */
    h.len = 104;
    hdr_expect_why(&h, "qcow2.header", "header_length");
}

static void test_version(void **state)
{
    static const uint32_t bad[] = { 0, 1, 4, 0x100, 0xffffffffu };
    struct hdr h;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hdr_default(&h);
        h.version = bad[i];
        hdr_expect(&h, "qcow2.version");
    }
}

static void test_cluster_bits(void **state)
{
    static const uint32_t bad[] = { 0, 8, 22, 31, 32, 63, 64, 0xffffffffu };
    struct hdr h;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hdr_default(&h);
        h.cluster_bits = bad[i];
        hdr_expect_why(&h, "qcow2.header", "cluster_bits");
    }
}

static void test_header_length(void **state)
{
    struct hdr h;

    (void)state;
    hdr_default(&h);
    /* no extensions: they would be written at the bad header_length */
    h.fde = false;
    h.header_length = 100;
    hdr_expect_why(&h, "qcow2.header", "header_length");
    h.header_length = 0;
    hdr_expect_why(&h, "qcow2.header", "header_length");
    h.header_length = 108;      /* not a multiple of 8 */
    hdr_expect_why(&h, "qcow2.header", "header_length");
    h.header_length = 113;
    hdr_expect_why(&h, "qcow2.header", "header_length");
    /* larger than the 64 KiB cluster (the buffer holds it) */
    h.header_length = CS + 8;
    hdr_expect_why(&h, "qcow2.header", "header_length");
    h.header_length = 0xfffffff8u;
    hdr_expect_why(&h, "qcow2.header", "header_length");
    /* exactly the cluster: no room for extensions, so no FDE pointer */
    h.header_length = CS;
    hdr_expect(&h, "qcow2.crypt_header");
    /* with 512-byte clusters: 520 is too long even though the buffer has it */
    hdr_default(&h);
    h.cluster_bits = 9;
    h.size = 1u << 20;
    h.l1_size = 32;
    h.l1_offset = 512;
    h.fde_offset = 1024;
    h.header_length = 520;
    h.fde = false;
    hdr_expect_why(&h, "qcow2.header", "header_length");
}

static void test_refcount_order(void **state)
{
    struct hdr h;

    (void)state;
    hdr_default(&h);
    h.refcount_order = 7;
    hdr_expect_why(&h, "qcow2.header", "refcount_order");
    h.refcount_order = 0xffffffffu;
    hdr_expect_why(&h, "qcow2.header", "refcount_order");
}

static void test_backing_file(void **state)
{
    struct hdr h;
    struct img im;

    (void)state;
    hdr_default(&h);
    h.backing_offset = 0x200;
    h.backing_size = 8;
    im = img_build(&h);
    memcpy(im.buf + 0x200, "base.img", 8);
    expect_reject(&im, "qcow2.backing");
    img_free(&im);
    /* any non-zero offset, even a nonsensical one */
    h.backing_offset = 0xffffffffffffffffULL;
    hdr_expect(&h, "qcow2.backing");
    /* v2 too */
    hdr_v2(&h);
    h.backing_offset = 0x200;
    hdr_expect(&h, "qcow2.backing");

    /* a backing format extension, after the FDE pointer or before it */
    hdr_default(&h);
    im = img_build(&h);
    img_ext(&im, X_BACKING_FORMAT, 5, "qcow2");
    expect_reject(&im, "qcow2.backing");
    img_free(&im);
    h.fde = false;
    im = img_build(&h);
    img_ext(&im, X_BACKING_FORMAT, 3, "raw");
    {
        uint8_t d[16];

        unit_put_be64(d, FDE_OFF);
        unit_put_be64(d + 8, FDE_LEN);
        img_ext(&im, X_FDE, 16, d);
    }
    expect_reject(&im, "qcow2.backing");
    img_free(&im);
}

static void test_data_file(void **state)
{
    struct hdr h;
    struct img im;

    (void)state;
    hdr_default(&h);
    h.incompat = F_DATA_FILE;
    hdr_expect(&h, "qcow2.data_file");
    /* the name extension alone */
    hdr_default(&h);
    im = img_build(&h);
    img_ext(&im, X_DATA_FILE, 9, "data.raw0");
    expect_reject(&im, "qcow2.data_file");
    img_free(&im);
    /* an empty name still names a data file */
    im = img_build(&h);
    img_ext(&im, X_DATA_FILE, 0, NULL);
    expect_reject(&im, "qcow2.data_file");
    img_free(&im);
}

static void test_corrupt(void **state)
{
    struct hdr h;

    (void)state;
    hdr_default(&h);
    h.incompat = F_CORRUPT;
    hdr_expect(&h, "qcow2.corrupt");
    h.incompat = F_CORRUPT | F_DIRTY;
    hdr_expect(&h, "qcow2.corrupt");
}

static void test_unknown_feature(void **state)
{
    static const int bits[] = { 5, 6, 31, 32, 62, 63 };
    struct hdr h;

    (void)state;
    for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
        hdr_default(&h);
        h.incompat = 1ULL << bits[i];
        hdr_expect(&h, "qcow2.feature");
        h.incompat |= F_DIRTY;
        hdr_expect(&h, "qcow2.feature");
    }
    /* compatible and autoclear bits are ignored */
    {
        struct sif_qcow2 q;
        struct img im;

        hdr_default(&h);
        im = img_build(&h);
        unit_put_be64(im.buf + 80, 0xffffffffffffffffULL);
        unit_put_be64(im.buf + 88, 0xffffffffffffffffULL);
        expect_ok(&im, &q);
        img_free(&im);
    }
}

static void test_compression_type(void **state)
{
    struct hdr h;

    (void)state;
    hdr_default(&h);
    h.incompat = F_COMPRESSION;
    /* the field is not present with a 104-byte header */
    h.header_length = 104;
    hdr_expect_why(&h, "qcow2.header", "compression");
    /* present but zlib (0) */
    h.header_length = 112;
    h.compression_type = 0;
    hdr_expect_why(&h, "qcow2.header", "compression");
}

static void test_extl2_small_cluster(void **state)
{
    struct hdr h;

    (void)state;
    hdr_extl2(&h);
    h.cluster_bits = 13;
    h.size = 1u << 20;
    h.l1_size = 1;
    h.l1_offset = 0x2000;
    h.fde_offset = 0x4000;
    hdr_expect_why(&h, "qcow2.header", "extended L2");
    h.cluster_bits = 9;
    h.l1_offset = 0x200;
    h.fde_offset = 0x400;
    h.l1_size = 64;
    hdr_expect_why(&h, "qcow2.header", "extended L2");
}

static void test_size(void **state)
{
    struct sif_qcow2 q;
    struct hdr h;

    (void)state;
    hdr_default(&h);
    h.size = 0;
    hdr_expect(&h, "qcow2.size");

    /* 64 KiB clusters: 2^51 bytes need exactly 2^22 L2 tables, a 32 MiB L1 */
    h.size = 1ULL << 51;
    h.l1_size = 1u << 22;
    h.l1_offset = L1_OFF;
    h.fde_offset = L1_OFF + (32u << 20);
    h.file_size = 64u << 20;
    hdr_expect_ok(&h, &q);
    assert_int_equal(q.l1_used, 1u << 22);
    /* one byte more needs an L1 table beyond 32 MiB */
    h.size++;
    hdr_expect_why(&h, "qcow2.size", "32 MiB");
    h.l1_size = 0xffffffffu;
    hdr_expect(&h, "qcow2.size");
}

static void test_l1_header(void **state)
{
    struct sif_qcow2 q;
    struct hdr h;

    (void)state;
    hdr_default(&h);
    h.l1_size = L1_USED - 1;
    hdr_expect(&h, "qcow2.l1");
    h.l1_size = 0;
    hdr_expect(&h, "qcow2.l1");
    /* more entries than qemu's 32 MiB limit, with a small disk */
    h.l1_size = (1u << 22) + 1;
    h.file_size = 64u << 20;
    hdr_expect(&h, "qcow2.l1");
    h.l1_size = 0xffffffffu;
    hdr_expect(&h, "qcow2.l1");

    /* misaligned, at 0 (the header), outside the file */
    hdr_default(&h);
    h.l1_offset = L1_OFF + 512;
    hdr_expect(&h, "qcow2.l1");
    h.l1_offset = L1_OFF + 8;
    hdr_expect(&h, "qcow2.l1");
    h.l1_offset = 0;
    hdr_expect(&h, "qcow2.l1");
    h.l1_offset = FILE_SIZE;
    hdr_expect(&h, "qcow2.l1");
    h.l1_offset = 1ULL << 40;
    hdr_expect(&h, "qcow2.l1");

    /* the table ends exactly at the end of the file; one byte short fails */
    hdr_default(&h);
    h.fde_offset = L1_OFF;
    h.l1_offset = L1_OFF + 0x200000;    /* after the region rounded to clusters */
    h.file_size = h.l1_offset + (uint64_t)L1_SIZE * 8;
    hdr_expect_ok(&h, &q);
    assert_int_equal(q.l1_offset, L1_OFF + 0x200000);
    h.file_size--;
    hdr_expect(&h, "qcow2.l1");
}

static void test_crypt_method(void **state)
{
    struct hdr h;

    (void)state;
    hdr_default(&h);
    h.crypt = 0;
    h.fde = false;
    hdr_expect(&h, "qcow2.unencrypted");
    /* with a stray FDE pointer it is still unencrypted */
    h.fde = true;
    hdr_expect(&h, "qcow2.unencrypted");
    /* an unencrypted image passes when the policy serves them, unless it
     * carries an encryption header pointer */
    {
        struct img im;
        struct sif_qcow2 q;
        struct sif_verdict v;

        h.fde = false;
        im = img_build(&h);
        sif_verdict_init(&v);
        assert_int_equal(sif_qcow2_parse_opts(im.buf, im.len, im.file_size, true, &q, &v), 0);
        assert_int_equal(q.crypt_method, 0);
        assert_int_equal(q.crypt_length, 0);
        img_free(&im);
        h.fde = true;
        im = img_build(&h);
        sif_verdict_init(&v);
        assert_int_equal(sif_qcow2_parse_opts(im.buf, im.len, im.file_size, true, &q, &v), -EINVAL);
        assert_string_equal(v.check, "qcow2.crypt_header");
        img_free(&im);
        /* and still qcow2.unencrypted without plain_ok */
        h.fde = false;
        im = img_build(&h);
        sif_verdict_init(&v);
        assert_int_equal(sif_qcow2_parse_opts(im.buf, im.len, im.file_size, false, &q, &v), -EPERM);
        assert_string_equal(v.check, "qcow2.unencrypted");
        img_free(&im);
    }
    h.crypt = 1;
    h.fde = false;
    hdr_expect(&h, "qcow2.aes");
    h.crypt = 3;
    hdr_expect_why(&h, "qcow2.header", "crypt_method");
    h.crypt = 0xffffffffu;
    h.fde = true;
    hdr_expect_why(&h, "qcow2.header", "crypt_method");
    /* v2 AES (what qemu used to write) */
    hdr_v2(&h);
    h.crypt = 1;
    h.fde = false;
    hdr_expect(&h, "qcow2.aes");
}

static void test_fde_missing_or_malformed(void **state)
{
    struct hdr h;
    struct img im;

    (void)state;
    hdr_default(&h);
    h.fde = false;
    hdr_expect(&h, "qcow2.crypt_header");
    hdr_v2(&h);
    h.fde = false;
    hdr_expect(&h, "qcow2.crypt_header");

    /* length 8 (offset only), 0, 24 */
    hdr_default(&h);
    h.fde_ext_len = 8;
    hdr_expect(&h, "qcow2.crypt_header");
    h.fde_ext_len = 0;
    hdr_expect(&h, "qcow2.crypt_header");
    h.fde_ext_len = 24;
    hdr_expect(&h, "qcow2.crypt_header");

    /* a pointer to an empty region */
    hdr_default(&h);
    h.fde_length = 0;
    hdr_expect(&h, "qcow2.crypt_header");

    /* twice, even with the same values */
    hdr_default(&h);
    im = img_build(&h);
    {
        uint8_t d[16];

        unit_put_be64(d, FDE_OFF);
        unit_put_be64(d + 8, FDE_LEN);
        img_ext(&im, X_FDE, 16, d);
    }
    expect_reject(&im, "qcow2.extension");
    img_free(&im);
}

static void test_fde_range(void **state)
{
    struct sif_qcow2 q;
    struct hdr h;

    (void)state;
    hdr_default(&h);
    h.fde_offset = FDE_OFF + 512;
    hdr_expect(&h, "qcow2.crypt_header");
    h.fde_offset = FDE_OFF + 1;
    hdr_expect(&h, "qcow2.crypt_header");
    h.fde_offset = 0;
    hdr_expect(&h, "qcow2.crypt_header");
    /* the region starts inside the file but runs past its end */
    h.fde_offset = FILE_SIZE - CS;
    hdr_expect(&h, "qcow2.crypt_header");
    h.fde_offset = FILE_SIZE;
    hdr_expect(&h, "qcow2.crypt_header");
    /* ends exactly at the end of the file: fine; one byte short: not */
    hdr_default(&h);
    h.file_size = FDE_OFF + FDE_LEN;
    hdr_expect_ok(&h, &q);
    h.file_size--;
    hdr_expect(&h, "qcow2.crypt_header");

    /* SIF_QCOW2_CRYPT_MAX itself is allowed, one byte more is not */
    hdr_default(&h);
    h.file_size = 64u << 20;
    h.fde_length = SIF_QCOW2_CRYPT_MAX;
    hdr_expect_ok(&h, &q);
    assert_int_equal(q.crypt_length, SIF_QCOW2_CRYPT_MAX);
    h.fde_length = SIF_QCOW2_CRYPT_MAX + 1ULL;
    hdr_expect(&h, "qcow2.crypt_header");
}

static void test_fde_overlap(void **state)
{
    struct sif_qcow2 q;
    struct hdr h;

    (void)state;
    /* at the L1 table itself */
    hdr_default(&h);
    h.fde_offset = L1_OFF;
    hdr_expect(&h, "qcow2.overlap");
    /* the region runs one byte into an L1 table that follows it */
    hdr_default(&h);
    h.fde_offset = 0x20000;
    h.fde_length = 0x10001;
    h.l1_offset = 0x30000;
    hdr_expect(&h, "qcow2.overlap");
    /* adjacent is fine */
    h.fde_length = 0x10000;
    hdr_expect_ok(&h, &q);
    /* a large L1 table (2 clusters) whose second cluster holds the region */
    hdr_default(&h);
    h.l1_size = 8192 + 1;
    h.fde_offset = L1_OFF + CS;
    hdr_expect(&h, "qcow2.overlap");
}

static void test_extension_bounds(void **state)
{
    const size_t after_fde = 112 + 24;
    struct sif_qcow2 q;
    struct hdr h;
    struct img im;

    (void)state;
    hdr_default(&h);
    /* an unknown extension that fills the cluster exactly is fine (no end
     * marker is needed when the cluster ends) */
    im = img_build(&h);
    assert_int_equal(im.ext, after_fde);
    unit_put_be32(im.buf + after_fde, X_UNKNOWN);
    unit_put_be32(im.buf + after_fde + 4, (uint32_t)(CS - after_fde - 8));
    memset(im.buf + after_fde + 8, 0xee, CS - after_fde - 8);
    expect_ok(&im, &q);
    /* one byte longer runs past the cluster, although the buffer is longer */
    unit_put_be32(im.buf + after_fde + 4, (uint32_t)(CS - after_fde - 7));
    expect_reject_why(&im, "qcow2.extension", "past the end");
    unit_put_be32(im.buf + after_fde + 4, 0xffffffffu);
    expect_reject(&im, "qcow2.extension");
    unit_put_be32(im.buf + after_fde + 4, 0xfffffff8u);
    expect_reject(&im, "qcow2.extension");
    img_free(&im);

    /* the FDE pointer itself running past the cluster: its header sits in
     * the last 8 bytes */
    h.fde = false;
    im = img_build(&h);
    unit_put_be32(im.buf + 112, X_UNKNOWN);
    unit_put_be32(im.buf + 116, (uint32_t)(CS - 112 - 16));
    unit_put_be32(im.buf + CS - 8, X_FDE);
    unit_put_be32(im.buf + CS - 4, 16);
    expect_reject(&im, "qcow2.extension");
    /* an unknown extension with length 0 in those 8 bytes is fine, and
     * leaves the image without an FDE pointer */
    unit_put_be32(im.buf + CS - 8, X_UNKNOWN);
    unit_put_be32(im.buf + CS - 4, 0);
    expect_reject(&im, "qcow2.crypt_header");
    img_free(&im);

    /* a caller that passes less than the whole header cluster (of a file
     * that has it) is refused outright: extensions past the buffer would
     * otherwise go unseen */
    h.fde = true;
    h.len = CS - 4;
    im = img_build(&h);
    unit_put_be32(im.buf + after_fde, X_UNKNOWN);
    unit_put_be32(im.buf + after_fde + 4, (uint32_t)(CS - 8 - after_fde - 8));
    unit_put_be32(im.buf + CS - 8, X_UNKNOWN);
    expect_reject_why(&im, "qcow2.header", "not read whole");
    img_free(&im);
}

/* Tables the reader never uses must still be aligned and inside the file. */
static void test_unused_tables(void **state)
{
    struct sif_qcow2 q;
    struct hdr h;
    struct img im;

    (void)state;
    hdr_default(&h);
    im = img_build(&h);
    expect_ok(&im, &q);
    assert_int_equal(q.refcount_offset, CS);
    assert_int_equal(q.refcount_len, CS);
    unit_put_be64(im.buf + H_REFCOUNT_OFFSET, CS + 512);
    expect_reject_why(&im, "qcow2.header", "refcount table");
    unit_put_be64(im.buf + H_REFCOUNT_OFFSET, 0);
    expect_reject_why(&im, "qcow2.header", "refcount table");
    unit_put_be64(im.buf + H_REFCOUNT_OFFSET, (uint64_t)FILE_SIZE);
    expect_reject_why(&im, "qcow2.header", "refcount table");
    unit_put_be64(im.buf + H_REFCOUNT_OFFSET, CS);
    unit_put_be32(im.buf + H_REFCOUNT_CLUSTERS, 0);
    expect_reject_why(&im, "qcow2.header", "refcount table");
    unit_put_be32(im.buf + H_REFCOUNT_CLUSTERS, 1);
    expect_ok(&im, &q);
    /* snapshots: ignored, but their table must be a table */
    unit_put_be32(im.buf + 60, 1);
    unit_put_be64(im.buf + 64, 3 * CS);
    expect_ok(&im, &q);
    unit_put_be64(im.buf + 64, 3 * CS + 8);
    expect_reject_why(&im, "qcow2.header", "snapshot table");
    unit_put_be64(im.buf + 64, (uint64_t)FILE_SIZE);
    expect_reject_why(&im, "qcow2.header", "snapshot table");
    img_free(&im);
}

static void test_extension_types(void **state)
{
    static const uint8_t feat[48] = { 0, 0, 'd', 'i', 'r', 't', 'y' };
    uint8_t bitmaps[24] = { 0 };
    struct sif_qcow2 q;
    struct hdr h;
    struct img im;

    (void)state;
    unit_put_be32(bitmaps, 1);
    unit_put_be64(bitmaps + 16, 5 * (uint64_t)CS);
    hdr_default(&h);
    /* unknown extensions (odd lengths, padded) before and after the FDE
     * pointer, repeated, plus one feature name table and one bitmaps
     * extension: all ignored */
    h.fde = false;
    im = img_build(&h);
    img_ext(&im, X_UNKNOWN, 13, "thirteen byte");
    img_ext(&im, X_UNKNOWN, 1, "x");
    img_ext(&im, 0xffffffffu, 0, NULL);
    {
        uint8_t d[16];

        unit_put_be64(d, FDE_OFF);
        unit_put_be64(d + 8, FDE_LEN);
        img_ext(&im, X_FDE, 16, d);
    }
    img_ext(&im, X_FEATURE_NAMES, sizeof(feat), feat);
    img_ext(&im, X_BITMAPS, sizeof(bitmaps), bitmaps);
    img_ext(&im, X_UNKNOWN, 13, "thirteen byte");
    expect_ok(&im, &q);
    assert_int_equal(q.crypt_offset, FDE_OFF);
    assert_int_equal(q.crypt_length, FDE_LEN);
    img_free(&im);

    /* nothing after the end marker is read: a backing format there is
     * not an extension */
    hdr_default(&h);
    im = img_build(&h);
    im.ext += 8;
    img_ext(&im, X_BACKING_FORMAT, 5, "qcow2");
    expect_ok(&im, &q);
    img_free(&im);

    /* a feature name table or bitmaps extension twice */
    im = img_build(&h);
    img_ext(&im, X_FEATURE_NAMES, sizeof(feat), feat);
    img_ext(&im, X_FEATURE_NAMES, sizeof(feat), feat);
    expect_reject(&im, "qcow2.extension");
    img_free(&im);
    im = img_build(&h);
    img_ext(&im, X_BITMAPS, sizeof(bitmaps), bitmaps);
    img_ext(&im, X_BITMAPS, sizeof(bitmaps), bitmaps);
    expect_reject(&im, "qcow2.extension");
    img_free(&im);
}

/* Values chosen to overflow naive arithmetic: each is refused, none crashes. */
static void test_overflow_values(void **state)
{
    struct hdr h;

    (void)state;
    hdr_default(&h);
    h.size = UINT64_MAX;
    hdr_expect(&h, "qcow2.size");
    h.size = UINT64_MAX - CS + 1;
    hdr_expect(&h, "qcow2.size");
    h.cluster_bits = 21;
    h.size = UINT64_MAX;
    h.l1_size = 0xffffffffu;
    hdr_expect(&h, "qcow2.size");

    hdr_default(&h);
    h.l1_offset = UINT64_MAX;
    hdr_expect(&h, "qcow2.l1");
    h.l1_offset = UINT64_MAX & ~(uint64_t)(CS - 1);
    hdr_expect(&h, "qcow2.l1");
    h.l1_size = 0xffffffffu;
    hdr_expect(&h, "qcow2.l1");

    hdr_default(&h);
    h.fde_length = UINT64_MAX;
    hdr_expect(&h, "qcow2.crypt_header");
    h.fde_length = UINT64_MAX - FDE_OFF + 1;   /* offset + length wraps to 0 */
    hdr_expect(&h, "qcow2.crypt_header");
    h.fde_length = FDE_LEN;
    h.fde_offset = UINT64_MAX & ~(uint64_t)(CS - 1);
    hdr_expect(&h, "qcow2.crypt_header");
    h.fde_offset = UINT64_MAX;
    hdr_expect(&h, "qcow2.crypt_header");
    /* a file size the parser cannot have read from a real file */
    hdr_default(&h);
    h.file_size = UINT64_MAX;
    h.fde_length = UINT64_MAX - FDE_OFF;
    hdr_expect(&h, "qcow2.crypt_header");
}

/* ------------------------------------------------------------ L1 entries */

static int l1_call(const struct sif_qcow2 *q, uint64_t raw, uint64_t file_size, uint64_t *l2,
              struct sif_verdict *v)
{
    sif_verdict_init(v);
    *l2 = 0xdeadbeef;
    return sif_qcow2_l1_entry(q, raw, file_size, 7, l2, v);
}

static void l1_expect_ok(const struct sif_qcow2 *q, uint64_t raw, uint64_t file_size, uint64_t want)
{
    struct sif_verdict v;
    uint64_t l2;
    int r = l1_call(q, raw, file_size, &l2, &v);

    if (r)
        fail_msg("L1 entry 0x%016llx refused: [%s] %s", (unsigned long long)raw, v.check, v.reason);
    assert_int_equal(v.state, SIF_PENDING);
    assert_int_equal(l2, want);
}

static void l1_expect_reject(const struct sif_qcow2 *q, uint64_t raw, uint64_t file_size)
{
    struct sif_verdict v;
    uint64_t l2;
    int r = l1_call(q, raw, file_size, &l2, &v);

    if (r == 0)
        fail_msg("L1 entry 0x%016llx accepted (L2 at %llu)", (unsigned long long)raw, (unsigned long long)l2);
    assert_int_equal(r, -EINVAL);
    assert_int_equal(v.state, SIF_REJECTED);
    assert_string_equal(v.check, "qcow2.l1");
    assert_true(v.reason[0] != 0);
    assert_int_equal(l2, 0);
}

static void test_l1_entries(void **state)
{
    struct sif_qcow2 q;
    struct hdr h;

    (void)state;
    hdr_default(&h);
    q_of(&h, &q);
    l1_expect_ok(&q, 0, FILE_SIZE, 0);
    l1_expect_ok(&q, 1ULL << 63, FILE_SIZE, 0);      /* copied, unallocated */
    l1_expect_ok(&q, HOST, FILE_SIZE, HOST);
    l1_expect_ok(&q, HOST | 1ULL << 63, FILE_SIZE, HOST);
    /* the last cluster of the file */
    l1_expect_ok(&q, LAST_HOST, FILE_SIZE, LAST_HOST);

    /* reserved bits 0..8 and 56..62 */
    for (int b = 0; b <= 8; b++) {
        l1_expect_reject(&q, HOST | 1ULL << b, FILE_SIZE);
        l1_expect_reject(&q, 1ULL << b, FILE_SIZE);
    }
    for (int b = 56; b <= 62; b++) {
        l1_expect_reject(&q, HOST | 1ULL << b, FILE_SIZE);
        l1_expect_reject(&q, 1ULL << b, FILE_SIZE);
    }
    /* misaligned to the cluster */
    l1_expect_reject(&q, HOST + 512, FILE_SIZE);
    l1_expect_reject(&q, HOST + 0x8000, FILE_SIZE);
    /* the table would end past the file */
    l1_expect_reject(&q, FILE_SIZE, FILE_SIZE);
    l1_expect_reject(&q, LAST_HOST, FILE_SIZE - 1);
    l1_expect_reject(&q, 0x00ffffffffff0000ULL, FILE_SIZE);
    l1_expect_reject(&q, HOST | 1ULL << 56, UINT64_MAX);
    l1_expect_reject(&q, UINT64_MAX, UINT64_MAX);
}

/* ------------------------------------------------------------ L2 entries */

static uint64_t be64_of(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* An L2 entry (the first l2_entry_len bytes are used). */
struct l2e {
    uint8_t b[16];
};

static struct l2e l2e_std(uint64_t word)
{
    struct l2e e;

    memset(&e, 0, sizeof(e));
    unit_put_be64(e.b, word);
    return e;
}

static struct l2e l2e_ext(uint64_t word, uint64_t bitmap)
{
    struct l2e e;

    unit_put_be64(e.b, word);
    unit_put_be64(e.b + 8, bitmap);
    return e;
}

static int l2_call(const struct sif_qcow2 *q, const struct l2e *e, uint64_t gc, uint64_t file_size,
              struct sif_qcow2_cluster *c, struct sif_verdict *v)
{
    uint8_t *copy = malloc(q->l2_entry_len);
    int r;

    assert_non_null(copy);
    memcpy(copy, e->b, q->l2_entry_len);
    sif_verdict_init(v);
    memset(c, 0xa5, sizeof(*c));
    r = sif_qcow2_l2_entry(q, copy, gc, file_size, c, v);
    free(copy);
    return r;
}

static void l2_expect_ok(const struct sif_qcow2 *q, struct l2e e, uint64_t gc, uint64_t file_size,
                         uint64_t host, uint32_t alloc, uint32_t zero)
{
    struct sif_qcow2_cluster c;
    struct sif_verdict v;
    int r = l2_call(q, &e, gc, file_size, &c, &v);

    if (r)
        fail_msg("L2 entry %016llx refused: [%s] %s", (unsigned long long)be64_of(e.b), v.check, v.reason);
    assert_int_equal(v.state, SIF_PENDING);
    assert_int_equal(c.alloc, alloc);
    assert_int_equal(c.zero, zero);
    if (alloc)
        assert_int_equal(c.host, host);
}

static void l2_expect_reject(const struct sif_qcow2 *q, struct l2e e, uint64_t gc, uint64_t file_size,
                             const char *check)
{
    struct sif_qcow2_cluster c;
    struct sif_verdict v;
    int r = l2_call(q, &e, gc, file_size, &c, &v);

    if (r == 0)
        fail_msg("L2 entry %016llx accepted, expected [%s]", (unsigned long long)be64_of(e.b), check);
    if (strcmp(v.check, check) != 0)
        fail_msg("L2 entry %016llx rejected with [%s] %s, expected [%s]", (unsigned long long)be64_of(e.b),
                 v.check, v.reason, check);
    assert_int_equal(r, check_err(check));
    assert_int_equal(v.state, SIF_REJECTED);
    assert_true(v.reason[0] != 0);
}

static void test_l2_standard(void **state)
{
    const uint64_t copied = 1ULL << 63;
    struct sif_qcow2 q;
    struct hdr h;

    (void)state;
    hdr_default(&h);
    q_of(&h, &q);
    /* unallocated */
    l2_expect_ok(&q, l2e_std(0), 0, FILE_SIZE, 0, 0, 0);
    /* allocated, with and without the copied bit */
    l2_expect_ok(&q, l2e_std(HOST), 0, FILE_SIZE, HOST, 1, 0);
    l2_expect_ok(&q, l2e_std(HOST | copied), 5, FILE_SIZE, HOST, 1, 0);
    /* the last cluster of the file, exactly */
    l2_expect_ok(&q, l2e_std(LAST_HOST | copied), 5, FILE_SIZE, LAST_HOST, 1, 0);
    l2_expect_reject(&q, l2e_std(LAST_HOST), 5, FILE_SIZE - 1, "qcow2.l2");
    l2_expect_reject(&q, l2e_std(FILE_SIZE), 5, FILE_SIZE, "qcow2.l2");
    l2_expect_reject(&q, l2e_std(0x00ffffffffff0000ULL), 5, FILE_SIZE, "qcow2.l2");
    l2_expect_reject(&q, l2e_std(HOST | 1ULL << 56), 5, UINT64_MAX, "qcow2.l2");

    /* compressed: refused whatever else is set */
    l2_expect_reject(&q, l2e_std(1ULL << 62), 0, FILE_SIZE, "qcow2.compressed");
    l2_expect_reject(&q, l2e_std(1ULL << 62 | 0x12345), 0, FILE_SIZE, "qcow2.compressed");
    l2_expect_reject(&q, l2e_std(UINT64_MAX), 0, FILE_SIZE, "qcow2.compressed");

    /* reserved bits 1..8 and 56..61 */
    for (int b = 1; b <= 8; b++) {
        l2_expect_reject(&q, l2e_std(HOST | 1ULL << b), 0, FILE_SIZE, "qcow2.l2");
        l2_expect_reject(&q, l2e_std(1ULL << b), 0, FILE_SIZE, "qcow2.l2");
    }
    for (int b = 56; b <= 61; b++) {
        l2_expect_reject(&q, l2e_std(HOST | 1ULL << b), 0, FILE_SIZE, "qcow2.l2");
        l2_expect_reject(&q, l2e_std(1ULL << b), 0, FILE_SIZE, "qcow2.l2");
    }
    /* misaligned */
    l2_expect_reject(&q, l2e_std(HOST + 512), 0, FILE_SIZE, "qcow2.l2");
    l2_expect_reject(&q, l2e_std(HOST + 0x8000), 0, FILE_SIZE, "qcow2.l2");

    /* zero flag (v3): reads as zeros, plain or preallocated */
    l2_expect_ok(&q, l2e_std(1), 0, FILE_SIZE, 0, 0, 1);
    l2_expect_ok(&q, l2e_std(HOST | 1), 0, FILE_SIZE, 0, 0, 1);
    l2_expect_ok(&q, l2e_std(HOST | 1 | copied), 0, FILE_SIZE, 0, 0, 1);

    /* host offset 0 with the copied bit (only valid with a data file) */
    l2_expect_reject(&q, l2e_std(copied), 0, FILE_SIZE, "qcow2.l2");

    /* zero flag in a v2 image */
    hdr_v2(&h);
    q_of(&h, &q);
    l2_expect_reject(&q, l2e_std(1), 0, FILE_SIZE, "qcow2.l2");
    l2_expect_reject(&q, l2e_std(HOST | 1), 0, FILE_SIZE, "qcow2.l2");
    l2_expect_ok(&q, l2e_std(HOST), 0, FILE_SIZE, HOST, 1, 0);
}

static void test_l2_extended(void **state)
{
    const uint64_t copied = 1ULL << 63;
    const uint64_t sub = 2048;
    struct sif_qcow2 q;
    struct hdr h;

    (void)state;
    hdr_extl2(&h);
    q_of(&h, &q);
    assert_int_equal(q.subcluster_size, sub);
    /* unallocated, and zero subclusters without a host cluster */
    l2_expect_ok(&q, l2e_ext(0, 0), 0, FILE_SIZE, 0, 0, 0);
    l2_expect_ok(&q, l2e_ext(0, 0xffffffff00000000ULL), 0, FILE_SIZE, 0, 0, 0xffffffffu);
    l2_expect_ok(&q, l2e_ext(HOST, 0x0000000500000000ULL), 0, FILE_SIZE, 0, 0, 5);
    /* every subcluster allocated */
    l2_expect_ok(&q, l2e_ext(HOST | copied, 0xffffffffULL), 0, FILE_SIZE, HOST, 0xffffffffu, 0);
    /* allocated and zero subclusters side by side */
    l2_expect_ok(&q, l2e_ext(HOST, 0xfffffffa00000005ULL), 0, FILE_SIZE, HOST, 5, 0xfffffffau);

    /* bit 0 is reserved with extended L2 */
    l2_expect_reject(&q, l2e_ext(HOST | 1, 1), 0, FILE_SIZE, "qcow2.l2");
    l2_expect_reject(&q, l2e_ext(1, 0), 0, FILE_SIZE, "qcow2.l2");
    /* a subcluster both allocated and zero */
    l2_expect_reject(&q, l2e_ext(HOST, 1ULL << 35 | 1ULL << 3), 0, FILE_SIZE, "qcow2.l2");
    l2_expect_reject(&q, l2e_ext(HOST, UINT64_MAX), 0, FILE_SIZE, "qcow2.l2");
    /* allocated subclusters without a host cluster */
    l2_expect_reject(&q, l2e_ext(0, 1), 0, FILE_SIZE, "qcow2.l2");
    l2_expect_reject(&q, l2e_ext(copied, 1ULL << 31), 0, FILE_SIZE, "qcow2.l2");
    /* compressed, reserved bits, misaligned */
    l2_expect_reject(&q, l2e_ext(1ULL << 62, 0), 0, FILE_SIZE, "qcow2.compressed");
    for (int b = 1; b <= 8; b++)
        l2_expect_reject(&q, l2e_ext(HOST | 1ULL << b, 1), 0, FILE_SIZE, "qcow2.l2");
    for (int b = 56; b <= 61; b++)
        l2_expect_reject(&q, l2e_ext(HOST | 1ULL << b, 1), 0, FILE_SIZE, "qcow2.l2");
    l2_expect_reject(&q, l2e_ext(HOST + sub, 1), 0, FILE_SIZE, "qcow2.l2");
    l2_expect_reject(&q, l2e_ext(FILE_SIZE, 1), 0, FILE_SIZE, "qcow2.l2");

    /* subclusters 0, 2 and 31: the file must hold the whole cluster */
    l2_expect_ok(&q, l2e_ext(LAST_HOST, 0x80000005ULL), 3, FILE_SIZE, LAST_HOST, 0x80000005u, 0);
    l2_expect_reject(&q, l2e_ext(LAST_HOST, 0x80000005ULL), 3, FILE_SIZE - 1, "qcow2.l2");
    /* subclusters 0 and 2: the file must hold up to the end of subcluster 2 */
    l2_expect_ok(&q, l2e_ext(LAST_HOST, 5), 3, LAST_HOST + 3 * sub, LAST_HOST, 5, 0);
    l2_expect_reject(&q, l2e_ext(LAST_HOST, 5), 3, LAST_HOST + 3 * sub - 1, "qcow2.l2");
    /* only subcluster 31 */
    l2_expect_ok(&q, l2e_ext(LAST_HOST, 1ULL << 31), 3, FILE_SIZE, LAST_HOST, 1u << 31, 0);
    l2_expect_reject(&q, l2e_ext(LAST_HOST, 1ULL << 31), 3, FILE_SIZE - 1, "qcow2.l2");
    /* unallocated subclusters may lie past the end of the file */
    l2_expect_ok(&q, l2e_ext(LAST_HOST, 1ULL | 0xfffffffeULL << 32), 3, LAST_HOST + sub, LAST_HOST, 1,
                 0xfffffffeu);
}

/* The copied bit with host offset 0 means "offset 0 of an external data
 * file" (docs/interop/qcow2.txt: "The offset may only be 0 with bit 63 set
 * ... when an external data file is used"); the first 64 bits of an
 * extended entry have the standard format, and the standard decoder
 * refuses it (test_l2_standard), so the extended one should as well. */
static void test_l2_extended_copied_host0(void **state)
{
    struct sif_qcow2 q;
    struct hdr h;

    (void)state;
    hdr_extl2(&h);
    q_of(&h, &q);
    l2_expect_reject(&q, l2e_ext(1ULL << 63, 0), 0, FILE_SIZE, "qcow2.l2");
}

/* The last guest cluster of a disk whose size is not a multiple of the
 * cluster size needs only its in-disk part, rounded up to 512 bytes. */
static void test_l2_partial_last_cluster(void **state)
{
    const uint64_t last = FULL_CLUSTERS;    /* 4096 bytes of it are in the disk */
    struct sif_qcow2 q;
    struct hdr h;

    (void)state;
    hdr_default(&h);
    q_of(&h, &q);
    l2_expect_ok(&q, l2e_std(LAST_HOST), last, LAST_HOST + 4096, LAST_HOST, 1, 0);
    l2_expect_reject(&q, l2e_std(LAST_HOST), last, LAST_HOST + 4095, "qcow2.l2");
    /* the cluster before it is full */
    l2_expect_reject(&q, l2e_std(LAST_HOST), last - 1, LAST_HOST + 4096, "qcow2.l2");
    l2_expect_ok(&q, l2e_std(LAST_HOST), last - 1, LAST_HOST + CS, LAST_HOST, 1, 0);

    /* a disk ending 1000 bytes into its last cluster: 1024 bytes needed */
    h.size = (uint64_t)FULL_CLUSTERS * CS + 1000;
    q_of(&h, &q);
    l2_expect_ok(&q, l2e_std(LAST_HOST), last, LAST_HOST + 1024, LAST_HOST, 1, 0);
    l2_expect_reject(&q, l2e_std(LAST_HOST), last, LAST_HOST + 1023, "qcow2.l2");
    l2_expect_reject(&q, l2e_std(LAST_HOST), last, LAST_HOST + 1000, "qcow2.l2");

    /* extended L2 (2048-byte subclusters): the same rule on the allocated part */
    hdr_extl2(&h);
    h.size = (uint64_t)FULL_CLUSTERS * CS + 1000;
    q_of(&h, &q);
    l2_expect_ok(&q, l2e_ext(LAST_HOST, 1), last, LAST_HOST + 1024, LAST_HOST, 1, 0);
    l2_expect_reject(&q, l2e_ext(LAST_HOST, 1), last, LAST_HOST + 1023, "qcow2.l2");
    l2_expect_ok(&q, l2e_ext(LAST_HOST, 0x80000001ULL), last, LAST_HOST + 1024, LAST_HOST, 0x80000001u, 0);
    /* a disk ending 3000 bytes in: subcluster 0 alone needs 2048, 0..1 need 3072 */
    h.size = (uint64_t)FULL_CLUSTERS * CS + 3000;
    q_of(&h, &q);
    l2_expect_ok(&q, l2e_ext(LAST_HOST, 1), last, LAST_HOST + 2048, LAST_HOST, 1, 0);
    l2_expect_reject(&q, l2e_ext(LAST_HOST, 1), last, LAST_HOST + 2047, "qcow2.l2");
    l2_expect_ok(&q, l2e_ext(LAST_HOST, 3), last, LAST_HOST + 3072, LAST_HOST, 3, 0);
    l2_expect_reject(&q, l2e_ext(LAST_HOST, 3), last, LAST_HOST + 3071, "qcow2.l2");
}

static void test_cluster_bytes(void **state)
{
    struct sif_qcow2 q;
    struct hdr h;

    (void)state;
    hdr_default(&h);
    q_of(&h, &q);
    assert_int_equal(sif_qcow2_cluster_bytes(&q, 0), CS);
    assert_int_equal(sif_qcow2_cluster_bytes(&q, FULL_CLUSTERS - 1), CS);
    assert_int_equal(sif_qcow2_cluster_bytes(&q, FULL_CLUSTERS), 4096);
    assert_int_equal(sif_qcow2_cluster_bytes(&q, FULL_CLUSTERS + 1), 0);
    assert_int_equal(sif_qcow2_cluster_bytes(&q, 1ULL << 40), 0);
    assert_int_equal(sif_qcow2_cluster_bytes(&q, UINT64_MAX), 0);

    /* a disk smaller than one cluster */
    h.size = 1000;
    h.l1_size = 1;
    q_of(&h, &q);
    assert_int_equal(sif_qcow2_cluster_bytes(&q, 0), 1000);
    assert_int_equal(sif_qcow2_cluster_bytes(&q, 1), 0);

    /* a disk of whole clusters */
    h.size = 3 * (uint64_t)CS;
    q_of(&h, &q);
    assert_int_equal(sif_qcow2_cluster_bytes(&q, 2), CS);
    assert_int_equal(sif_qcow2_cluster_bytes(&q, 3), 0);
}

/* Guest cluster numbers whose byte offset does not fit in 64 bits lie past
 * any disk: gcluster << cluster_bits must not wrap back into the disk. */
static void test_cluster_bytes_huge_index(void **state)
{
    struct sif_qcow2 q;
    struct hdr h;

    (void)state;
    hdr_default(&h);
    q_of(&h, &q);
    assert_int_equal(sif_qcow2_cluster_bytes(&q, 1ULL << 48), 0);
    assert_int_equal(sif_qcow2_cluster_bytes(&q, (1ULL << 48) + 1), 0);
}

/* ------------------------------------------------------------ embedded LUKS1 */

static uint8_t *luks1_region(const struct unit_luks1 *h, size_t len)
{
    uint8_t *r = calloc(len ? len : 1, 1);

    assert_non_null(r);
    if (len >= 592)
        unit_luks1_write(h, r);
    return r;
}

static void embedded_expect(const uint8_t *buf, size_t len, const char *check)
{
    struct sif_luks_info info;
    struct sif_verdict v;
    int r;

    sif_verdict_init(&v);
    r = sif_luks_parse_embedded(buf, len, &info, &v);
    if (r == 0)
        fail_msg("embedded header accepted, expected [%s]", check);
    assert_int_equal(r, -EINVAL);
    assert_int_equal(v.state, SIF_REJECTED);
    assert_string_equal(v.check, check);
    assert_true(v.reason[0] != 0);
}

static void test_embedded_luks1(void **state)
{
    struct sif_luks_info info;
    struct sif_verdict v;
    struct unit_luks1 h;
    uint8_t *region;
    int r;

    (void)state;
    /* what qemu writes for a 512-bit key: all 8 slots' areas, payload at
     * 4040 sectors == the region length */
    unit_luks1_default(&h);
    h.payload_sectors = 4040;
    for (int i = 1; i < 8; i++) {
        h.slots[i].state = UNIT_L1_ACTIVE;
        h.slots[i].iterations = 1000;
    }
    region = luks1_region(&h, FDE_LEN);
    sif_verdict_init(&v);
    r = sif_luks_parse_embedded(region, FDE_LEN, &info, &v);
    if (r)
        fail_msg("embedded LUKS1 refused: [%s] %s", v.check, v.reason);
    assert_int_equal(v.state, SIF_PENDING);
    assert_int_equal(info.version, 1);
    assert_string_equal(info.cipher, "aes");
    assert_string_equal(info.mode, "xts-plain64");
    assert_int_equal(info.key_bytes, 64);
    assert_int_equal(info.sector_size, 512);
    assert_int_equal(info.nslots, 8);
    assert_int_equal(info.data_offset, FDE_LEN);
    assert_int_equal(info.meta_len, (8 + 7 * 504) * 512 + 256000);
    for (int i = 0; i < 8; i++) {
        assert_true(info.slots[i].active);
        assert_int_equal(info.slots[i].area_offset, (8 + (uint64_t)i * 504) * 512);
    }
    free(region);

    /* the payload offset past the region is inconsistent */
    unit_luks1_default(&h);
    h.payload_sectors = 4041;
    region = luks1_region(&h, FDE_LEN);
    embedded_expect(region, FDE_LEN, "luks.segment");
    free(region);
}

static void test_embedded_refused(void **state)
{
    struct unit_luks1 h;
    uint8_t *region;

    (void)state;
    unit_luks1_default(&h);
    h.payload_sectors = 4040;
    /* LUKS2 (magic and version 2) */
    region = luks1_region(&h, FDE_LEN);
    unit_put_be16(region + 6, 2);
    embedded_expect(region, FDE_LEN, "qcow2.crypt_header");
    /* an unknown version */
    unit_put_be16(region + 6, 3);
    embedded_expect(region, FDE_LEN, "qcow2.crypt_header");
    /* the secondary LUKS2 magic */
    unit_put_be16(region + 6, 1);
    memcpy(region, "SKUL\xba\xbe", 6);
    embedded_expect(region, FDE_LEN, "qcow2.crypt_header");
    free(region);
    /* no magic at all */
    region = luks1_region(&h, 0);
    embedded_expect(region, 0, "qcow2.crypt_header");
    free(region);
    region = calloc(FDE_LEN, 1);
    assert_non_null(region);
    embedded_expect(region, FDE_LEN, "qcow2.crypt_header");
    free(region);
    /* a region too short for the magic and version */
    region = luks1_region(&h, FDE_LEN);
    {
        uint8_t *short_region = malloc(7);

        assert_non_null(short_region);
        memcpy(short_region, region, 7);
        embedded_expect(short_region, 7, "qcow2.crypt_header");
        free(short_region);
    }
    free(region);
}

/* ------------------------------------------------------------ mutations */

static uint64_t prng_next(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545f4914f6cdd1dULL;
}

static const uint64_t interesting[] = {
    0, 1, 2, 3, 4, 7, 8, 9, 13, 14, 16, 21, 22, 63, 64, 72, 104, 112, 512, 0xfff8, 0x10000,
    0x20000, 0x7fffffff, 0x80000000, 0xfffffff8, 0xffffffff, 0x100000000ULL, 1ULL << 51,
    0x00fffffffffffe00ULL, 0x7fffffffffffffffULL, 0x8000000000000000ULL, 0xffffffffffff0000ULL,
    0xffffffffffffffffULL,
};

/* Checks what an accepted header promises its callers. */
static void check_accepted(const struct sif_qcow2 *q, uint64_t file_size)
{
    assert_true(q->version == 2 || q->version == 3);
    assert_true(q->cluster_bits >= 9 && q->cluster_bits <= 21);
    assert_int_equal(q->cluster_size, 1ULL << q->cluster_bits);
    assert_true(q->size > 0);
    assert_int_equal(q->crypt_method, SIF_QCOW2_CRYPT_LUKS);
    assert_true(q->l2_entry_len == (q->extended_l2 ? 16u : 8u));
    assert_int_equal((uint64_t)q->l2_entries * q->l2_entry_len, q->cluster_size);
    assert_int_equal(q->subcluster_size, q->extended_l2 ? q->cluster_size / 32 : q->cluster_size);
    assert_true(q->l1_used >= 1 && q->l1_used <= q->l1_size);
    assert_true((uint64_t)q->l1_size * 8 <= SIF_QCOW2_L1_MAX_BYTES);
    assert_true((uint64_t)q->l1_used * q->l2_entries * q->cluster_size >= q->size);
    assert_true(q->l1_offset % q->cluster_size == 0 && q->l1_offset >= q->cluster_size);
    assert_true(q->l1_offset <= file_size && (uint64_t)q->l1_size * 8 <= file_size - q->l1_offset);
    assert_true(q->crypt_offset % q->cluster_size == 0 && q->crypt_offset >= q->cluster_size);
    assert_true(q->crypt_length > 0 && q->crypt_length <= SIF_QCOW2_CRYPT_MAX);
    assert_true(q->crypt_offset <= file_size && q->crypt_length <= file_size - q->crypt_offset);
    assert_true(q->crypt_offset + q->crypt_length <= q->l1_offset ||
                q->l1_offset + (uint64_t)q->l1_size * 8 <= q->crypt_offset);
}

static void check_rejected(int r, const struct sif_verdict *v)
{
    assert_true(r == -EINVAL || r == -EPERM);
    assert_int_equal(v->state, SIF_REJECTED);
    assert_true(v->check[0] != 0);
    assert_true(strncmp(v->check, "qcow2.", 6) == 0);
    assert_true(v->reason[0] != 0);
}

/* Random L1 and L2 entries against an accepted header. */
static void fuzz_entries(const struct sif_qcow2 *q, uint64_t file_size, uint64_t *x)
{
    uint64_t clusters = q->size / q->cluster_size + (q->size % q->cluster_size != 0);

    for (int i = 0; i < 8; i++) {
        uint64_t raw = prng_next(x), host, l2off;
        uint8_t *e = malloc(q->l2_entry_len);
        struct sif_qcow2_cluster c;
        struct sif_verdict v;
        uint64_t gc;
        int r;

        assert_non_null(e);
        /* mostly plausible: a cluster near the file plus a few flag bits */
        if (prng_next(x) % 4) {
            host = (prng_next(x) % (file_size / q->cluster_size + 2)) * q->cluster_size;
            raw = host | (prng_next(x) & 0xc000000000000001ULL);
            if (prng_next(x) % 8 == 0)
                raw ^= 1ULL << (prng_next(x) % 64);
        }
        sif_verdict_init(&v);
        r = sif_qcow2_l1_entry(q, raw, file_size, (uint32_t)i, &l2off, &v);
        if (r) {
            check_rejected(r, &v);
            assert_int_equal(l2off, 0);
        } else {
            assert_int_equal(v.state, SIF_PENDING);
            assert_true(l2off % q->cluster_size == 0);
            assert_true(l2off == 0 || (l2off <= file_size && q->cluster_size <= file_size - l2off));
        }

        unit_put_be64(e, raw);
        if (q->l2_entry_len == 16)
            unit_put_be64(e + 8, prng_next(x) % 3 ? prng_next(x) & prng_next(x) : prng_next(x) & 0xffffffffULL);
        gc = prng_next(x) % (clusters + 2);
        sif_verdict_init(&v);
        r = sif_qcow2_l2_entry(q, e, gc, file_size, &c, &v);
        if (r) {
            check_rejected(r, &v);
        } else {
            uint64_t bytes = sif_qcow2_cluster_bytes(q, gc);

            assert_int_equal(v.state, SIF_PENDING);
            assert_int_equal(c.alloc & c.zero, 0);
            if (!q->extended_l2)
                assert_true(c.alloc <= 1 && c.zero <= 1);
            if (c.alloc) {
                uint64_t need = (uint64_t)(32 - __builtin_clz(c.alloc)) * q->subcluster_size;
                uint64_t in_disk = (bytes + 511) & ~511ULL;

                if (need > in_disk)
                    need = in_disk;
                assert_true(c.host != 0 && c.host % q->cluster_size == 0);
                assert_true(c.host <= file_size && need <= file_size - c.host);
            }
        }
        free(e);
    }
}

static void test_mutations(void **state)
{
    static const size_t field32[] = { 4, 16, 20, 32, 36, 56, 60, 96, 100, 112, 116, 136, 140 };
    static const size_t field64[] = { 8, 24, 40, 48, 64, 72, 80, 88, 120, 128, 136 };
    uint64_t x = 0x5eed0f0c0ffee123ULL;
    unsigned accepted = 0, rejected = 0;
    struct hdr h;
    struct img base;

    (void)state;
    hdr_default(&h);
    h.len = 2 * CS;
    base = img_build(&h);
    for (int iter = 0; iter < 2000; iter++) {
        uint64_t file_size = FILE_SIZE;
        size_t len = base.len;
        int n = 1 + (int)(prng_next(&x) % 4);
        uint8_t *scratch = malloc(base.len);
        uint8_t *buf;
        struct sif_qcow2 q;
        struct sif_verdict v;
        int r;

        assert_non_null(scratch);
        memcpy(scratch, base.buf, base.len);
        for (int m = 0; m < n; m++) {
            uint64_t val = interesting[prng_next(&x) % (sizeof(interesting) / sizeof(interesting[0]))];

            switch (prng_next(&x) % 8) {
            case 0:     /* flip a bit in the header and first extensions */
                scratch[prng_next(&x) % 160] ^= (uint8_t)(1u << (prng_next(&x) % 8));
                break;
            case 1:     /* a random byte in the first cluster */
                scratch[prng_next(&x) % CS] = (uint8_t)prng_next(&x);
                break;
            case 2:
                unit_put_be32(scratch + field32[prng_next(&x) % (sizeof(field32) / sizeof(field32[0]))],
                              (uint32_t)(prng_next(&x) % 2 ? val : prng_next(&x)));
                break;
            case 3:
                unit_put_be64(scratch + field64[prng_next(&x) % (sizeof(field64) / sizeof(field64[0]))],
                              prng_next(&x) % 2 ? val : prng_next(&x));
                break;
            case 4:     /* the buffer ends early */
                len = (size_t)(prng_next(&x) % (len + 1));
                break;
            case 5:     /* a different file size */
                file_size = prng_next(&x) % 2 ? val : prng_next(&x) % (64u << 20);
                break;
            case 6:     /* an extension with a random type and length */
                unit_put_be32(scratch + 136, (uint32_t)prng_next(&x));
                unit_put_be32(scratch + 140, (uint32_t)(prng_next(&x) % 2 ? val : prng_next(&x) % CS));
                break;
            default:    /* a bit flip anywhere in the 104-byte header */
                scratch[prng_next(&x) % 104] ^= (uint8_t)(1u << (prng_next(&x) % 8));
                break;
            }
        }
        /* exactly len bytes, so any over-read is outside the allocation */
        buf = malloc(len ? len : 1);
        assert_non_null(buf);
        memcpy(buf, scratch, len);
        free(scratch);
        sif_verdict_init(&v);
        r = sif_qcow2_parse(buf, len, file_size, &q, &v);
        if (r == 0) {
            assert_int_equal(v.state, SIF_PENDING);
            check_accepted(&q, file_size);
            fuzz_entries(&q, file_size, &x);
            accepted++;
        } else {
            check_rejected(r, &v);
            rejected++;
        }
        free(buf);
    }
    img_free(&base);
    print_message("mutations: %u accepted, %u rejected\n", accepted, rejected);
    /* the mutations must exercise both outcomes */
    assert_true(accepted > 50);
    assert_true(rejected > 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v3_valid),
        cmocka_unit_test(test_v2_valid),
        cmocka_unit_test(test_extl2_valid),
        cmocka_unit_test(test_cluster_bits_limits),
        cmocka_unit_test(test_valid_variants),
        cmocka_unit_test(test_dirty_accepted),
        cmocka_unit_test(test_magic_and_truncation),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_cluster_bits),
        cmocka_unit_test(test_header_length),
        cmocka_unit_test(test_refcount_order),
        cmocka_unit_test(test_backing_file),
        cmocka_unit_test(test_data_file),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_unknown_feature),
        cmocka_unit_test(test_compression_type),
        cmocka_unit_test(test_extl2_small_cluster),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_l1_header),
        cmocka_unit_test(test_crypt_method),
        cmocka_unit_test(test_fde_missing_or_malformed),
        cmocka_unit_test(test_fde_range),
        cmocka_unit_test(test_fde_overlap),
        cmocka_unit_test(test_extension_bounds),
        cmocka_unit_test(test_extension_types),
        cmocka_unit_test(test_unused_tables),
        cmocka_unit_test(test_overflow_values),
        cmocka_unit_test(test_l1_entries),
        cmocka_unit_test(test_l2_standard),
        cmocka_unit_test(test_l2_extended),
        cmocka_unit_test(test_l2_extended_copied_host0),
        cmocka_unit_test(test_l2_partial_last_cluster),
        cmocka_unit_test(test_cluster_bytes),
        cmocka_unit_test(test_cluster_bytes_huge_index),
        cmocka_unit_test(test_embedded_luks1),
        cmocka_unit_test(test_embedded_refused),
        cmocka_unit_test(test_mutations),
    };

    return cmocka_run_group_tests_name("qcow2", tests, NULL, NULL);
}
