/* test_probe.c: the format probes and the engine's verdict.
 *
 * Every entry of sif_probes[] must have at least one positive sample here
 * (a new probe without one fails test_every_probe_has_a_sample).  Samples
 * are built in content buffers the way the caller sees plaintext: the first
 * and last SIF_PROBE_REGION bytes, and the total size.
 *
 * The second half uses the real tools (qemu-img, sgdisk, sfdisk, mkfs.*,
 * genisoimage, isohybrid, mkudffs, cryptsetup) to make samples in a
 * temporary directory at test time, inspects their first and last MiB and
 * checks the verdict, the detail, and that `qemu-img info` names the same
 * format (qemu's "vpc" is our "vhd"; layouts are raw to qemu).  A test whose
 * tool is missing is skipped, never passed.
 */
#include "config.h"

#include "unit.h"

#include "probe.h"
#include "probe_formats.h"
#include "verdict.h"

#define BIG (2u * SIF_PROBE_REGION)

/* Head and tail regions of content buf of size bytes, as the caller reads them. */
static struct sif_probe_input input_of(const uint8_t *buf, size_t size)
{
    struct sif_probe_input in;
    size_t region = size < SIF_PROBE_REGION ? size : SIF_PROBE_REGION;

    in.head = buf;
    in.head_len = region;
    in.tail = buf + size - region;
    in.tail_len = region;
    in.size = size;
    in.extra = NULL;
    in.n_extra = 0;
    return in;
}

static int mem_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    memcpy(buf, (const uint8_t *)ctx + off, len);
    return 0;
}

/* What the engine reads of buf: head, tail and the regions the probes ask
 * for (free with sif_probe_content_free). */
static const struct sif_probe_input *gather_of(struct sif_probe_content *c, const uint8_t *buf, size_t size)
{
    assert_int_equal(sif_probe_gather(c, size, NULL, 0, mem_read, (void *)buf), 0);
    return &c->in;
}

/* A copy of b[0, len) in a buffer of exactly len bytes (free()), so that
 * the sanitizer build catches a probe reading past a short head. */
static uint8_t *exact(const uint8_t *b, size_t len)
{
    uint8_t *c = malloc(len ? len : 1);

    assert_non_null(c);
    memcpy(c, b, len);
    return c;
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* CRC-32 (IEEE, reflected), table-driven: written independently of
 * src/probe_layout.c's bitwise one, so that the two check each other. */
static uint32_t t_crc32(const uint8_t *p, size_t len)
{
    static uint32_t table[256];
    static bool ready;
    uint32_t c = 0xFFFFFFFFu;

    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t v = i;

            for (int k = 0; k < 8; k++)
                v = v & 1 ? 0xEDB88320u ^ (v >> 1) : v >> 1;
            table[i] = v;
        }
        ready = true;
    }
    for (size_t i = 0; i < len; i++)
        c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ------------------------------------------------------------- samples */

static void b_qcow2(uint8_t *b, size_t n)
{
    memcpy(b, "QFI\xfb", 4);
    unit_put_be32(b + 4, 3);
    unit_put_be64(b + 8, 0x10000);      /* backing file name offset */
    unit_put_be32(b + 16, 11);          /* and length */
    unit_put_be32(b + 20, 16);          /* cluster bits */
    unit_put_be64(b + 24, n);
    unit_put_be32(b + 100, 104);        /* header length */
    memcpy(b + 0x10000, "/etc/shadow", 11);
}

static void b_qcow2_v2(uint8_t *b, size_t n)
{
    memcpy(b, "QFI\xfb", 4);
    unit_put_be32(b + 4, 2);
    unit_put_be32(b + 20, 16);
    unit_put_be64(b + 24, n);
}

static void b_qcow(uint8_t *b, size_t n)
{
    memcpy(b, "QFI\xfb", 4);
    unit_put_be32(b + 4, 1);
    unit_put_be64(b + 8, 48);           /* backing file offset */
    unit_put_be32(b + 16, 4);
    memcpy(b + 48, "/dev", 4);
    (void)n;
}

static void b_qed(uint8_t *b, size_t n)
{
    memcpy(b, "QED\0", 4);
    unit_put_le32(b + 4, 65536);        /* cluster size */
    (void)n;
}

static void b_vmdk(uint8_t *b, size_t n)
{
    memcpy(b, "KDMV", 4);
    unit_put_le32(b + 4, 1);
    (void)n;
}

static void b_vmdk_cowd(uint8_t *b, size_t n)
{
    memcpy(b, "COWD", 4);
    (void)n;
}

static const char vmdk_desc[] =
    "# Disk DescriptorFile\n"
    "version=1\n"
    "CID=fffffffe\n"
    "parentCID=ffffffff\n"
    "createType=\"monolithicFlat\"\n"
    "\n"
    "# Extent description\n"
    "RW 2048 FLAT \"/etc/shadow\" 0\n";

static void b_vmdk_text(uint8_t *b, size_t n)
{
    memcpy(b, vmdk_desc, strlen(vmdk_desc));
    (void)n;
}

static void b_vdi(uint8_t *b, size_t n)
{
    static const char text[] = "<<< Oracle VM VirtualBox Disk Image >>>\n";

    memcpy(b, text, strlen(text));
    unit_put_le32(b + 0x40, 0xbeda107f);
    unit_put_le32(b + 0x44, 0x00010001);
    (void)n;
}

static void b_vhd(uint8_t *b, size_t n)
{
    memcpy(b, "conectix", 8);
    unit_put_be32(b + 8, 2);
    (void)n;
}

/* Fixed VHD: the footer alone, in the last 512-byte sector. */
static void b_vhd_footer(uint8_t *b, size_t n)
{
    uint8_t *f = b + n - 512;

    memcpy(f, "conectix", 8);
    unit_put_be32(f + 8, 2);
    unit_put_be32(f + 12, 0x00010000);
    unit_put_be64(f + 16, UINT64_MAX);  /* data offset: none (fixed disk) */
    unit_put_be32(f + 60, 2);           /* disk type fixed */
}

static void b_vhdx(uint8_t *b, size_t n)
{
    memcpy(b, "vhdxfile", 8);
    (void)n;
}

static void b_parallels(uint8_t *b, size_t n)
{
    memcpy(b, "WithoutFreeSpace", 16);
    unit_put_le32(b + 16, 2);
    (void)n;
}

static void b_parallels_ext(uint8_t *b, size_t n)
{
    memcpy(b, "WithouFreSpacExt", 16);
    unit_put_le32(b + 16, 2);
    (void)n;
}

static void b_bochs(uint8_t *b, size_t n)
{
    memcpy(b, "Bochs Virtual HD Image", 23);   /* with its NUL */
    memcpy(b + 32, "Redolog", 8);
    (void)n;
}

static void b_luks(uint8_t *b, size_t n)
{
    memcpy(b, "LUKS\xba\xbe\0\1", 8);
    memcpy(b + 8, "aes", 3);
    (void)n;
}

static void b_luks2(uint8_t *b, size_t n)
{
    memcpy(b, "LUKS\xba\xbe\0\2", 8);
    (void)n;
}

static const char cloop_magic[] = "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";

static void b_cloop(uint8_t *b, size_t n)
{
    memcpy(b, cloop_magic, strlen(cloop_magic));
    (void)n;
}

/* Apple UDIF: 512-byte "koly" trailer, version 4, header size 512. */
static void b_dmg(uint8_t *b, size_t n)
{
    uint8_t *k = b + n - 512;

    memcpy(k, "koly", 4);
    unit_put_be32(k + 4, 4);
    unit_put_be32(k + 8, 512);
}

/* Fixed VHD written by Virtual PC before 2004: a 511-byte footer. */
static void b_vhd_footer511(uint8_t *b, size_t n)
{
    uint8_t *f = b + n - 511;

    memcpy(f, "conectix", 8);
    unit_put_be32(f + 8, 2);
    unit_put_be64(f + 16, UINT64_MAX);
    unit_put_be32(f + 60, 2);
}

/* A LUKS2 device whose primary header is gone: the secondary copy at 16 KiB. */
static void b_luks2_secondary(uint8_t *b, size_t n)
{
    uint8_t *s = b + 0x4000;

    memcpy(s, "SKUL\xba\xbe\0\2", 8);
    unit_put_be64(s + 8, 0x4000);       /* header size */
    unit_put_be64(s + 256, 0x4000);     /* this header's offset */
    (void)n;
}

/* ------------------------------------------------------------- layouts */

/* MBR partition entry fields (16 bytes from 446 + 16 * slot). */
#define MBR_TABLE 446
#define P_BOOT 0
#define P_CHS 1
#define P_TYPE 4
#define P_LBA 8
#define P_SECTORS 12

static uint8_t *mbr_entry(uint8_t *b, int slot)
{
    return b + MBR_TABLE + 16 * slot;
}

/* A DOS disk: boot code, one active Linux partition, 55 AA. */
static void b_mbr(uint8_t *b, size_t n)
{
    uint8_t *e = mbr_entry(b, 0);

    unit_fill_prng(b + 3, 437, 7);
    b[0] = 0xfa;                         /* cli; xor ax, ax: real MBR code */
    b[1] = 0x31;
    b[2] = 0xc0;
    e[P_BOOT] = 0x80;
    e[P_CHS] = 0x20;
    e[P_CHS + 1] = 0x21;
    e[P_TYPE] = 0x83;
    unit_put_le32(e + P_LBA, 1);
    unit_put_le32(e + P_SECTORS, (uint32_t)(n / 512 - 1));
    b[510] = 0x55;
    b[511] = 0xaa;
}

/* The same with a boot flag that is neither 0x00 nor 0x80 in slot 2. */
static void b_mbr_bad_flag(uint8_t *b, size_t n)
{
    b_mbr(b, n);
    mbr_entry(b, 1)[P_BOOT] = 0x01;
}

/* GPT header fields (UEFI 2.10, 5.3.2), little-endian, at LBA 1. */
#define GPT 512
#define G_REV 8
#define G_HSIZE 12
#define G_HCRC 16
#define G_MY 24
#define G_ALT 32
#define G_FIRST 40
#define G_LAST 48
#define G_GUID 56
#define G_ELBA 72
#define G_NENT 80
#define G_ESIZE 84
#define G_ECRC 88

/* Recomputes the entry array CRC (when the array is inside the buffer)
 * and the header CRC of the header at h (in b of n bytes). */
static void gpt_seal_at(uint8_t *b, size_t n, uint8_t *h)
{
    uint64_t off = (h[G_ELBA] | (uint64_t)h[G_ELBA + 1] << 8 | (uint64_t)h[G_ELBA + 2] << 16 |
                    (uint64_t)h[G_ELBA + 3] << 24) * 512;
    uint32_t nent = h[G_NENT] | (uint32_t)h[G_NENT + 1] << 8 | (uint32_t)h[G_NENT + 2] << 16 |
                    (uint32_t)h[G_NENT + 3] << 24;
    uint32_t esize = h[G_ESIZE] | (uint32_t)h[G_ESIZE + 1] << 8 | (uint32_t)h[G_ESIZE + 2] << 16 |
                     (uint32_t)h[G_ESIZE + 3] << 24;
    uint32_t hsize = h[G_HSIZE] | (uint32_t)h[G_HSIZE + 1] << 8;

    if (off < n && (uint64_t)nent * esize <= n - off)
        unit_put_le32(h + G_ECRC, t_crc32(b + off, (size_t)nent * esize));
    if (hsize > 512)
        hsize = 512;
    unit_put_le32(h + G_HCRC, 0);
    unit_put_le32(h + G_HCRC, t_crc32(h, hsize));
}

static void gpt_seal(uint8_t *b, size_t n)
{
    gpt_seal_at(b, n, b + GPT);
}

/* A GPT disk as the UEFI specification lays it out: protective MBR, header
 * at LBA 1, 4 entries at LBA 2 with one Linux partition, backup entries
 * and header in the last two sectors. */
static void b_gpt(uint8_t *b, size_t n)
{
    static const uint8_t linux_fs[16] = { 0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
                                          0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4 };
    uint64_t nsec = n / 512;
    uint8_t *e = mbr_entry(b, 0), *h = b + GPT, *p = b + 2 * 512, *bh = b + (nsec - 1) * 512;

    e[P_CHS + 1] = 0x02;
    e[P_TYPE] = 0xee;
    e[5] = e[6] = e[7] = 0xff;
    unit_put_le32(e + P_LBA, 1);
    unit_put_le32(e + P_SECTORS, nsec - 1 > 0xffffffffu ? 0xffffffffu : (uint32_t)(nsec - 1));
    b[510] = 0x55;
    b[511] = 0xaa;
    memcpy(h, "EFI PART", 8);
    unit_put_le32(h + G_REV, 0x00010000);
    unit_put_le32(h + G_HSIZE, 92);
    put_le64(h + G_MY, 1);
    put_le64(h + G_ALT, nsec - 1);
    put_le64(h + G_FIRST, 3);
    put_le64(h + G_LAST, nsec - 3);
    unit_fill_prng(h + G_GUID, 16, 5);
    put_le64(h + G_ELBA, 2);
    unit_put_le32(h + G_NENT, 4);
    unit_put_le32(h + G_ESIZE, 128);
    memcpy(p, linux_fs, 16);
    unit_fill_prng(p + 16, 16, 6);
    put_le64(p + 32, 3);
    put_le64(p + 40, nsec - 3);
    memcpy(p + 56, "s\0i\0f\0", 6);
    /* the backup: entries in the second last sector, header in the last */
    memcpy(b + (nsec - 2) * 512, p, 512);
    memcpy(bh, h, 92);
    put_le64(bh + G_MY, nsec - 1);
    put_le64(bh + G_ALT, 1);
    put_le64(bh + G_ELBA, nsec - 2);
    gpt_seal_at(b, n, bh);
    gpt_seal(b, n);
}

static void b_gpt_bad_crc(uint8_t *b, size_t n)
{
    b_gpt(b, n);
    b[GPT + G_GUID + 3] ^= 0x40;
}

