/* test_probe.c: the inner-format probes on buffers.
 *
 * Every entry of sif_probes[] must have at least one positive sample here
 * (a new probe without one fails test_every_probe_has_a_sample).  Samples
 * are built in content buffers the way the caller sees plaintext: the first
 * and last SIF_PROBE_REGION bytes, and the total size.
 */
#include "config.h"

#include "unit.h"

#include "probe.h"
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
    return in;
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

struct sample {
    const char *format;
    const char *name;
    void (*build)(uint8_t *buf, size_t size);
};

static const struct sample samples[] = {
    { "qcow2", "qcow2 v3 with a backing file", b_qcow2 },
    { "qcow2", "qcow2 v2", b_qcow2_v2 },
    { "qcow", "qcow v1", b_qcow },
    { "qed", "QED", b_qed },
    { "vmdk", "VMDK sparse (KDMV)", b_vmdk },
    { "vmdk", "VMDK COWD", b_vmdk_cowd },
    { "vmdk", "VMDK text descriptor", b_vmdk_text },
    { "vdi", "VDI", b_vdi },
    { "vhd", "VHD header at 0", b_vhd },
    { "vhd", "fixed VHD footer", b_vhd_footer },
    { "vhdx", "VHDX", b_vhdx },
    { "parallels", "parallels", b_parallels },
    { "parallels", "parallels ext", b_parallels_ext },
    { "bochs", "bochs", b_bochs },
    { "luks", "LUKS1", b_luks },
    { "luks", "LUKS2", b_luks2 },
    { "cloop", "cloop", b_cloop },
    { "dmg", "dmg koly trailer", b_dmg },
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

/* Exactly one probe, `format`, matches; sif_probe_inner rejects with
 * inner.FORMAT. */
static void expect_format(const struct sif_probe_input *in, const char *format, const char *what)
{
    const char *found[4] = { NULL, NULL, NULL, NULL };
    char detail[128], check[SIF_CHECK_LEN];
    struct sif_verdict v;
    int n, r;

    n = sif_probe_run(in, found, 4, detail, sizeof(detail));
    if (n != 1 || strcmp(found[0], format) != 0)
        fail_msg("%s: %d matches, first %s; expected only %s", what, n, n ? found[0] : "-", format);
    sif_verdict_init(&v);
    r = sif_probe_inner(in, &v);
    assert_int_equal(r, -EPERM);
    assert_int_equal(v.state, SIF_REJECTED);
    unit_fmt(check, sizeof(check), "inner.%s", format);
    assert_string_equal(v.check, check);
    assert_string_equal(v.inner, format);
    assert_true(v.reason[0] != 0);
}

/* No probe matches: raw, accepted by sif_probe_inner (which sets inner
 * "raw" and records no verdict; the caller accepts as inner.raw). */
static void expect_raw(const struct sif_probe_input *in, const char *what)
{
    const char *found[4] = { NULL, NULL, NULL, NULL };
    char detail[128];
    struct sif_verdict v;
    int n;

    n = sif_probe_run(in, found, 4, detail, sizeof(detail));
    if (n != 0)
        fail_msg("%s: matched %d formats (first %s); expected raw", what, n, found[0]);
    sif_verdict_init(&v);
    assert_int_equal(sif_probe_inner(in, &v), 0);
    assert_string_equal(v.inner, "raw");
    assert_int_equal(v.state, SIF_PENDING);
    assert_string_equal(v.check, "");
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
    assert_true(nprobes >= 12);
}

static void test_samples_big(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSAMPLES; i++) {
        uint8_t *b = build(&samples[i], BIG);
        struct sif_probe_input in = input_of(b, BIG);

        expect_format(&in, samples[i].format, samples[i].name);
        free(b);
    }
}

/* Small contents (head and tail regions are the same bytes). */
static void test_samples_small(void **state)
{
    static const size_t sizes[] = { 1u << 17, 4096 + 512 };

    (void)state;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
        for (size_t i = 0; i < NSAMPLES; i++) {
            uint8_t *b;
            struct sif_probe_input in;

            if (samples[i].build == b_qcow2 && sizes[k] <= 0x10000 + 11)
                continue;
            b = build(&samples[i], sizes[k]);
            in = input_of(b, sizes[k]);
            expect_format(&in, samples[i].format, samples[i].name);
            free(b);
        }
}

static void test_qcow2_backing_detail(void **state)
{
    uint8_t *b = build(&samples[0], BIG);
    struct sif_probe_input in = input_of(b, BIG);
    struct sif_verdict v;

    (void)state;
    sif_verdict_init(&v);
    assert_int_equal(sif_probe_inner(&in, &v), -EPERM);
    assert_string_equal(v.check, "inner.qcow2");
    assert_non_null(strstr(v.reason, "backing file"));
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

/* An MBR-partitioned raw disk is raw. */
static void test_mbr_is_raw(void **state)
{
    uint8_t *b = calloc(BIG, 1);
    struct sif_probe_input in;

    (void)state;
    assert_non_null(b);
    unit_fill_prng(b, 440, 99);
    b[446] = 0x80;
    b[450] = 0x83;
    b[510] = 0x55;
    b[511] = 0xaa;
    memcpy(b + 512, "EFI PART", 8);
    in = input_of(b, BIG);
    expect_raw(&in, "MBR/GPT disk");
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
    assert_int_equal(sif_probe_inner(&in, &v), -EPERM);
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
    assert_int_equal(sif_probe_inner(&in, &v), -EPERM);
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
    AT(BIG - 511, "conectix", 8, "VHD cookie misaligned near the end");
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
        if (samples[i].build == b_vhd_footer || samples[i].build == b_dmg || samples[i].build == b_vmdk_text)
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_probe_has_a_sample),
        cmocka_unit_test(test_samples_big),
        cmocka_unit_test(test_samples_small),
        cmocka_unit_test(test_qcow2_backing_detail),
        cmocka_unit_test(test_zeros_are_raw),
        cmocka_unit_test(test_random_is_raw),
        cmocka_unit_test(test_mbr_is_raw),
        cmocka_unit_test(test_multiple),
        cmocka_unit_test(test_wrong_offset),
        cmocka_unit_test(test_truncated_head),
        cmocka_unit_test(test_truncated_exact),
        cmocka_unit_test(test_vmdk_text),
    };

    return cmocka_run_group_tests_name("probe", tests, NULL, NULL);
}