#define ISO_VD 32768u

/* ISO 9660: primary volume descriptor in sector 16, set terminator in 17. */
static void b_iso(uint8_t *b, size_t n)
{
    uint8_t *d = b + ISO_VD;

    d[0] = 1;
    memcpy(d + 1, "CD001", 5);
    d[6] = 1;
    memset(d + 8, ' ', 32);
    memset(d + 40, ' ', 32);
    memcpy(d + 40, "SIF_TEST", 8);
    unit_put_le32(d + 80, (uint32_t)(n / 2048));
    unit_put_be32(d + 84, (uint32_t)(n / 2048));
    put_le16(d + 128, 2048);
    unit_put_be16(d + 130, 2048);
    d[2048] = 255;
    memcpy(d + 2049, "CD001", 5);
    d[2054] = 1;
}

/* UDF without ISO 9660: BEA01, NSR03, TEA01 in sectors 16..18. */
static void b_udf(uint8_t *b, size_t n)
{
    static const char *const ids[] = { "BEA01", "NSR03", "TEA01" };

    for (int i = 0; i < 3; i++) {
        uint8_t *d = b + ISO_VD + 2048 * i;

        memcpy(d + 1, ids[i], 5);
        d[6] = 1;
    }
    (void)n;
}

struct sample {
    const char *format;
    const char *name;
    void (*build)(uint8_t *buf, size_t size);
    bool accepted;        /* raw content (a layout whose checks pass) */
    size_t min_size;      /* the smallest content the sample fits in */
    bool head_signature;  /* its signature starts at 0 (test_truncated_head) */
};

static const struct sample samples[] = {
    { "qcow2", "qcow2 v3 with a backing file", b_qcow2, false, 0x10000 + 11, true },
    { "qcow2", "qcow2 v2", b_qcow2_v2, false, 0, true },
    { "qcow", "qcow v1", b_qcow, false, 0, true },
    { "qed", "QED", b_qed, false, 0, true },
    { "vmdk", "VMDK sparse (KDMV)", b_vmdk, false, 0, true },
    { "vmdk", "VMDK COWD", b_vmdk_cowd, false, 0, true },
    { "vmdk", "VMDK text descriptor", b_vmdk_text, false, 0, false },
    { "vdi", "VDI", b_vdi, false, 0, true },
    { "vhd", "VHD header at 0", b_vhd, false, 0, true },
    { "vhd", "fixed VHD footer", b_vhd_footer, false, 512, false },
    { "vhd", "fixed VHD 511-byte footer (Virtual PC before 2004)", b_vhd_footer511, false, 511, false },
    { "vhdx", "VHDX", b_vhdx, false, 0, true },
    { "parallels", "parallels", b_parallels, false, 0, true },
    { "parallels", "parallels ext", b_parallels_ext, false, 0, true },
    { "bochs", "bochs", b_bochs, false, 0, true },
    { "luks", "LUKS1", b_luks, false, 0, true },
    { "luks", "LUKS2", b_luks2, false, 0, true },
    { "luks", "LUKS2 secondary header alone", b_luks2_secondary, false, 0x4000 + 512, false },
    { "cloop", "cloop", b_cloop, false, 0, true },
    { "dmg", "dmg koly trailer", b_dmg, false, 512, false },
    { "mbr", "MBR disk", b_mbr, true, 1024, false },
    { "mbr", "MBR with boot flag 0x01", b_mbr_bad_flag, false, 1024, false },
    { "gpt", "GPT disk", b_gpt, true, 9 * 512, false },
    { "gpt", "GPT with a bad header CRC", b_gpt_bad_crc, false, 9 * 512, false },
    { "iso", "ISO 9660", b_iso, true, ISO_VD + 4096, false },
    { "udf", "UDF", b_udf, true, ISO_VD + 3 * 2048, false },
};

#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

/* A content buffer of size bytes holding the sample. */
static uint8_t *build(const struct sample *s, size_t size)
{
    uint8_t *b = calloc(size, 1);

    assert_non_null(b);
    s->build(b, size);
    return b;
}

/* The hit of `format` in a scan of in (fails when there is none). */
static struct sif_probe_hit hit_of(const struct sif_probe_input *in, const char *format)
{
    struct sif_probe_hit hits[SIF_HITS_MAX];
    int n = sif_probe_scan(in, hits, SIF_HITS_MAX);

    for (int i = 0; i < n && i < SIF_HITS_MAX; i++)
        if (!strcmp(hits[i].probe->format, format))
            return hits[i];
    fail_msg("no %s hit (%d hits)", format, n);
    return hits[0];
}

/* Exactly one probe, `format`, matches.  A format that is not accepted is
 * rejected by sif_probe_inner with inner.FORMAT; an accepted one (a safe
 * layout) leaves the verdict pending with inner "raw" and the hit recorded. */
static void expect_hit(const struct sif_probe_input *in, const char *format, bool accepted, const char *what)
{
    const char *found[4] = { NULL, NULL, NULL, NULL };
    char detail[SIF_HIT_DETAIL], check[SIF_CHECK_LEN];
    struct sif_verdict v;
    int n, r;

    n = sif_probe_run(in, found, 4, detail, sizeof(detail));
    if (n != 1 || strcmp(found[0], format) != 0)
        fail_msg("%s: %d matches, first %s; expected only %s", what, n, n ? found[0] : "-", format);
    sif_verdict_init(&v);
    r = sif_probe_inner(in, NULL, &v);
    assert_int_equal(v.n_inner, 1);
    assert_string_equal(v.inner_hits[0].format, format);
    if (accepted) {
        if (r != 0)
            fail_msg("%s: rejected [%s] %s", what, v.check, v.reason);
        assert_int_equal(v.state, SIF_PENDING);
        assert_string_equal(v.inner, "raw");
        assert_string_equal(v.check, "");
        assert_false(v.inner_hits[0].unsafe);
        return;
    }
    if (r != -EPERM)
        fail_msg("%s: not rejected (%d)", what, r);
    assert_int_equal(v.state, SIF_REJECTED);
    unit_fmt(check, sizeof(check), "inner.%s", format);
    assert_string_equal(v.check, check);
    assert_string_equal(v.inner, format);
    assert_true(v.reason[0] != 0);
}

static void expect_format(const struct sif_probe_input *in, const char *format, const char *what)
{
    expect_hit(in, format, false, what);
}

/* No probe matches: raw, accepted by sif_probe_inner (which sets inner
 * "raw" and records no verdict; the caller accepts as inner.raw). */
static void expect_raw(const struct sif_probe_input *in, const char *what)
{
    const char *found[4] = { NULL, NULL, NULL, NULL };
    char detail[SIF_HIT_DETAIL];
    struct sif_verdict v;
    int n;

    n = sif_probe_run(in, found, 4, detail, sizeof(detail));
    if (n != 0)
        fail_msg("%s: matched %d formats (first %s: %s); expected raw", what, n, found[0], detail);
    sif_verdict_init(&v);
    assert_int_equal(sif_probe_inner(in, NULL, &v), 0);
    assert_string_equal(v.inner, "raw");
    assert_int_equal(v.state, SIF_PENDING);
    assert_string_equal(v.check, "");
}

/* A layout whose safety checks fail: one hit, unsafe, with detail holding
 * `why`; the engine rejects with inner.FORMAT. */
static void expect_unsafe(const struct sif_probe_input *in, const char *format, const char *why, const char *what)
{
    struct sif_probe_hit h;

    expect_hit(in, format, false, what);
    h = hit_of(in, format);
    if (!h.unsafe || !strstr(h.detail, why))
        fail_msg("%s: %s hit %s unsafe, detail \"%s\", expected \"%s\"", what, format, h.unsafe ? "is" : "is not",
                 h.detail, why);
}

/* The detail of the only hit, which must be `format`, contains `want`. */
static void expect_detail(const struct sif_probe_input *in, const char *format, const char *want, const char *what)
{
    struct sif_probe_hit h = hit_of(in, format);

    if (!strstr(h.detail, want))
        fail_msg("%s: %s detail \"%s\" lacks \"%s\"", what, format, h.detail, want);
}

static void test_every_probe_has_a_sample(void **state)
{
    int nprobes = 0;

    (void)state;
    for (const struct sif_probe *p = sif_probes; p->format; p++) {
        bool have = false;

        nprobes++;
        assert_non_null(p->match);
        for (size_t i = 0; i < NSAMPLES; i++)
            have |= !strcmp(samples[i].format, p->format);
        if (!have)
            fail_msg("probe \"%s\" has no positive sample in test_probe.c", p->format);
    }
    /* and every sample names a probe that exists */
    for (size_t i = 0; i < NSAMPLES; i++) {
        bool known = false;

        for (const struct sif_probe *p = sif_probes; p->format; p++)
            known |= !strcmp(samples[i].format, p->format);
        if (!known)
            fail_msg("sample \"%s\" names no probe \"%s\"", samples[i].name, samples[i].format);
    }
    assert_true(nprobes >= 16);
}

/* The check ids are part of the interface: operators and scripts match on
 * them. */
static void test_table_names_and_classes(void **state)
{
    static const struct {
        const char *format;
        enum sif_probe_class cls;
    } want[] = {
        { "qcow2", SIF_CLASS_IMAGE }, { "qcow", SIF_CLASS_IMAGE },      { "qed", SIF_CLASS_IMAGE },
        { "vmdk", SIF_CLASS_IMAGE },  { "vdi", SIF_CLASS_IMAGE },       { "vhd", SIF_CLASS_IMAGE },
        { "vhdx", SIF_CLASS_IMAGE },  { "parallels", SIF_CLASS_IMAGE }, { "bochs", SIF_CLASS_IMAGE },
        { "luks", SIF_CLASS_IMAGE },  { "cloop", SIF_CLASS_IMAGE },     { "dmg", SIF_CLASS_IMAGE },
        { "mbr", SIF_CLASS_LAYOUT },  { "gpt", SIF_CLASS_LAYOUT },      { "iso", SIF_CLASS_LAYOUT },
        { "udf", SIF_CLASS_LAYOUT },
    };
    size_t n = 0;

    (void)state;
    for (const struct sif_probe *p = sif_probes; p->format; p++, n++) {
        assert_true(n < sizeof(want) / sizeof(want[0]));
        assert_string_equal(p->format, want[n].format);
        assert_int_equal(p->cls, want[n].cls);
        assert_true(strlen(p->format) < SIF_MATCH_FMT);
    }
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
}

static void test_samples_big(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSAMPLES; i++) {
        uint8_t *b = build(&samples[i], BIG);
        struct sif_probe_input in = input_of(b, BIG);

        expect_hit(&in, samples[i].format, samples[i].accepted, samples[i].name);
        free(b);
    }
}

/* Small contents (head and tail regions are the same bytes). */
static void test_samples_small(void **state)
{
    static const size_t sizes[] = { 1u << 17, 40960, 4096 + 512, 1024 };

    (void)state;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
        for (size_t i = 0; i < NSAMPLES; i++) {
            uint8_t *b;
            struct sif_probe_input in;

            if (sizes[k] < samples[i].min_size)
                continue;
            b = build(&samples[i], sizes[k]);
            in = input_of(b, sizes[k]);
            expect_hit(&in, samples[i].format, samples[i].accepted, samples[i].name);
            free(b);
        }
}

/* A content whose size is not a multiple of 512 (the tail is not
 * sector-aligned): the footers are found from the end all the same. */
static void test_samples_odd_size(void **state)
{
    const size_t size = BIG - 300;

    (void)state;
    for (size_t i = 0; i < NSAMPLES; i++) {
        uint8_t *b = build(&samples[i], size);
        struct sif_probe_input in = input_of(b, size);

        expect_hit(&in, samples[i].format, samples[i].accepted, samples[i].name);
        free(b);
    }
}

/* ------------------------------------------------------------- details */

static void test_qcow2_backing_detail(void **state)
{
    uint8_t *b = build(&samples[0], BIG);
    struct sif_probe_input in = input_of(b, BIG);
    struct sif_verdict v;

    (void)state;
    sif_verdict_init(&v);
    assert_int_equal(sif_probe_inner(&in, NULL, &v), -EPERM);
    assert_string_equal(v.check, "inner.qcow2");
    assert_non_null(strstr(v.reason, "version 3, with a backing file \"/etc/shadow\""));
    free(b);
}

/* qcow2 header extensions: a data file, however it is declared, is told;
 * lengths that run past the head or wrap are harmless. */
static void test_qcow2_extensions(void **state)
{
    uint8_t *b = calloc(BIG, 1);
    struct sif_probe_input in = input_of(b, BIG);
    struct sif_probe_hit h;

    (void)state;
    assert_non_null(b);
    b_qcow2_v2(b, BIG);
    unit_put_be32(b + 4, 3);
    unit_put_be32(b + 100, 112);            /* header length */
    /* a feature name table, then the data file name, then the end */
    unit_put_be32(b + 112, 0x6803f857);
    unit_put_be32(b + 116, 48);
    unit_put_be32(b + 168, 0x44415441);
    unit_put_be32(b + 172, 11);
    memcpy(b + 176, "/dev/sda\x01yz", 11);
    h = hit_of(&in, "qcow2");
    assert_string_equal(h.detail, "version 3, with an external data file \"/dev/sda?yz\"");

    /* the incompatible feature bit alone */
    memset(b + 112, 0, 128);
    b[79] = 0x04;
    h = hit_of(&in, "qcow2");
    assert_string_equal(h.detail, "version 3, with an external data file");

    /* unknown incompatible bits and encryption */
    b[79] = 0x20;
    unit_put_be32(b + 32, 2);
    h = hit_of(&in, "qcow2");
    assert_string_equal(h.detail, "version 3, encrypted (LUKS), unknown incompatible features 0x20");
    b[79] = 0;
    unit_put_be32(b + 32, 0);

    /* an extension whose length wraps a 32-bit sum, then what would be a
     * data file extension past it: never reached */
    unit_put_be32(b + 112, 0x12345678);
    unit_put_be32(b + 116, 0xfffffffc);
    unit_put_be32(b + 120, 0x44415441);
    h = hit_of(&in, "qcow2");
    assert_string_equal(h.detail, "version 3");

    /* a data file extension whose name runs past the first cluster:
     * reported, without a name */
    memset(b + 112, 0, 16);
    unit_put_be32(b + 112, 0x44415441);
    unit_put_be32(b + 116, 0x10000);
    h = hit_of(&in, "qcow2");
    assert_string_equal(h.detail, "version 3, with an external data file");

    /* extensions are read within the first cluster only (cluster_bits 9:
     * 512 bytes) */
    memset(b + 112, 0, 16);
    unit_put_be32(b + 20, 9);
    unit_put_be32(b + 100, 512 - 8);
    unit_put_be32(b + 504, 0x44415441);
    unit_put_be32(b + 508, 0);
    h = hit_of(&in, "qcow2");
    assert_string_equal(h.detail, "version 3, with an external data file");
    unit_put_be32(b + 100, 512 - 4);        /* the extension header would cross the cluster */
    memset(b + 504, 0, 8);
    unit_put_be32(b + 508, 0x44415441);
    h = hit_of(&in, "qcow2");
    assert_string_equal(h.detail, "version 3");

    /* a header length beyond the head, a backing file offset of 2^64 - 1 */
    unit_put_be32(b + 20, 16);
    unit_put_be32(b + 100, 0xfffffff8);
    unit_put_be64(b + 8, UINT64_MAX);
    unit_put_be32(b + 16, 0xffffffff);
    h = hit_of(&in, "qcow2");
    assert_string_equal(h.detail, "version 3, with a backing file");
    {
        struct sif_probe_content g;

        /* the same offset through the engine: no region is read */
        h = hit_of(gather_of(&g, b, BIG), "qcow2");
        assert_string_equal(h.detail, "version 3, with a backing file");
        assert_int_equal(g.in.n_extra, 0);
        sif_probe_content_free(&g);
        /* a name 1.5 MiB into a 4 MiB disk: shown once the engine reads it */
        {
            const size_t n4 = 4u << 20;
            uint8_t *w = calloc(n4, 1);
            struct sif_probe_input win = input_of(w, n4);

            assert_non_null(w);
            memcpy(w, b, 4096);
            unit_put_be64(w + 8, (3u << 20) / 2);
            unit_put_be32(w + 16, 11);
            memcpy(w + (3u << 20) / 2, "/etc/shadow", 11);
            h = hit_of(&win, "qcow2");
            assert_string_equal(h.detail, "version 3, with a backing file");
            h = hit_of(gather_of(&g, w, n4), "qcow2");
            assert_string_equal(h.detail, "version 3, with a backing file \"/etc/shadow\"");
            assert_int_equal(g.in.n_extra, 1);
            sif_probe_content_free(&g);
            free(w);
        }
    }

    /* version 2 has no feature bits: bytes 72.. are extensions */
    memset(b, 0, 4096);
    b_qcow2_v2(b, BIG);
    memset(b + 72, 0xff, 8);
    h = hit_of(&in, "qcow2");
    assert_null(strstr(h.detail, "data file"));
    assert_null(strstr(h.detail, "unknown"));
    /* a v2 header cut short */
    {
        uint8_t *t = exact(b, 40);
        struct sif_probe_input tin = input_of(t, 40);

        h = hit_of(&tin, "qcow2");
        assert_string_equal(h.detail, "version 2, header cut short");
        free(t);
    }
    free(b);
}

static void test_qcow_qed_details(void **state)
{
    uint8_t *b = calloc(4096, 1);
    struct sif_probe_input in = input_of(b, 4096);
    struct sif_probe_hit h;

    (void)state;
    assert_non_null(b);
    b_qcow(b, 4096);
    h = hit_of(&in, "qcow");
    assert_string_equal(h.detail, "version 1, with a backing file \"/dev\"");
    unit_put_be32(b + 36, 1);
    h = hit_of(&in, "qcow");
    assert_string_equal(h.detail, "version 1, with a backing file \"/dev\", encrypted (AES)");

    memset(b, 0, 4096);
    b_qed(b, 4096);
    h = hit_of(&in, "qed");
    assert_string_equal(h.detail, "");
    b[16] = 1;                              /* QED_F_BACKING_FILE */
    unit_put_le32(b + 56, 0x100);
    unit_put_le32(b + 60, 8);
    memcpy(b + 0x100, "base.raw", 8);
    h = hit_of(&in, "qed");
    assert_string_equal(h.detail, "with a backing file \"base.raw\"");
    unit_put_le32(b + 56, 0xfffffffc);      /* name outside the content */
    h = hit_of(&in, "qed");
    assert_string_equal(h.detail, "with a backing file");
    free(b);
}

/* Embedded and text VMDK descriptors: createType, extents, host paths and
 * OpenStack's verdict on the descriptor. */
static const char desc_sparse[] =
    "# Disk DescriptorFile\n"
    "version=1\n"
    "CID=6fa3a2ff\n"
    "parentCID=ffffffff\n"
    "createType=\"monolithicSparse\"\n"
    "\n"
    "# Extent description\n"
    "RW 8192 SPARSE \"disk.vmdk\"\n"
    "\n"
    "ddb.virtualHWVersion = \"4\"\n"
    "ddb.adapterType = \"ide\"\n";

static void kdmv(uint8_t *b, uint64_t desc_sector, uint64_t desc_sectors, uint64_t gd)
{
    memcpy(b, "KDMV", 4);
    unit_put_le32(b + 4, 1);
    unit_put_le32(b + 8, 3);
    put_le64(b + 12, 8192);                 /* capacity */
    put_le64(b + 20, 128);                  /* grain */
    put_le64(b + 28, desc_sector);
    put_le64(b + 36, desc_sectors);
    unit_put_le32(b + 44, 512);
    put_le64(b + 48, 21);
    put_le64(b + 56, gd);
}

static void test_vmdk_sparse_detail(void **state)
{
    uint8_t *b = calloc(BIG, 1);
    struct sif_probe_input in = input_of(b, BIG);
    struct sif_probe_hit h;
    char *evil;

    (void)state;
    assert_non_null(b);
    kdmv(b, 1, 20, 26);
    memcpy(b + 512, desc_sparse, strlen(desc_sparse));
    h = hit_of(&in, "vmdk");
    assert_string_equal(h.detail, "sparse extent version 1, descriptor at 512 (10240 bytes); "
                                  "createType monolithicSparse, "
                                  "1 extent: RW 8192 SPARSE \"disk.vmdk\"");

    /* an extent naming a host path: said first */
    evil = unit_replace(desc_sparse, "\"disk.vmdk\"", "\"/etc/shadow\"");
    memcpy(b + 512, evil, strlen(evil));
    free(evil);
    h = hit_of(&in, "vmdk");
    assert_true(!strncmp(h.detail, "extent names a host path; sparse extent version 1", 49));
    assert_non_null(strstr(h.detail, "RW 8192 SPARSE \"/etc/shadow\""));
    assert_null(strstr(h.detail, "refuses"));       /* the host path is the reason, said first */

    /* a descriptor elsewhere than sector 1 */
    memset(b + 512, 0, 20 * 512);
    kdmv(b, 4, 2, 26);
    memcpy(b + 2048, desc_sparse, strlen(desc_sparse));
    h = hit_of(&in, "vmdk");
    assert_non_null(strstr(h.detail, "descriptor at 2048 (1024 bytes); "
                                     "OpenStack refuses it: descriptor not at sector 1; "
                                     "createType monolithicSparse"));
    memset(b + 2048, 0, 1024);

    /* sector counts that overflow 64 bits when turned into bytes */
    kdmv(b, UINT64_MAX, 20, 26);
    h = hit_of(&in, "vmdk");
    assert_non_null(strstr(h.detail, "(out of range)"));
    kdmv(b, 1, (UINT64_MAX >> 9) + 1, 26);
    h = hit_of(&in, "vmdk");
    assert_non_null(strstr(h.detail, "(out of range)"));
    /* a descriptor past the head (a 4 MiB disk: neither in the first nor
     * in the last MiB): not seen by the probe alone, read as an extra
     * region by the engine; none at all */
    {
        const size_t n4 = 4u << 20;
        uint8_t *w = calloc(n4, 1);
        struct sif_probe_input win = input_of(w, n4);
        struct sif_probe_content g;

        assert_non_null(w);
        kdmv(w, 3072, 20, 26);
        h = hit_of(&win, "vmdk");
        assert_non_null(strstr(h.detail, "descriptor at 1572864 (10240 bytes) beyond the inspected region"));
        assert_non_null(strstr(h.detail, "OpenStack refuses it: no descriptor"));
        memcpy(w + 3072 * 512, desc_sparse, strlen(desc_sparse));
        h = hit_of(gather_of(&g, w, n4), "vmdk");
        assert_non_null(strstr(h.detail, "descriptor at 1572864 (10240 bytes)"));
        assert_null(strstr(h.detail, "beyond"));
        assert_non_null(strstr(h.detail, "createType monolithicSparse"));
        assert_int_equal(g.in.n_extra, 1);
        sif_probe_content_free(&g);
        free(w);
    }
    kdmv(b, 0, 0, 26);
    h = hit_of(&in, "vmdk");
    assert_non_null(strstr(h.detail, "no embedded descriptor"));
    /* a huge descriptor size is cut at 1 MiB - 1 */
    kdmv(b, 1, 1u << 20, 26);
    memcpy(b + 512, desc_sparse, strlen(desc_sparse));
    h = hit_of(&in, "vmdk");
    assert_non_null(strstr(h.detail, "descriptor at 512 (1048575 bytes) beyond"));

    /* streamOptimized with its grain directory in the footer */
    memset(b, 0, BIG);
    kdmv(b, 1, 20, UINT64_MAX);
    evil = unit_replace(desc_sparse, "monolithicSparse", "streamOptimized");
    memcpy(b + 512, evil, strlen(evil));
    free(evil);
    {
        uint8_t *f = b + BIG - 1536;

        unit_put_le32(f + 12, 3);           /* footer marker */
        kdmv(f + 512, 1, 20, 26);           /* the footer: the header with the real directory */
    }
    h = hit_of(&in, "vmdk");
    assert_non_null(strstr(h.detail, "createType streamOptimized"));
    assert_non_null(strstr(h.detail, "; grain directory in the footer"));
    assert_null(strstr(h.detail, "refuses"));
    b[BIG - 512 + 12] = 1;                  /* end-of-stream marker spoilt */
    h = hit_of(&in, "vmdk");
    assert_non_null(strstr(h.detail, "OpenStack refuses it: bad stream footer"));
    b[BIG - 512 + 12] = 0;
    put_le64(b + BIG - 1024 + 56, UINT64_MAX);   /* a footer that defers to a footer */
    h = hit_of(&in, "vmdk");
    assert_non_null(strstr(h.detail, "bad stream footer"));

    /* headers cut short, as whole contents */
    for (size_t len = 4; len < 64; len += 59) {
        uint8_t *t = exact(b, len);
        struct sif_probe_input tin = input_of(t, len);

        h = hit_of(&tin, "vmdk");
        assert_string_equal(h.detail, "sparse extent, header cut short");
        free(t);
    }
    free(b);
}

static void test_vmdk_descriptor_rules(void **state)
{
    static const struct {
        const char *text;
        const char *want;   /* in the detail */
        bool refused;       /* by OpenStack's rules */
    } cases[] = {
        { "version=1\ncreateType=\"monolithicSparse\"\nRW 8 SPARSE \"a.vmdk\"\n",
          "text descriptor; createType monolithicSparse, 1 extent: RW 8 SPARSE \"a.vmdk\"", false },
        { "version=1\nCREATETYPE=\"streamOptimized\"\nrdonly 8 SPARSE \"a.vmdk\"\nNOACCESS 8 ZERO\n",
          "createType streamOptimized, 2 extents: rdonly 8 SPARSE \"a.vmdk\"", false },
        { "version=1\ncreateType=\"monolithicFlat\"\nRW 8 FLAT \"a-flat.vmdk\" 0\n",
          "OpenStack refuses it: unsupported createType; createType monolithicFlat", true },
        { "version=1\ncreateType=\"monolithicSparse\"\n",
          "OpenStack refuses it: no extent; createType monolithicSparse, 0 extents", true },
        { "version=1\ncreateType=\"monolithicSparse\"\nRW 8 SPARSE \"a.vmdk\"\nrm -rf x\n",
          "OpenStack refuses it: line 4 is not a descriptor line", true },
        { "version=1\ncreate Type=\"monolithicSparse\"\nRW 8 SPARSE \"a.vmdk\"\n",
          "line 2 is not a descriptor line; createType (none), 1 extent", true },
        { "version=1\ncreateType=\"monolithicSparse\"\nRW 8 SPARSE \"a.vmdk\"\nRW 8 FLAT \"/dev/sda\" 0\n",
          "extent names a host path; text descriptor; createType monolithicSparse, 2 extents: RW 8 FLAT \"/dev/sda\" 0",
          false /* the host path is the reason, said first */ },
        { "version=1\ncreateType=\"monolithicSparse\"\nparentFileNameHint=\"/var/lib/base.vmdk\"\nRW 8 SPARSE \"a\"\n",
          "parent names a host path; text descriptor", false },
        { "version=1\ncreateType=\"monolithicSparse\"\nparentFileNameHint=\"base.vmdk\"\nRW 8 SPARSE \"a\"\n",
          "has a parent image; text descriptor", false },
        { "version=1\ncreateType=\"monolithicSparse\"\nRW 8 SPARSE \"\xc3\xa9.vmdk\"\n",
          "OpenStack refuses it: not ASCII; createType monolithicSparse, 1 extent: RW 8 SPARSE \"??.vmdk\"", true },
        { "version=1\r\ncreateType=\"monolithicSparse\"\r\n\tRW 8 SPARSE \"a.vmdk\"  \r\n",
          "createType monolithicSparse, 1 extent: RW 8 SPARSE \"a.vmdk\"", false },
        /* tabs between the fields: qemu reads it as an extent */
        { "version=1\ncreateType=\"monolithicFlat\"\nRW\t8\tFLAT\t\"/etc/passwd\"\t0\n",
          "extent names a host path; text descriptor; OpenStack refuses it: unsupported createType", true },
    };
    uint8_t *b = calloc(BIG, 1);

    (void)state;
    assert_non_null(b);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sif_probe_input in;
        struct sif_probe_hit h;
        size_t len = strlen(cases[i].text);

        memset(b, 0, 4096);
        memcpy(b, cases[i].text, len);
        in = input_of(b, BIG);
        expect_format(&in, "vmdk", cases[i].text);
        h = hit_of(&in, "vmdk");
        if (!strstr(h.detail, cases[i].want))
            fail_msg("case %zu: detail \"%s\" lacks \"%s\"", i, h.detail, cases[i].want);
        assert_int_equal(strstr(h.detail, "OpenStack refuses") != NULL, cases[i].refused);
        /* the same as a whole content of exactly its length */
        {
            uint8_t *t = exact(b, len);
            struct sif_probe_input tin = input_of(t, len);
            struct sif_probe_hit th = hit_of(&tin, "vmdk");

            assert_string_equal(th.detail, h.detail);
            free(t);
        }
    }
    free(b);
}

static void test_luks_details(void **state)
{
    uint8_t *b = calloc(1u << 17, 1);
    struct sif_probe_input in = input_of(b, 1u << 17);
    struct sif_probe_hit h;

    (void)state;
    assert_non_null(b);
    b_luks(b, 1u << 17);
    memcpy(b + 40, "xts-plain64", 11);
    h = hit_of(&in, "luks");
    assert_string_equal(h.detail, "LUKS1, cipher aes-xts-plain64");
    memset(b, 0, 4096);
    b_luks2(b, 1u << 17);
    unit_put_be64(b + 8, 16384);
    h = hit_of(&in, "luks");
    assert_string_equal(h.detail, "LUKS2, header size 16384");
    b[7] = 3;
    h = hit_of(&in, "luks");
    assert_string_equal(h.detail, "LUKS version 3");
    /* the secondary header alone, at 0 and at each place it may be */
    memset(b, 0, 4096);
    memcpy(b, "SKUL\xba\xbe\0\2", 8);
    h = hit_of(&in, "luks");
    assert_string_equal(h.detail, "LUKS2 secondary header at 0");
    memset(b, 0, 8);
    b_luks2_secondary(b, 1u << 17);
    h = hit_of(&in, "luks");
    assert_int_equal(h.where, 0x4000);
    assert_string_equal(h.detail, "LUKS2 secondary header at 16384 (no primary header)");
    memset(b + 0x4000, 0, 8);
    memcpy(b + 0x10000, "SKUL\xba\xbe\0\2", 8);
    h = hit_of(&in, "luks");
    assert_int_equal(h.where, 0x10000);
    /* not at the other places, nor with version 1 */
    memset(b + 0x10000, 0, 8);
    memcpy(b + 0x4200, "SKUL\xba\xbe\0\2", 8);
    expect_raw(&in, "SKUL at 0x4200");
    memset(b + 0x4200, 0, 8);
    memcpy(b + 0x4000, "SKUL\xba\xbe\0\1", 8);
    expect_raw(&in, "SKUL version 1");
    memset(b + 0x4000, 0, 8);
    memcpy(b, "SKUL\xba\xbe\0\1", 8);
    expect_raw(&in, "SKUL version 1 at 0");
    free(b);
}

static void test_image_details(void **state)
{
    uint8_t *b = calloc(BIG, 1);
    struct sif_probe_input in = input_of(b, BIG);
    struct sif_probe_hit h;

    (void)state;
    assert_non_null(b);
    b_vdi(b, BIG);
    unit_put_le32(b + 0x4c, 4);
    h = hit_of(&in, "vdi");
    assert_int_equal(h.where, 0x40);
    assert_string_equal(h.detail, "version 1.1, differencing (has a parent)");
    memset(b, 0, 4096);

    b_vhd(b, BIG);
    unit_put_be32(b + 60, 3);
    h = hit_of(&in, "vhd");
    assert_int_equal(h.where, 0);
    assert_string_equal(h.detail, "dynamic disk");
    memset(b, 0, 4096);
    b_vhd_footer(b, BIG);
    h = hit_of(&in, "vhd");
    assert_int_equal(h.where, BIG - 512);
    assert_string_equal(h.detail, "fixed disk, footer in the last 512 bytes");
    memset(b + BIG - 512, 0, 512);
    b_vhd_footer511(b, BIG);
    unit_put_be32(b + BIG - 511 + 60, 4);
    h = hit_of(&in, "vhd");
    assert_int_equal(h.where, BIG - 511);
    assert_string_equal(h.detail, "differencing disk (has a parent), footer in the last 511 bytes");
    memset(b + BIG - 512, 0, 512);

    memcpy(b, "vhdxfile", 8);
    memcpy(b + 8, "Q\0E\0M\0U\0\x01\0", 10);
    h = hit_of(&in, "vhdx");
    assert_string_equal(h.detail, "creator \"QEMU?\"");
    memset(b, 0, 64);

    b_parallels_ext(b, BIG);
    h = hit_of(&in, "parallels");
    assert_string_equal(h.detail, "version 2, extended format");
    memset(b, 0, 64);

    b_bochs(b, BIG);
    memcpy(b + 48, "Growing", 8);
    unit_put_le32(b + 64, 0x00020000);
    h = hit_of(&in, "bochs");
    assert_string_equal(h.detail, "type \"Redolog\", subtype \"Growing\", version 0x20000");
    memset(b, 0, 128);
    free(b);
}

/* ------------------------------------------------------------- layouts */

static void test_crc32(void **state)
{
    static const uint8_t check[] = "123456789";
    uint8_t *big = malloc(20000);
    uint32_t c;

    (void)state;
    assert_non_null(big);
    assert_int_equal(sif_crc32(0, check, 9), 0xCBF43926u);
    assert_int_equal(sif_crc32(0, check, 0), 0);
    c = sif_crc32(0, check, 4);
    assert_int_equal(sif_crc32(c, check + 4, 5), 0xCBF43926u);
    unit_fill_prng(big, 20000, 3);
    assert_int_equal(sif_crc32(0, big, 20000), t_crc32(big, 20000));
    free(big);
}

static void test_mbr_rules(void **state)
{
    const size_t n = 1u << 16;
    uint8_t *b = calloc(n, 1);
    struct sif_probe_input in = input_of(b, n);

    (void)state;
    assert_non_null(b);
    /* each slot's boot flag: 0x00 and 0x80 only */
    for (int slot = 0; slot < 4; slot++) {
        memset(b, 0, 512);
        b_mbr(b, n);
        mbr_entry(b, slot)[P_BOOT] = 0x01;
        expect_unsafe(&in, "mbr", "boot flag 0x01", "boot flag 0x01");
        mbr_entry(b, slot)[P_BOOT] = 0x7f;
        expect_unsafe(&in, "mbr", "boot flag 0x7f", "boot flag 0x7f");
        mbr_entry(b, slot)[P_BOOT] = slot ? 0x80 : 0x00;
        expect_hit(&in, "mbr", true, "boot flag 0x00/0x80");
    }
    /* no partition: 55 AA alone, or with boot code */
    memset(b, 0, 512);
    b[510] = 0x55;
    b[511] = 0xaa;
    expect_unsafe(&in, "mbr", "MBR defines no partition", "bare 55 AA");
    unit_fill_prng(b, 440, 4);
    b[0] = 0xfa;
    expect_unsafe(&in, "mbr", "MBR defines no partition", "boot code, empty table");
    /* garbage entries: boot flags that are not 0x00/0x80 */
    unit_fill_prng(b + MBR_TABLE, 64, 9);
    mbr_entry(b, 0)[P_BOOT] = 0x42;
    expect_unsafe(&in, "mbr", "boot flag 0x42", "garbage table");
    /* the signature must be exact and at 510 */
    memset(b, 0, 512);
    b_mbr(b, n);
    b[511] = 0xab;
    expect_raw(&in, "55 AB");
    b[511] = 0xaa;
    b[510] = 0x54;
    expect_raw(&in, "54 AA");
    memset(b, 0, 512);
    b_mbr(b, n);
    {
        uint8_t *t = exact(b, 511);
        struct sif_probe_input tin = input_of(t, 511);

        expect_raw(&tin, "511-byte content");
        free(t);
        t = exact(b, 512);
        tin = input_of(t, 512);
        expect_hit(&tin, "mbr", true, "512-byte content");
        free(t);
    }
    free(b);
}

static void test_protective_mbr_rules(void **state)
{
    const size_t n = 1u << 16;
    uint8_t *b = calloc(n, 1);
    struct sif_probe_input in = input_of(b, n);
    uint8_t *e0 = mbr_entry(b, 0), *e1 = mbr_entry(b, 1);

    (void)state;
    assert_non_null(b);
    b_gpt(b, n);
    expect_hit(&in, "gpt", true, "GPT disk");
    expect_detail(&in, "gpt", "1 partition in 4 entries", "GPT disk");
    assert_int_equal(hit_of(&in, "gpt").where, 512);
    /* a bootable protective entry is still one (OpenStack checks only the flag's values) */
    e0[P_BOOT] = 0x80;
    expect_hit(&in, "gpt", true, "active protective entry");
    e0[P_BOOT] = 0;
    /* the protective entry with another partition: a hybrid MBR */
    memcpy(e1, e0, 16);
    e1[P_TYPE] = 0x0c;
    unit_put_le32(e1 + P_LBA, 2048);
    expect_unsafe(&in, "mbr", "must be alone in slot 1 (found in slot 1, 2 slots in use)", "hybrid MBR");
    /* ... overlapping it */
    unit_put_le32(e1 + P_LBA, 1);
    expect_unsafe(&in, "mbr", "must be alone", "overlapping protective MBR");
    memset(e1, 0, 16);
    /* in slot 2 instead of 1 */
    memcpy(e1, e0, 16);
    memset(e0, 0, 16);
    expect_unsafe(&in, "mbr", "found in slot 2, 1 slot in use", "protective entry in slot 2");
    memcpy(e0, e1, 16);
    memset(e1, 0, 16);
    /* start LBA and CHS */
    unit_put_le32(e0 + P_LBA, 2);
    expect_unsafe(&in, "mbr", "starts at LBA 2, not 1", "protective entry at LBA 2");
    unit_put_le32(e0 + P_LBA, 0);
    expect_unsafe(&in, "mbr", "starts at LBA 0, not 1", "protective entry at LBA 0");
    unit_put_le32(e0 + P_LBA, 1);
    e0[P_CHS + 1] = 0x03;
    expect_unsafe(&in, "mbr", "CHS 00 03 00, not 00 02 00", "protective entry CHS");
    e0[P_CHS + 1] = 0x02;
    e0[P_CHS] = 0x01;
    expect_unsafe(&in, "mbr", "CHS 01 02 00", "protective entry CHS head");
    e0[P_CHS] = 0x00;
    expect_hit(&in, "gpt", true, "restored");
    /* a protective MBR without the GPT header at LBA 1 (one byte off, or
     * 4096-byte sectors) is an MBR */
    memmove(b + 513, b + 512, 92);
    b[512] = 0;
    expect_hit(&in, "mbr", true, "EFI PART at 513");
    expect_detail(&in, "mbr", "protective MBR without a GPT header at LBA 1", "EFI PART at 513");
    free(b);
}

/* The GPT header checks, each on a header whose CRC is recomputed so that
 * only the condition under test fails. */
static void test_gpt_rules(void **state)
{
    static const int flips[] = { 8, 11, 16, 19, 24, 40, 56, 71, 80, 88, 91 };
    const size_t n = 1u << 20;
    uint64_t nsec = n / 512;
    uint8_t *b = calloc(n, 1);
    struct sif_probe_input in = input_of(b, n);
    uint8_t *h = b + GPT;

    (void)state;
    assert_non_null(b);
#define RESET() \
    do {                      \
        memset(b, 0, n);      \
        b_gpt(b, n);          \
    } while (0)
    RESET();
    expect_hit(&in, "gpt", true, "GPT");
    /* header CRC: any header byte, and the CRC field itself */
    for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
        RESET();
        h[flips[i]] ^= 0x01;
        expect_unsafe(&in, "gpt", "GPT header CRC32 is 0x", "flipped header byte");
    }
    /* bytes past the header size are not covered */
    RESET();
    h[92] = 0x5a;
    expect_hit(&in, "gpt", true, "byte past the header");
    /* header size: 92..512 */
    RESET();
    unit_put_le32(h + G_HSIZE, 91);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "GPT header size 91 is not within 92..512", "header size 91");
    unit_put_le32(h + G_HSIZE, 513);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "GPT header size 513", "header size 513");
    unit_put_le32(h + G_HSIZE, 0xffffffff);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "GPT header size 4294967295", "header size 2^32-1");
    unit_put_le32(h + G_HSIZE, 512);
    gpt_seal(b, n);
    expect_hit(&in, "gpt", true, "header size 512");
    /* its own LBA */
    RESET();
    put_le64(h + G_MY, 2);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "GPT header says it is at LBA 2, not 1", "MyLBA 2");
    /* entry size */
    RESET();
    unit_put_le32(h + G_ESIZE, 100);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "entry size 100", "entry size 100");
    unit_put_le32(h + G_ESIZE, 384);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "entry size 384", "entry size 384");
    unit_put_le32(h + G_ESIZE, 0);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "entry size 0", "entry size 0");
    /* the entry array inside the disk, with no overflow */
    RESET();
    put_le64(h + G_ELBA, nsec);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "entry array (LBA 2048, 4 entries of 128 bytes) is not inside the disk",
                  "array at the end");
    put_le64(h + G_ELBA, nsec - 1);
    unit_put_le32(h + G_NENT, 8);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "is not inside the disk", "array crossing the end");
    put_le64(h + G_ELBA, UINT64_MAX);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "is not inside the disk", "array LBA 2^64-1");
    put_le64(h + G_ELBA, (UINT64_MAX >> 9) + 1);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "is not inside the disk", "array LBA * 512 = 2^64");
    put_le64(h + G_ELBA, 1);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "is not inside the disk", "array over the header");
    RESET();
    unit_put_le32(h + G_NENT, 0xffffffff);
    unit_put_le32(h + G_ESIZE, 0x80000000);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "4294967295 entries of 2147483648 bytes", "array of 2^63 bytes");
    /* an array beyond the head: unsafe unless the engine read it as an
     * extra region, and then its CRC and entries are checked */
    {
        const size_t n2 = 4u << 20, mid = (n2 / 512) / 2;
        uint8_t *c = calloc(n2, 1);
        struct sif_probe_input cin = input_of(c, n2);
        struct sif_probe_content g;

        assert_non_null(c);
        b_gpt(c, n2);
        memcpy(c + mid * 512, c + 1024, 4 * 128);   /* the four entries */
        memset(c + 1024, 0, 4 * 128);
        put_le64(c + GPT + G_ELBA, mid);
        gpt_seal_at(c, 0, c + GPT);
        expect_unsafe(&cin, "gpt", "array at LBA 4096 was not inspected", "array beyond the head, not read");
        expect_hit(gather_of(&g, c, n2), "gpt", true, "array in the middle of a 4 MiB disk, read");
        assert_int_equal(g.in.n_extra, 1);
        assert_int_equal(g.in.extra[0].off, mid * 512);
        sif_probe_content_free(&g);
        c[mid * 512 + 40] ^= 1;                     /* an entry changed: CRC */
        expect_unsafe(gather_of(&g, c, n2), "gpt", "partition entry array CRC32", "array read, bad CRC");
        sif_probe_content_free(&g);
        free(c);
    }
    /* backup header and usable LBAs inside the disk */
    RESET();
    put_le64(h + G_ALT, nsec);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "GPT backup header LBA 2048 is not inside the disk", "backup past the end");
    put_le64(h + G_ALT, 1);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "backup header LBA 1", "backup on the primary");
    RESET();
    put_le64(h + G_LAST, nsec);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "usable LBAs 3..2048 are not inside the disk", "last usable past the end");
    put_le64(h + G_LAST, 2);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "usable LBAs 3..2", "first > last");
    /* the entry array's CRC, and partitions inside the usable LBAs */
    RESET();
    b[1024 + 100] ^= 1;
    expect_unsafe(&in, "gpt", "GPT partition entry array CRC32", "array byte flipped");
    RESET();
    put_le64(b + 1024 + 40, nsec - 2);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "GPT partition 1 (LBA 3..2046) is not within the usable LBAs 3..2045", "partition end");
    RESET();
    put_le64(b + 1024 + 32, 2);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "GPT partition 1 (LBA 2..2045)", "partition start");
    RESET();
    put_le64(b + 1024 + 32, 100);
    put_le64(b + 1024 + 40, 99);
    gpt_seal(b, n);
    expect_unsafe(&in, "gpt", "(LBA 100..99)", "partition ends before it starts");
    /* heads cut short: the header must be all there */
    RESET();
    for (size_t len = 512 + 8; len <= 512 + 91; len += 83) {
        uint8_t *t = exact(b, len);
        struct sif_probe_input tin = { t, len, t, len, n, NULL, 0 };

        expect_unsafe(&tin, "gpt", "GPT header cut short", "cut header");
        free(t);
    }
    free(b);
#undef RESET
}

/* Boot sectors of filesystems have 55 AA too; they are not partition
 * tables (OpenStack's GPT inspector excludes FAT the same way). */
static void test_vbr_is_not_mbr(void **state)
{
    uint8_t *b = calloc(1u << 16, 1);
    struct sif_probe_input in = input_of(b, 1u << 16);

    (void)state;
    assert_non_null(b);
#define VBR(jump0, jump1, jump2, oem)          \
    do {                                       \
        memset(b, 0, 512);                     \
        b[0] = jump0;                          \
        b[1] = jump1;                          \
        b[2] = jump2;                          \
        memcpy(b + 3, oem, 8);                 \
        b[510] = 0x55;                         \
        b[511] = 0xaa;                         \
    } while (0)
    VBR(0xeb, 0x52, 0x90, "NTFS    ");
    expect_raw(&in, "NTFS boot sector");
    VBR(0xeb, 0x76, 0x90, "EXFAT   ");
    expect_raw(&in, "exFAT boot sector");
    /* FAT12 as mkfs.fat writes it */
    VBR(0xeb, 0x3c, 0x90, "mkfs.fat");
    put_le16(b + 11, 512);
    b[13] = 4;
    put_le16(b + 14, 4);
    b[16] = 2;
    b[21] = 0xf8;
    memcpy(b + 54, "FAT12   ", 8);
    expect_raw(&in, "FAT12 boot sector");
    /* ... with a fake partition table (mkfs.fat --mbr) */
    b[446] = 0x80;
    b[450] = 0x06;
    expect_raw(&in, "FAT boot sector with a table");
    /* one FAT on a removable medium, no type name: the BPB decides */
    b[16] = 1;
    b[21] = 0xf0;
    memset(b + 54, 0, 8);
    expect_raw(&in, "FAT with one FAT, medium 0xF0");
    /* E9 jump */
    b[0] = 0xe9;
    expect_raw(&in, "FAT with an E9 jump");
    /* without a jump it is a partition table (the fake one above) */
    b[0] = 0xfa;
    b[2] = 0x00;
    expect_hit(&in, "mbr", true, "no jump");
    /* a jump but no BPB (GRUB's boot.img starts EB 63 90) */
    memset(b, 0, 446);
    b[0] = 0xeb;
    b[1] = 0x63;
    b[2] = 0x90;
    expect_hit(&in, "mbr", true, "GRUB-like jump, zero BPB");
    /* OpenStack's own test: two FATs on a fixed disk after a jump */
    memset(b, 0, 446);
    b[0] = 0xeb;
    b[1] = 0x3c;
    b[2] = 0x90;
    b[16] = 2;
    b[21] = 0xf8;
    expect_raw(&in, "2 FATs, medium 0xF8");
    b[21] = 0xf7;
    expect_hit(&in, "mbr", true, "medium 0xF7, no plausible BPB");
#undef VBR
    free(b);
}

static void test_iso_udf_rules(void **state)
{
    uint8_t *b = calloc(BIG, 1);
    struct sif_probe_input in = input_of(b, BIG);
    struct sif_probe_hit h;

    (void)state;
    assert_non_null(b);
    b_iso(b, BIG);
    h = hit_of(&in, "iso");
    assert_int_equal(h.where, ISO_VD + 1);
    assert_string_equal(h.detail, "volume \"SIF_TEST\", 1024 blocks of 2048 bytes");
    /* the descriptor type must be a known one */
    for (int type = 0; type < 256; type++) {
        b[ISO_VD] = (uint8_t)type;
        if (type <= 3 || type == 255)
            expect_hit(&in, "iso", true, "known descriptor type");
        else
            expect_raw(&in, "unknown descriptor type");
    }
    b[ISO_VD] = 1;
    /* one byte off, or in the next sector */
    memmove(b + ISO_VD + 1, b + ISO_VD, 2048);
    b[ISO_VD] = 0;
    expect_raw(&in, "CD001 at 32770");
    memset(b + ISO_VD, 0, 4096);
    b[ISO_VD + 2048] = 1;
    memcpy(b + ISO_VD + 2049, "CD001", 5);
    expect_raw(&in, "CD001 in sector 17 only");
    memset(b + ISO_VD, 0, 4096);
    /* cut short: type and identifier needed */
    b_iso(b, BIG);
    {
        uint8_t *t = exact(b, ISO_VD + 5);
        struct sif_probe_input tin = input_of(t, ISO_VD + 5);

        expect_raw(&tin, "ISO cut in the identifier");
        free(t);
        t = exact(b, ISO_VD + 7);
        tin = input_of(t, ISO_VD + 7);
        expect_hit(&tin, "iso", true, "ISO of 32775 bytes");
        expect_detail(&tin, "iso", "volume descriptor type 1", "ISO of 32775 bytes");
        free(t);
    }
    memset(b + ISO_VD, 0, 4096);

    /* UDF: NSR02 or NSR03 in a recognition sequence from 32768 */
    b_udf(b, BIG);
    h = hit_of(&in, "udf");
    assert_int_equal(h.where, ISO_VD + 2048 + 1);
    assert_string_equal(h.detail, "NSR03 descriptor at 34816 (2048-byte sectors)");
    memcpy(b + ISO_VD + 2049, "NSR02", 5);
    expect_hit(&in, "udf", true, "NSR02");
    memcpy(b + ISO_VD + 2049, "NSR04", 5);
    expect_raw(&in, "NSR04");
    memcpy(b + ISO_VD + 2049, "NSR03", 5);
    /* the sequence broken before the NSR descriptor */
    memcpy(b + ISO_VD + 1, "XEA01", 5);
    expect_raw(&in, "sequence without a valid first descriptor");
    memcpy(b + ISO_VD + 1, "BEA01", 5);
    memmove(b + ISO_VD + 2049, b + ISO_VD + 2048, 4096);
    b[ISO_VD + 2048] = 0;
    expect_raw(&in, "NSR03 one byte off");
    memset(b + ISO_VD, 0, 8192);
    /* 4096-byte blocks: one descriptor per block */
    memcpy(b + ISO_VD + 1, "BEA01", 5);
    memcpy(b + ISO_VD + 4096 + 1, "NSR03", 5);
    memcpy(b + ISO_VD + 8192 + 1, "TEA01", 5);
    h = hit_of(&in, "udf");
    assert_string_equal(h.detail, "NSR03 descriptor at 36864 (4096-byte sectors)");
    memset(b + ISO_VD, 0, 12288);
    /* ISO 9660 with UDF (genisoimage -udf): both, accepted */
    b_iso(b, BIG);
    memcpy(b + ISO_VD + 4096 + 1, "BEA01", 5);
    memcpy(b + ISO_VD + 6144 + 1, "NSR02", 5);
    memcpy(b + ISO_VD + 8192 + 1, "TEA01", 5);
    {
        const char *found[4];
        struct sif_verdict v;

        assert_int_equal(sif_probe_run(&in, found, 4, NULL, 0), 2);
        assert_string_equal(found[0], "iso");
        assert_string_equal(found[1], "udf");
        sif_verdict_init(&v);
        assert_int_equal(sif_probe_inner(&in, NULL, &v), 0);
        assert_string_equal(v.inner, "raw");
    }
    free(b);
}

/* The engine's hybrid rule on the new layouts: ISO (and UDF) on one safe
 * MBR or GPT is raw; an unsafe table or an image is not. */
static void test_hybrids(void **state)
{
    uint8_t *b = calloc(BIG, 1);
    struct sif_probe_input in = input_of(b, BIG);
    struct sif_verdict v;
    const char *found[4];

    (void)state;
    assert_non_null(b);
    b_iso(b, BIG);
    b_mbr(b, BIG);
    assert_int_equal(sif_probe_run(&in, found, 4, NULL, 0), 2);
    assert_string_equal(found[0], "mbr");
    assert_string_equal(found[1], "iso");
    sif_verdict_init(&v);
    assert_int_equal(sif_probe_inner(&in, NULL, &v), 0);
    assert_string_equal(v.inner, "raw");
    assert_int_equal(v.n_inner, 2);
    /* with UDF as well */
    memcpy(b + ISO_VD + 4096 + 1, "BEA01", 5);
    memcpy(b + ISO_VD + 6144 + 1, "NSR03", 5);
    sif_verdict_init(&v);
    assert_int_equal(sif_probe_inner(&in, NULL, &v), 0);
    assert_int_equal(v.n_inner, 3);
    /* an unsafe MBR on an ISO */
    mbr_entry(b, 2)[P_BOOT] = 0x01;
    sif_verdict_init(&v);
    assert_int_equal(sif_probe_inner(&in, NULL, &v), -EPERM);
    assert_string_equal(v.check, "inner.mbr");
    assert_non_null(strstr(v.reason, "boot flag 0x01"));
    /* GPT on an ISO */
    memset(b, 0, 1u << 15);
    memset(b + BIG - 4096, 0, 4096);
    b_gpt(b, BIG);
    sif_verdict_init(&v);
    assert_int_equal(sif_probe_inner(&in, NULL, &v), 0);
    assert_int_equal(v.n_inner, 3);
    assert_string_equal(v.inner_hits[0].format, "gpt");
    /* and a qcow2 header on top of it all */
    memcpy(b, "QFI\xfb\0\0\0\3", 8);
    sif_verdict_init(&v);
    assert_int_equal(sif_probe_inner(&in, NULL, &v), -EPERM);
    assert_string_equal(v.check, "inner.multiple");
    /* an MBR alone with a VHD footer: a layout does not excuse an image */
    memset(b, 0, BIG);
    b_mbr(b, BIG);
    b_vhd_footer(b, BIG);
    sif_verdict_init(&v);
    assert_int_equal(sif_probe_inner(&in, NULL, &v), -EPERM);
    assert_string_equal(v.check, "inner.multiple");
    free(b);
}

static void test_zeros_are_raw(void **state)
{
    static const size_t sizes[] = { BIG, SIF_PROBE_REGION, 4096, 512, 1 };
    uint8_t *b = calloc(BIG, 1);
    struct sif_probe_input in;

    (void)state;
    assert_non_null(b);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        in = input_of(b, sizes[i]);
        expect_raw(&in, "zeros");
    }
    /* empty content */
    in.head = b;
    in.head_len = 0;
    in.tail = b;
    in.tail_len = 0;
    in.size = 0;
    expect_raw(&in, "empty");
    free(b);
}

static void test_random_is_raw(void **state)
{
    uint8_t *b = malloc(BIG);

    (void)state;
    assert_non_null(b);
    for (uint64_t seed = 1; seed <= 8; seed++) {
        struct sif_probe_input in;

        unit_fill_prng(b, BIG, seed);
        in = input_of(b, BIG);
        expect_raw(&in, "random");
    }
    free(b);
}

/* An MBR-partitioned raw disk is raw content: the MBR is found, its checks
 * pass, and a GPT signature at LBA 1 without a protective MBR is no GPT. */
static void test_mbr_is_raw(void **state)
{
    uint8_t *b = calloc(BIG, 1);
    struct sif_probe_input in;

    (void)state;
    assert_non_null(b);
    unit_fill_prng(b, 440, 99);
    b[0] = 0xfa;
    b[446] = 0x80;
    b[450] = 0x83;
    b[510] = 0x55;
    b[511] = 0xaa;
    memcpy(b + 512, "EFI PART", 8);
    in = input_of(b, BIG);
    expect_hit(&in, "mbr", true, "MBR disk with EFI PART at LBA 1");
    expect_detail(&in, "mbr", "1 partition, types 0x83 (active)", "MBR disk");
    free(b);
}

static void test_multiple(void **state)
{
    uint8_t *b = calloc(BIG, 1);
    const char *found[1] = { NULL };
    char detail[128];
    struct sif_probe_input in;
    struct sif_verdict v;

    (void)state;
    assert_non_null(b);
    /* qcow2 header and a VHD footer */
    b_qcow2(b, BIG);
    b_vhd_footer(b, BIG);
    in = input_of(b, BIG);
    sif_verdict_init(&v);
    assert_int_equal(sif_probe_inner(&in, NULL, &v), -EPERM);
    assert_int_equal(v.state, SIF_REJECTED);
    assert_string_equal(v.check, "inner.multiple");
    assert_string_equal(v.inner, "multiple");
    /* the count is the number of matches even when found[] is smaller */
    assert_int_equal(sif_probe_run(&in, found, 1, detail, sizeof(detail)), 2);
    assert_string_equal(found[0], "qcow2");

    /* VHD header at 0 and the VDI signature at 0x40, with a dmg trailer */
    memset(b, 0, BIG);
    b_vhd(b, BIG);
    unit_put_le32(b + 0x40, 0xbeda107f);
    b_dmg(b, BIG);
    in = input_of(b, BIG);
    sif_verdict_init(&v);
    assert_int_equal(sif_probe_inner(&in, NULL, &v), -EPERM);
    assert_string_equal(v.check, "inner.multiple");
    assert_int_equal(sif_probe_run(&in, NULL, 0, detail, sizeof(detail)), 3);
    free(b);
}

/* Signatures one place off are not matches. */
static void test_wrong_offset(void **state)
{
    uint8_t *b = calloc(BIG, 1);
    struct sif_probe_input in = input_of(b, BIG);

    (void)state;
    assert_non_null(b);
#define AT(off, bytes, len, what)              \
    do {                                       \
        memset(b, 0, BIG);                     \
        memcpy(b + (off), bytes, len);         \
        expect_raw(&in, what);                 \
    } while (0)
    AT(1, "QFI\xfb\0\0\0\3", 8, "qcow2 magic at 1");
    AT(512, "QFI\xfb\0\0\0\3", 8, "qcow2 magic at 512");
    AT(1, "QED\0", 4, "QED magic at 1");
    AT(4, "KDMV\1\0\0\0", 8, "KDMV at 4");
    AT(0x3c, "\x7f\x10\xda\xbe", 4, "VDI signature at 0x3c");
    AT(0x44, "\x7f\x10\xda\xbe", 4, "VDI signature at 0x44");
    AT(512, "conectix", 8, "VHD cookie at 512");
    AT(BIG - 1024, "conectix", 8, "VHD cookie one sector before the end");
    AT(BIG - 510, "conectix", 8, "VHD cookie 510 bytes before the end");
    AT(BIG - 513, "conectix", 8, "VHD cookie 513 bytes before the end");
    AT(8, "vhdxfile", 8, "VHDX at 8");
    AT(1, "WithoutFreeSpace\2\0\0\0", 20, "parallels at 1");
    AT(512, "Bochs Virtual HD Image", 23, "bochs at 512");
    AT(512, "LUKS\xba\xbe\0\1", 8, "LUKS at 512");
    AT(1, cloop_magic, strlen(cloop_magic), "cloop at 1");
    AT(BIG - 1024, "koly\0\0\0\4", 8, "koly one sector before the end");
#undef AT
    /* the right place but the wrong version */
    memset(b, 0, BIG);
    memcpy(b + BIG - 512, "koly\0\0\0\3", 8);
    expect_raw(&in, "koly version 3");
    memset(b, 0, BIG);
    memcpy(b, "WithoutFreeSpace\3\0\0\0", 20);
    expect_raw(&in, "parallels version 3");
    memset(b, 0, BIG);
    memcpy(b, "QFI\xfb\0\0\0\0", 8);
    expect_raw(&in, "qcow version 0");
    /* the VDI signature stored big-endian */
    memset(b, 0, BIG);
    memcpy(b + 0x40, "\xbe\xda\x10\x7f", 4);
    expect_raw(&in, "VDI signature in the wrong byte order");
    /* a VHD footer in the middle of a large disk is outside the tail */
    memset(b, 0, BIG);
    memcpy(b + SIF_PROBE_REGION - 512, "conectix", 8);
    expect_raw(&in, "VHD cookie at the end of the head region");
    free(b);
}

/* A head shorter than the signature never matches, even when what is
 * there is a prefix of it. */
static void test_truncated_head(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSAMPLES; i++) {
        uint8_t *b;
        size_t sig;

        /* the footer formats have no head signature */
        if (!samples[i].head_signature)
            continue;
        b = build(&samples[i], BIG);
        /* the shortest head that still matches ... */
        for (sig = 1; sig <= 256; sig++) {
            struct sif_probe_input in = input_of(b, BIG);

            in.head_len = sig;
            if (sif_probe_run(&in, NULL, 0, NULL, 0) == 1)
                break;
        }
        assert_true(sig <= 256);
        /* ... and one byte less, as a whole (tiny) content */
        {
            uint8_t *t = malloc(sig - 1 ? sig - 1 : 1);
            struct sif_probe_input in;

            assert_non_null(t);
            memcpy(t, b, sig - 1);
            in = input_of(t, sig - 1);
            print_message("%s: %zu-byte signature, %zu bytes given\n", samples[i].name, sig, sig - 1);
            expect_raw(&in, samples[i].name);
            free(t);
        }
        free(b);
    }
}

/* The minimum lengths the probes need, fixed by their formats. */
static void test_truncated_exact(void **state)
{
    static const struct {
        const char *bytes;
        size_t len;
    } cut[] = {
        { "QFI\xfb", 3 },
        { "QFI\xfb\0\0\0\3", 7 },
        { "QED\0", 3 },
        { "KDMV", 3 },
        { "conectix", 7 },
        { "vhdxfile", 7 },
        { "WithoutFreeSpace\2\0\0\0", 16 },
        { "WithoutFreeSpace\2\0\0\0", 19 },
        { "Bochs Virtual HD Image", 22 },
        { "LUKS\xba\xbe\0\1", 7 },
    };
    uint8_t b[128];

    (void)state;
    for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
        struct sif_probe_input in;

        memset(b, 0, sizeof(b));
        memcpy(b, cut[i].bytes, cut[i].len);
        in = input_of(b, cut[i].len);
        expect_raw(&in, cut[i].bytes);
    }
    /* VDI: the signature ends at 0x44 */
    memset(b, 0, sizeof(b));
    unit_put_le32(b + 0x40, 0xbeda107f);
    {
        struct sif_probe_input in = input_of(b, 0x43);

        expect_raw(&in, "VDI cut at 0x43");
        in = input_of(b, 0x44);
        expect_format(&in, "vdi", "VDI of exactly 0x44 bytes");
    }
    /* a dmg or VHD trailer needs a whole last sector */
    {
        uint8_t t[511];
        struct sif_probe_input in;

        memset(t, 0, sizeof(t));
        memcpy(t, "koly\0\0\0\4", 8);
        in = input_of(t, sizeof(t));
        expect_raw(&in, "koly in a 511-byte content");
    }
    /* ... and a content of exactly one sector is enough */
    {
        uint8_t t[512];
        struct sif_probe_input in;

        memset(t, 0, sizeof(t));
        b_dmg(t, sizeof(t));
        in = input_of(t, sizeof(t));
        expect_format(&in, "dmg", "koly in a 512-byte content");
        memset(t, 0, sizeof(t));
        b_vhd_footer(t, sizeof(t));
        in = input_of(t, sizeof(t));
        expect_format(&in, "vhd", "VHD footer as the whole content");
    }
}

/* VMDK text descriptors: qemu looks at the first line that is not a
 * comment; it must be version=1, 2 or 3. */
static void test_vmdk_text(void **state)
{
    static const char *const yes[] = {
        "# Disk DescriptorFile\nversion=1\n",
        "version=2\n",
        "version=3",
        "# a\n# b\n   \nversion=1\r\nCID=1\n",
        "\n\n# Disk DescriptorFile\n\nversion=1\n",
        "  # indented comment\n\tversion=2 \n",
    };
    static const char *const no[] = {
        "# Disk DescriptorFile\nCID=fffffffe\nversion=1\n",
        "# Disk DescriptorFile\nversion=4\n",
        "# Disk DescriptorFile\nversion=0\n",
        "# Disk DescriptorFile\nversion=1x\n",
        "# Disk DescriptorFile\nversion=\n",
        "# Disk DescriptorFile\nversio=1\n",
        "# Disk DescriptorFile\nVERSION=1\n",
        "# Disk DescriptorFile\n",
        "# Disk DescriptorFile",
        "x\nversion=1\n",
    };
    uint8_t *b = calloc(BIG, 1);

    (void)state;
    assert_non_null(b);
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        struct sif_probe_input in;

        memset(b, 0, 4096);
        memcpy(b, yes[i], strlen(yes[i]));
        in = input_of(b, strlen(yes[i]));   /* the descriptor alone */
        expect_format(&in, "vmdk", yes[i]);
        in = input_of(b, BIG);              /* followed by zeros */
        if (strchr(yes[i], '\n') && yes[i][strlen(yes[i]) - 1] == '\n')
            expect_format(&in, "vmdk", yes[i]);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        struct sif_probe_input in;

        memset(b, 0, 4096);
        memcpy(b, no[i], strlen(no[i]));
        in = input_of(b, strlen(no[i]));
        expect_raw(&in, no[i]);
        in = input_of(b, BIG);
        expect_raw(&in, no[i]);
    }
    free(b);
}

/* ------------------------------------------------------------- real tools */

/* In-memory samples of the formats qemu-img cannot create, written to a
 * file so that `qemu-img info` can be asked about them too. */
static void make_file(const char *dir, const char *name, const uint8_t *data, size_t len)
{
    char path[PATH_MAX];

    unit_path(path, sizeof(path), dir, name);
    unit_write_file(path, data, len, 0644);
}

/* A bochs growing redolog qemu opens: 8 extents of 4 KiB, none allocated. */
static void make_bochs(const char *dir)
{
    uint8_t b[1024];

    memset(b, 0, sizeof(b));
    memcpy(b, "Bochs Virtual HD Image", 23);
    memcpy(b + 32, "Redolog", 8);
    memcpy(b + 48, "Growing", 8);
    unit_put_le32(b + 64, 0x00020000);     /* version */
    unit_put_le32(b + 68, 512);            /* header size */
    unit_put_le32(b + 72, 8);              /* catalog entries */
    unit_put_le32(b + 76, 512);            /* bitmap size */
    unit_put_le32(b + 80, 4096);           /* extent size */
    put_le64(b + 88, 8 * 4096);            /* disk size */
    memset(b + 512, 0xff, 32);             /* catalog: unallocated */
    make_file(dir, "b.bochs", b, sizeof(b));
}

/* A cloop V2.0 image with one (empty) block. */
static void make_cloop(const char *dir)
{
    uint8_t b[184];

    memset(b, 0, sizeof(b));
    memcpy(b, cloop_magic, strlen(cloop_magic));
    unit_put_be32(b + 128, 65536);         /* block size */
    unit_put_be32(b + 132, 1);             /* blocks */
    unit_put_be64(b + 136, 152);           /* offsets[0], offsets[1] */
    unit_put_be64(b + 144, 168);
    make_file(dir, "c.cloop", b, sizeof(b));
}

static void make_dmg(const char *dir)
{
    uint8_t *b = calloc(8192, 1);

    assert_non_null(b);
    b_dmg(b, 8192);
    make_file(dir, "d.dmg", b, 8192);
    free(b);
}

struct tool_case {
    const char *name;
    const char *tools;          /* programs (or absolute paths of files) it needs: its test group */
    const char *cmd;            /* run by sh in the temporary directory ... */
    void (*make)(const char *dir);   /* ... or this, to make `file` */
    const char *file;
    const char *hits;           /* the formats found, in table order ("" = none) */
    const char *check;          /* the verdict's check id; NULL = accepted as raw */
    const char *detail[2];      /* in the first hit's detail */
    const char *absent;         /* not in it */
    const char *qemu;           /* `qemu-img info` format ("a|b": either); NULL = not asked */
};

#define ISO_TREE "mkdir -p d && echo hello > d/a.txt && "
#define SECRET "--object secret,id=s0,data=pw "

static const struct tool_case tool_cases[] = {
    /* ---- qemu-img: every format it creates, probed as qemu probes it */
    { "qcow2 v3", "qemu-img", "qemu-img create -q -f qcow2 a.qcow2 4M", NULL, "a.qcow2", "qcow2", "inner.qcow2",
      { "version 3", NULL }, "file", "qcow2" },
    { "qcow2 v2 (compat=0.10)", "qemu-img", "qemu-img create -q -f qcow2 -o compat=0.10 a2.qcow2 4M", NULL,
      "a2.qcow2", "qcow2", "inner.qcow2", { "version 2", NULL }, "file", "qcow2" },
    { "qcow2 with a backing file", "qemu-img",
      "qemu-img create -q -f raw base.raw 1M && qemu-img create -q -f qcow2 -b base.raw -F raw b.qcow2", NULL,
      "b.qcow2", "qcow2", "inner.qcow2", { "version 3, with a backing file \"base.raw\"", NULL }, "data file",
      "qcow2" },
    { "qcow2 with a data file", "qemu-img", "qemu-img create -q -f qcow2 -o data_file=d.data d.qcow2 4M", NULL,
      "d.qcow2", "qcow2", "inner.qcow2", { "version 3, with an external data file \"d.data\"", NULL }, "backing",
      "qcow2" },
    { "qcow2 with a raw data file", "qemu-img",
      "qemu-img create -q -f qcow2 -o data_file=r.data,data_file_raw=on r.qcow2 4M", NULL, "r.qcow2", "qcow2",
      "inner.qcow2", { "with an external data file \"r.data\"", NULL }, NULL, "qcow2" },
    { "qcow2 LUKS-encrypted", "qemu-img",
      "qemu-img create -q -f qcow2 " SECRET "-o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 "
      "e.qcow2 4M",
      NULL, "e.qcow2", "qcow2", "inner.qcow2", { "version 3, encrypted (LUKS)", NULL }, "file", "qcow2" },
    { "qcow", "qemu-img", "qemu-img create -q -f qcow a.qcow 4M", NULL, "a.qcow", "qcow", "inner.qcow",
      { "version 1", NULL }, "backing", "qcow" },
    { "qcow with a backing file", "qemu-img",
      "qemu-img create -q -f raw base.raw 1M && qemu-img create -q -f qcow -b base.raw -F raw b.qcow", NULL,
      "b.qcow", "qcow", "inner.qcow", { "version 1, with a backing file \"base.raw\"", NULL }, NULL, "qcow" },
    { "qed", "qemu-img", "qemu-img create -q -f qed a.qed 4M", NULL, "a.qed", "qed", "inner.qed", { NULL, NULL },
      "backing", "qed" },
    { "qed with a backing file", "qemu-img",
      "qemu-img create -q -f raw base.raw 1M && qemu-img create -q -f qed -b base.raw -F raw b.qed", NULL, "b.qed",
      "qed", "inner.qed", { "with a backing file \"base.raw\"", NULL }, NULL, "qed" },
    { "vmdk monolithicSparse", "qemu-img", "qemu-img create -q -f vmdk -o subformat=monolithicSparse s.vmdk 4M",
      NULL, "s.vmdk", "vmdk", "inner.vmdk",
      { "sparse extent version 1, descriptor at 512 (10240 bytes); createType monolithicSparse, 1 extent: "
        "RW 8192 SPARSE \"s.vmdk\"",
        NULL },
      "refuses", "vmdk" },
    { "vmdk monolithicFlat descriptor", "qemu-img",
      "qemu-img create -q -f vmdk -o subformat=monolithicFlat f.vmdk 4M", NULL, "f.vmdk", "vmdk", "inner.vmdk",
      { "text descriptor; OpenStack refuses it: unsupported createType; createType monolithicFlat, 1 extent: "
        "RW 8192 FLAT \"f-flat.vmdk\" 0",
        NULL },
      "host path", "vmdk" },
    { "vmdk monolithicFlat extent", "qemu-img", "qemu-img create -q -f vmdk -o subformat=monolithicFlat f.vmdk 4M",
      NULL, "f-flat.vmdk", "", NULL, { NULL, NULL }, NULL, "raw" },
    { "vmdk streamOptimized", "qemu-img", "qemu-img create -q -f vmdk -o subformat=streamOptimized o.vmdk 4M", NULL,
      "o.vmdk", "vmdk", "inner.vmdk",
      { "descriptor at 512 (10240 bytes); createType streamOptimized, 1 extent: RW 8192 SPARSE \"o.vmdk\"", NULL },
      "refuses", "vmdk" },
    { "vmdk twoGbMaxExtentSparse descriptor", "qemu-img",
      "qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse t.vmdk 4M", NULL, "t.vmdk", "vmdk",
      "inner.vmdk",
      { "text descriptor; OpenStack refuses it: unsupported createType; createType twoGbMaxExtentSparse, "
        "1 extent: RW 8192 SPARSE \"t-s001.vmdk\"",
        NULL },
      NULL, "vmdk" },
    /* qemu refuses to open an extent of a split image alone */
    { "vmdk twoGbMaxExtentSparse extent", "qemu-img",
      "qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse t.vmdk 4M", NULL, "t-s001.vmdk", "vmdk",
      "inner.vmdk",
      { "sparse extent version 1, descriptor at 512 (10240 bytes); OpenStack refuses it: no extent; "
        "createType (none), 0 extents",
        NULL },
      NULL, NULL },
    /* CVE-2022-47951: a descriptor whose extent is a host file */
    { "vmdk extent naming a host path", "qemu-img",
      "qemu-img create -q -f vmdk -o subformat=monolithicFlat h.vmdk 1M && "
      "sed -i 's|\"h-flat.vmdk\"|\"/etc/hostname\"|' h.vmdk",
      NULL, "h.vmdk", "vmdk", "inner.vmdk",
      { "extent names a host path; text descriptor", "RW 2048 FLAT \"/etc/hostname\" 0" }, NULL, NULL },
    { "vdi", "qemu-img", "qemu-img create -q -f vdi a.vdi 4M", NULL, "a.vdi", "vdi", "inner.vdi",
      { "version 1.1, dynamic", NULL }, NULL, "vdi" },
    { "vdi static", "qemu-img", "qemu-img create -q -f vdi -o static=on s.vdi 1M", NULL, "s.vdi", "vdi",
      "inner.vdi", { "version 1.1, fixed", NULL }, NULL, "vdi" },
    { "vpc dynamic", "qemu-img", "qemu-img create -q -f vpc -o subformat=dynamic a.vhd 4M", NULL, "a.vhd", "vhd",
      "inner.vhd", { "dynamic disk", NULL }, "footer", "vpc" },
    /* qemu probes only the footer copy at 0 that dynamic disks have: a
     * fixed VHD is raw to it (and a VHD to Hyper-V, VirtualBox, blkid) */
    { "vpc fixed", "qemu-img", "qemu-img create -q -f vpc -o subformat=fixed f.vhd 4M", NULL, "f.vhd", "vhd",
      "inner.vhd", { "fixed disk, footer in the last 512 bytes", NULL }, NULL, "raw" },
    { "vhdx", "qemu-img", "qemu-img create -q -f vhdx a.vhdx 4M", NULL, "a.vhdx", "vhdx", "inner.vhdx",
      { "creator \"QEMU", NULL }, NULL, "vhdx" },
    { "parallels", "qemu-img", "qemu-img create -q -f parallels a.hdd 4M", NULL, "a.hdd", "parallels",
      "inner.parallels", { "version 2, extended format", NULL }, NULL, "parallels" },
    { "luks (qemu-img)", "qemu-img", "qemu-img create -q -f luks " SECRET "-o key-secret=s0,iter-time=10 a.luks 4M",
      NULL, "a.luks", "luks", "inner.luks", { "LUKS1, cipher aes-xts-plain64", NULL }, NULL, "luks" },
    { "raw", "qemu-img", "qemu-img create -q -f raw a.raw 4M", NULL, "a.raw", "", NULL, { NULL, NULL }, NULL, "raw" },
    /* built here, checked against qemu's probe and open */
    { "bochs", "qemu-img", NULL, make_bochs, "b.bochs", "bochs", "inner.bochs",
      { "type \"Redolog\", subtype \"Growing\", version 0x20000", NULL }, NULL, "bochs" },
    { "cloop", "qemu-img", NULL, make_cloop, "c.cloop", "cloop", "inner.cloop", { "compressed loop image V2.0", NULL },
      NULL, "cloop" },
    /* qemu takes a file for dmg by its name only, and opens only a whole
     * UDIF image: not asked */
    { "dmg", "", NULL, make_dmg, "d.dmg", "dmg", "inner.dmg", { "UDIF trailer in the last sector", NULL }, NULL,
      NULL },

    /* ---- partition tables */
    { "GPT (sgdisk)", "sgdisk", "truncate -s 8M g.img && sgdisk -n 1:2048:+2M -t 1:8300 -n 2:0:0 -t 2:ef00 g.img",
      NULL, "g.img", "gpt", NULL, { "2 partitions in 128 entries", NULL }, NULL, "raw" },
    { "GPT, header CRC broken", "sgdisk",
      "truncate -s 8M g.img && sgdisk -n 1:2048:+2M g.img && printf '\\001' | dd of=g.img bs=1 seek=532 conv=notrunc",
      NULL, "g.img", "gpt", "inner.gpt", { "GPT header CRC32 is 0x", NULL }, NULL, "raw" },
    { "GPT, entry array CRC broken", "sgdisk",
      "truncate -s 8M g.img && sgdisk -n 1:2048:+2M g.img && printf '\\001' | dd of=g.img bs=1 seek=17280 "
      "conv=notrunc",
      NULL, "g.img", "gpt", "inner.gpt", { "GPT partition entry array CRC32 is 0x", NULL }, NULL, "raw" },
    { "GPT, disk shrunk", "sgdisk", "truncate -s 8M g.img && sgdisk -n 1:2048:+2M g.img && truncate -s 4M g.img",
      NULL, "g.img", "gpt", "inner.gpt", { "GPT backup header LBA 16383 is not inside the disk", NULL }, NULL, "raw" },
    { "GPT, disk grown", "sgdisk", "truncate -s 8M g.img && sgdisk -n 1:2048:+2M g.img && truncate -s 16M g.img",
      NULL, "g.img", "gpt", NULL, { "1 partition in 128 entries", NULL }, NULL, "raw" },
    { "hybrid MBR (sgdisk -h)", "sgdisk", "truncate -s 8M y.img && sgdisk -n 1:2048:+2M -t 1:0700 -h 1 y.img", NULL,
      "y.img", "mbr", "inner.mbr",
      { "protective MBR: the 0xEE entry must be alone in slot 1 (found in slot 1, 2 slots in use)", NULL }, NULL,
      "raw" },
    { "MBR (sfdisk)", "sfdisk",
      "truncate -s 8M m.img && printf 'start=2048, size=4096, type=83, bootable\\nstart=6144, type=82\\n' | "
      "sfdisk -q m.img",
      NULL, "m.img", "mbr", NULL, { "2 partitions, types 0x83 (active) 0x82", NULL }, NULL, "raw" },
    { "MBR, boot flag 0x01", "sfdisk",
      "truncate -s 8M m.img && printf 'start=2048, type=83\\n' | sfdisk -q m.img && "
      "printf '\\001' | dd of=m.img bs=1 seek=446 conv=notrunc",
      NULL, "m.img", "mbr", "inner.mbr", { "MBR partition 1 has boot flag 0x01 (not 0x00 or 0x80)", NULL }, NULL,
      "raw" },
    { "empty DOS label (sfdisk)", "sfdisk", "truncate -s 8M e.img && printf 'label: dos\\n' | sfdisk -q e.img", NULL,
      "e.img", "mbr", "inner.mbr", { "MBR defines no partition", NULL }, NULL, "raw" },
    { "GPT (sfdisk)", "sfdisk", "truncate -s 8M s.img && printf 'label: gpt\\nsize=2M\\n' | sfdisk -q s.img", NULL,
      "s.img", "gpt", NULL, { "1 partition in 128 entries", NULL }, NULL, "raw" },

    /* ---- filesystems with a boot sector: not partition tables */
    { "FAT12 (mkfs.vfat)", "mkfs.vfat", "truncate -s 8M f.img && mkfs.vfat f.img", NULL, "f.img", "", NULL,
      { NULL, NULL }, NULL, "raw" },
    { "FAT16 (mkfs.vfat)", "mkfs.vfat", "truncate -s 32M f.img && mkfs.vfat -F 16 f.img", NULL, "f.img", "", NULL,
      { NULL, NULL }, NULL, "raw" },
    { "FAT32 (mkfs.vfat)", "mkfs.vfat", "truncate -s 64M f.img && mkfs.vfat -F 32 f.img", NULL, "f.img", "", NULL,
      { NULL, NULL }, NULL, "raw" },
    { "FAT with a fake MBR (mkfs.vfat --mbr)", "mkfs.vfat", "truncate -s 64M f.img && mkfs.vfat --mbr=y f.img", NULL,
      "f.img", "", NULL, { NULL, NULL }, NULL, "raw" },
    { "exFAT", "mkfs.exfat", "truncate -s 16M x.img && mkfs.exfat x.img", NULL, "x.img", "", NULL, { NULL, NULL },
      NULL, "raw" },
    { "NTFS", "mkntfs", "truncate -s 16M n.img && mkntfs -q -F -f n.img", NULL, "n.img", "", NULL, { NULL, NULL },
      NULL, "raw" },

    /* ---- discs and hybrids */
    { "ISO 9660", "genisoimage", ISO_TREE "genisoimage -quiet -V SIF_TEST -o i.iso d", NULL, "i.iso", "iso", NULL,
      { "volume \"SIF_TEST\", ", " blocks of 2048 bytes" }, NULL, "raw" },
    { "ISO 9660 with UDF", "genisoimage", ISO_TREE "genisoimage -quiet -udf -o u.iso d", NULL, "u.iso", "iso,udf",
      NULL, { "volume \"CDROM\"", NULL }, NULL, "raw" },
    { "ISO with an MBR (sfdisk)", "genisoimage sfdisk",
      ISO_TREE "genisoimage -quiet -o h.iso d && "
               "printf 'start=64, type=17, bootable\\n' | sfdisk -q --no-reread --wipe never h.iso",
      NULL, "h.iso", "mbr,iso", NULL, { "1 partition, types 0x17 (active)", NULL }, NULL, "raw" },
    { "ISO with a GPT (sgdisk)", "genisoimage sgdisk",
      ISO_TREE "genisoimage -quiet -o g.iso d && truncate -s +1M g.iso && sgdisk -a 1 -n 1:64:0 g.iso", NULL,
      "g.iso", "gpt,iso", NULL, { "1 partition in 128 entries", NULL }, NULL, "raw" },
    { "isohybrid", "genisoimage isohybrid /usr/lib/ISOLINUX/isolinux.bin",
      "mkdir -p b && cp /usr/lib/ISOLINUX/isolinux.bin b/ && echo hi > b/a.txt && "
      "genisoimage -quiet -o y.iso -b isolinux.bin -c boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table b && "
      "isohybrid y.iso",
      NULL, "y.iso", "mbr,iso", NULL, { "1 partition, types 0x17 (active)", NULL }, NULL, "raw" },
    { "UDF (mkudffs)", "mkudffs", "truncate -s 16M u.img && mkudffs u.img", NULL, "u.img", "udf", NULL,
      { "NSR03 descriptor at 34816 (2048-byte sectors)", NULL }, NULL, "raw" },
    { "UDF, 4096-byte blocks (mkudffs)", "mkudffs", "truncate -s 16M u4.img && mkudffs -b 4096 u4.img", NULL,
      "u4.img", "udf", NULL, { "NSR03 descriptor at 36864 (4096-byte sectors)", NULL }, NULL, "raw" },

    /* ---- LUKS by cryptsetup: qemu 7.2 probes LUKS1 only */
    { "LUKS2 (cryptsetup)", "cryptsetup",
      "truncate -s 20M l2.img && printf pw > key && cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 "
      "--pbkdf-force-iterations 1000 --key-file key l2.img",
      NULL, "l2.img", "luks", "inner.luks", { "LUKS2, header size 16384", NULL }, NULL, "raw|luks" },
    { "LUKS1 (cryptsetup)", "cryptsetup",
      "truncate -s 4M l1.img && printf pw > key && cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 "
      "--key-file key l1.img",
      NULL, "l1.img", "luks", "inner.luks", { "LUKS1, cipher aes-xts-plain64", NULL }, NULL, "luks" },
};

#define NTOOL_CASES (sizeof(tool_cases) / sizeof(tool_cases[0]))

/* The first and last SIF_PROBE_REGION bytes of a file, read as the caller
 * reads content (buffers of exactly those lengths). */
static struct sif_probe_input read_regions(const char *path, uint8_t **head, uint8_t **tail)
{
    struct sif_probe_input in;
    struct stat st;
    size_t len;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    assert_int_equal(fstat(fd, &st), 0);
    len = (uint64_t)st.st_size < SIF_PROBE_REGION ? (size_t)st.st_size : SIF_PROBE_REGION;
    *head = malloc(len ? len : 1);
    *tail = malloc(len ? len : 1);
    assert_non_null(*head);
    assert_non_null(*tail);
    for (int k = 0; k < 2; k++) {
        uint8_t *buf = k ? *tail : *head;
        off_t base = k ? st.st_size - (off_t)len : 0;

        for (size_t got = 0; got < len;) {
            ssize_t r = pread(fd, buf + got, len - got, base + (off_t)got);

            assert_true(r > 0);
            got += (size_t)r;
        }
    }
    close(fd);
    in.head = *head;
    in.head_len = len;
    in.tail = *tail;
    in.tail_len = len;
    in.size = (uint64_t)st.st_size;
    return in;
}

/* The top-level "format" of `qemu-img info --output=json`. */
static void qemu_info_format(const char *qemu_img, const char *dir, const char *file, char *fmt, size_t cap)
{
    static const char key[] = "\n    \"format\": \"";
    char *out = unit_sh_output("cd '%s' && '%s' info --output=json '%s' 2>/dev/null", dir, qemu_img, file);
    const char *p = strstr(out, key), *q;

    if (!p)
        fail_msg("no format in qemu-img info for %s:\n%s", file, out);
    p += strlen(key);
    q = strchr(p, '"');
    assert_non_null(q);
    assert_true((size_t)(q - p) < cap);
    memcpy(fmt, p, (size_t)(q - p));
    fmt[q - p] = 0;
    free(out);
}

static bool one_of(const char *word, const char *alternatives)
{
    size_t n = strlen(word);

    for (const char *p = alternatives; p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);

        if (len == n && !memcmp(p, word, n))
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

static void run_tool_case(const char *dir, const struct tool_case *c, const char *qemu_img)
{
    struct sif_probe_hit hits[SIF_HITS_MAX];
    struct sif_probe_input in;
    struct sif_verdict v;
    char path[PATH_MAX], found[128] = "", ours[SIF_FMT_LEN];
    uint8_t *head, *tail;
    int n, r;

    if (c->cmd) {
        /* qemu 7.2's PBKDF benchmark fails now and then on a busy machine
         * ("Unable to get accurate CPU usage", fixed in qemu 9.2.1): such a
         * run is tried again in an emptied directory */
        for (int attempt = 1;; attempt++) {
            char log[PATH_MAX], *text;
            size_t len;

            if (!unit_sh("cd '%s' && PATH=\"$PATH:/usr/sbin:/sbin\" && export PATH && (%s) >tool.log 2>&1", dir,
                         c->cmd))
                break;
            unit_path(log, sizeof(log), dir, "tool.log");
            text = (char *)unit_read_file(log, &len);
            if (attempt < 3 && memmem(text, len, "Unable to get accurate CPU usage", 32)) {
                print_message("  %-40s qemu's PBKDF benchmark failed: again\n", c->name);
                free(text);
                assert_int_equal(unit_sh("cd '%s' && find . -mindepth 1 -delete", dir), 0);
                continue;
            }
            fail_msg("%s: `%s` failed:\n%.*s", c->name, c->cmd, (int)len, text);
        }
    } else {
        c->make(dir);
    }
    unit_path(path, sizeof(path), dir, c->file);
    in = read_regions(path, &head, &tail);
    n = sif_probe_scan(&in, hits, SIF_HITS_MAX);
    for (int i = 0; i < n && i < SIF_HITS_MAX; i++)
        unit_fmt(found + strlen(found), sizeof(found) - strlen(found), "%s%s", i ? "," : "", hits[i].probe->format);
    sif_verdict_init(&v);
    r = sif_probe_inner(&in, NULL, &v);
    print_message("  %-40s [%s] %s%s%s\n", c->name, found, r ? v.check : "accepted", n ? ": " : "",
                  n ? hits[0].detail : "");
    if (strcmp(found, c->hits) != 0)
        fail_msg("%s: found [%s], expected [%s]", c->name, found, c->hits);
    if (c->check) {
        if (r != -EPERM || strcmp(v.check, c->check) != 0)
            fail_msg("%s: verdict %d [%s] %s, expected %s", c->name, r, v.check, v.reason, c->check);
    } else if (r != 0 || strcmp(v.inner, "raw") != 0) {
        fail_msg("%s: rejected [%s] %s, expected raw", c->name, v.check, v.reason);
    }
    for (int i = 0; i < 2; i++)
        if (c->detail[i] && (n < 1 || !strstr(hits[0].detail, c->detail[i])))
            fail_msg("%s: detail \"%s\" lacks \"%s\"", c->name, n ? hits[0].detail : "", c->detail[i]);
    if (c->absent && n >= 1 && strstr(hits[0].detail, c->absent))
        fail_msg("%s: detail \"%s\" holds \"%s\"", c->name, hits[0].detail, c->absent);
    /* Agreement: the image format we find is the one qemu finds (its "vpc"
     * is our "vhd"); layouts are raw to qemu.  Where qemu says raw and we
     * found an image, the case lists "raw": a known place where we are
     * stricter than qemu 7.2. */
    unit_fmt(ours, sizeof(ours), "%s", "raw");
    for (int i = 0; i < n && i < SIF_HITS_MAX; i++)
        if (hits[i].probe->cls == SIF_CLASS_IMAGE) {
            unit_fmt(ours, sizeof(ours), "%s", hits[i].probe->format);
            break;
        }
    if (c->qemu && qemu_img) {
        char fmt[64];

        qemu_info_format(qemu_img, dir, c->file, fmt, sizeof(fmt));
        if (!one_of(fmt, c->qemu))
            fail_msg("%s: qemu-img info says %s, expected %s", c->name, fmt, c->qemu);
        if (strcmp(fmt, "raw") != 0 && strcmp(!strcmp(fmt, "vpc") ? "vhd" : fmt, ours) != 0)
            fail_msg("%s: qemu-img says %s, we say %s", c->name, fmt, ours);
        if (strcmp(fmt, "raw") == 0 && strcmp(ours, "raw") != 0)
            print_message("  %-40s qemu-img: raw, here: %s (stricter than qemu)\n", "", ours);
    }
    free(head);
    free(tail);
}

/* Runs the cases of one group, each in a fresh directory under base (the
 * test's temporary directory, removed by its teardown even when a case
 * fails); skips the test when one of the group's tools is missing. */
static void run_tool_group(const char *base, const char *group)
{
    char words[256], tool[PATH_MAX], qemu_img[PATH_MAX];
    bool have_qemu = unit_find_tool("qemu-img", qemu_img, sizeof(qemu_img));
    int ran = 0;

    unit_fmt(words, sizeof(words), "%s", group);
    for (char *save = NULL, *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        bool ok = w[0] == '/' ? access(w, R_OK) == 0 : unit_find_tool(w, tool, sizeof(tool));

        if (!ok) {
            print_message("  %s is not installed: skipped\n", w);
            skip();
        }
    }
    if (!have_qemu)
        print_message("  qemu-img is not installed: agreement with qemu not checked\n");
    for (size_t i = 0; i < NTOOL_CASES; i++) {
        char dir[PATH_MAX];

        if (strcmp(tool_cases[i].tools, group) != 0)
            continue;
        unit_fmt(dir, sizeof(dir), "%s/case%zu", base, i);
        assert_int_equal(mkdir(dir, 0700), 0);
        run_tool_case(dir, &tool_cases[i], have_qemu ? qemu_img : NULL);
        unit_rm_rf(dir);
        ran++;
    }
    assert_true(ran > 0);
}

static const char *const tool_groups[] = {
    "qemu-img", "", "sgdisk", "sfdisk", "mkfs.vfat", "mkfs.exfat", "mkntfs", "genisoimage", "genisoimage sfdisk",
    "genisoimage sgdisk", "genisoimage isohybrid /usr/lib/ISOLINUX/isolinux.bin", "mkudffs", "cryptsetup",
};

#define TOOL_TEST(fn, i)                        \
    static void fn(void **state)                \
    {                                           \
        run_tool_group(*state, tool_groups[i]); \
    }
TOOL_TEST(test_tool_qemu_img, 0)
TOOL_TEST(test_tool_builtin, 1)
TOOL_TEST(test_tool_sgdisk, 2)
TOOL_TEST(test_tool_sfdisk, 3)
TOOL_TEST(test_tool_mkfs_vfat, 4)
TOOL_TEST(test_tool_mkfs_exfat, 5)
TOOL_TEST(test_tool_mkntfs, 6)
TOOL_TEST(test_tool_genisoimage, 7)
TOOL_TEST(test_tool_iso_mbr, 8)
TOOL_TEST(test_tool_iso_gpt, 9)
TOOL_TEST(test_tool_isohybrid, 10)
TOOL_TEST(test_tool_mkudffs, 11)
TOOL_TEST(test_tool_cryptsetup, 12)
#undef TOOL_TEST

/* Every case belongs to a group that some test runs. */
static void test_tool_cases_grouped(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTOOL_CASES; i++) {
        bool grouped = false;

        for (size_t g = 0; g < sizeof(tool_groups) / sizeof(tool_groups[0]); g++)
            grouped |= !strcmp(tool_cases[i].tools, tool_groups[g]);
        if (!grouped)
            fail_msg("tool case \"%s\" needs \"%s\", which no test runs", tool_cases[i].name, tool_cases[i].tools);
    }
}

#define TOOL(f) cmocka_unit_test_setup_teardown(f, unit_tmpdir_setup, unit_tmpdir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_probe_has_a_sample),
        cmocka_unit_test(test_table_names_and_classes),
        cmocka_unit_test(test_samples_big),
        cmocka_unit_test(test_samples_small),
        cmocka_unit_test(test_samples_odd_size),
        cmocka_unit_test(test_qcow2_backing_detail),
        cmocka_unit_test(test_qcow2_extensions),
        cmocka_unit_test(test_qcow_qed_details),
        cmocka_unit_test(test_vmdk_sparse_detail),
        cmocka_unit_test(test_vmdk_descriptor_rules),
        cmocka_unit_test(test_luks_details),
        cmocka_unit_test(test_image_details),
        cmocka_unit_test(test_zeros_are_raw),
        cmocka_unit_test(test_random_is_raw),
        cmocka_unit_test(test_mbr_is_raw),
        cmocka_unit_test(test_multiple),
        cmocka_unit_test(test_wrong_offset),
        cmocka_unit_test(test_truncated_head),
        cmocka_unit_test(test_truncated_exact),
        cmocka_unit_test(test_vmdk_text),
        cmocka_unit_test(test_crc32),
        cmocka_unit_test(test_mbr_rules),
        cmocka_unit_test(test_protective_mbr_rules),
        cmocka_unit_test(test_gpt_rules),
        cmocka_unit_test(test_vbr_is_not_mbr),
        cmocka_unit_test(test_iso_udf_rules),
        cmocka_unit_test(test_hybrids),
        cmocka_unit_test(test_tool_cases_grouped),
        TOOL(test_tool_qemu_img),
        TOOL(test_tool_builtin),
        TOOL(test_tool_sgdisk),
        TOOL(test_tool_sfdisk),
        TOOL(test_tool_mkfs_vfat),
        TOOL(test_tool_mkfs_exfat),
        TOOL(test_tool_mkntfs),
        TOOL(test_tool_genisoimage),
        TOOL(test_tool_iso_mbr),
        TOOL(test_tool_iso_gpt),
        TOOL(test_tool_isohybrid),
        TOOL(test_tool_mkudffs),
        TOOL(test_tool_cryptsetup),
    };

    return cmocka_run_group_tests_name("probe", tests, NULL, NULL);
}
