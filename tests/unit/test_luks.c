/* test_luks.c: sif_luks_parse() and sif_luks_check() on crafted headers.
 *
 * Valid LUKS1 and LUKS2 headers are built in memory (unit.h) the way
 * cryptsetup 2.6.1 writes them; each refuse condition then changes one
 * thing and asserts the exact check id that rejects it.  Real headers made
 * by cryptsetup luksFormat are parsed too when cryptsetup is installed.
 */
#include "config.h"

#include "unit.h"

#include "luks.h"
#include "policy.h"
#include "verdict.h"

/* An image in memory: the first min(file_size, SIF_LUKS_PARSE_LEN) bytes of
 * a file of file_size bytes, as the caller of sif_luks_parse() reads it. */
struct img {
    uint8_t *buf;
    size_t len;
    uint64_t file_size;
};

static struct img img_new(uint64_t file_size)
{
    struct img im;

    im.file_size = file_size;
    im.len = file_size < SIF_LUKS_PARSE_LEN ? (size_t)file_size : SIF_LUKS_PARSE_LEN;
    im.buf = calloc(im.len ? im.len : 1, 1);
    assert_non_null(im.buf);
    return im;
}

static void img_free(struct img *im)
{
    free(im->buf);
    im->buf = NULL;
}

/* LUKS1: payload at 4096 sectors (2 MiB), plus 1 MiB of data. */
#define L1_FILE_SIZE (3u << 20)

static struct img luks1_img(const struct unit_luks1 *h, uint64_t file_size)
{
    struct img im = img_new(file_size);

    assert_true(im.len >= 592);
    unit_luks1_write(h, im.buf);
    return im;
}

static struct img luks2_img_sized(const char *json, const char *json2, uint64_t hdr_size,
                                  uint64_t file_size)
{
    struct img im = img_new(file_size);

    assert_true(im.len >= 2 * hdr_size);
    unit_luks2_write(im.buf, hdr_size, json, json2);
    return im;
}

static struct img luks2_img(const char *json)
{
    return luks2_img_sized(json, NULL, UNIT_LUKS2_HDR, UNIT_LUKS2_FILE_SIZE);
}

static int parse(const struct img *im, struct sif_luks_info *info, struct sif_verdict *v)
{
    sif_verdict_init(v);
    return sif_luks_parse(im->buf, im->len, im->file_size, info, v);
}

/* The header is valid and the default policy accepts it. */
static void expect_ok(const struct img *im, struct sif_luks_info *info)
{
    struct sif_policy p;
    struct sif_verdict v;
    int r;

    sif_policy_default(&p);
    r = parse(im, info, &v);
    if (r)
        fail_msg("parse failed: [%s] %s", v.check, v.reason);
    assert_int_equal(v.state, SIF_PENDING);
    r = sif_luks_check(info, &p, &v);
    if (r)
        fail_msg("check failed: [%s] %s", v.check, v.reason);
    assert_int_equal(v.state, SIF_PENDING);
}

/* The parser refuses the header with this check id. */
static void expect_parse_reject(const struct img *im, const char *check)
{
    struct sif_luks_info info;
    struct sif_verdict v;
    int r = parse(im, &info, &v);

    assert_int_equal(r, -EINVAL);
    assert_int_equal(v.state, SIF_REJECTED);
    assert_string_equal(v.check, check);
    assert_true(v.reason[0] != 0);
}

/* As expect_parse_reject(), and the reason mentions `why` (for the
 * luks.header cases, where one check id covers many causes). */
static void expect_parse_reject_why(const struct img *im, const char *check, const char *why)
{
    struct sif_luks_info info;
    struct sif_verdict v;
    int r = parse(im, &info, &v);

    assert_int_equal(r, -EINVAL);
    assert_int_equal(v.state, SIF_REJECTED);
    assert_string_equal(v.check, check);
    if (!strstr(v.reason, why))
        fail_msg("reason \"%s\" does not mention \"%s\"", v.reason, why);
}

/* The parser accepts the header and the default policy refuses it with
 * this check id. */
static void expect_check_reject(const struct img *im, const char *check)
{
    struct sif_luks_info info;
    struct sif_policy p;
    struct sif_verdict v;
    int r = parse(im, &info, &v);

    if (r)
        fail_msg("parse failed: [%s] %s", v.check, v.reason);
    sif_policy_default(&p);
    r = sif_luks_check(&info, &p, &v);
    assert_int_equal(r, -EPERM);
    assert_int_equal(v.state, SIF_REJECTED);
    assert_string_equal(v.check, check);
    assert_true(v.reason[0] != 0);
}

/* ---------------------------------------------------------------- LUKS1 */

static void luks1_expect_parse(const struct unit_luks1 *h, uint64_t file_size, const char *check)
{
    struct img im = luks1_img(h, file_size);

    expect_parse_reject(&im, check);
    img_free(&im);
}

static void luks1_expect_check(const struct unit_luks1 *h, const char *check)
{
    struct img im = luks1_img(h, L1_FILE_SIZE);

    expect_check_reject(&im, check);
    img_free(&im);
}

static void test_luks1_valid(void **state)
{
    struct unit_luks1 h;
    struct sif_luks_info info;
    struct img im;

    (void)state;
    unit_luks1_default(&h);
    h.slots[3].state = UNIT_L1_ACTIVE;
    h.slots[3].iterations = 2000;
    im = luks1_img(&h, L1_FILE_SIZE);
    expect_ok(&im, &info);
    assert_int_equal(info.version, 1);
    assert_string_equal(info.cipher, "aes");
    assert_string_equal(info.mode, "xts-plain64");
    assert_int_equal(info.key_bytes, 64);
    assert_int_equal(info.sector_size, 512);
    assert_int_equal(info.data_offset, 4096 * 512);
    assert_int_equal(info.data_len, L1_FILE_SIZE - 4096 * 512);
    /* slot 3 material: sector 8 + 3 * 504, 500 sectors */
    assert_int_equal(info.meta_len, (8 + 3 * 504) * 512 + 256000);
    assert_int_equal(info.digest_iterations, 1000);
    assert_int_equal(info.nslots, 8);
    for (int i = 0; i < 8; i++) {
        bool on = i == 0 || i == 3;

        assert_int_equal(info.slots[i].active, on);
        if (!on)
            continue;
        assert_true(info.slots[i].bound);
        assert_int_equal(info.slots[i].kdf, SIF_KDF_PBKDF2);
        assert_string_equal(info.slots[i].hash, "sha256");
        assert_int_equal(info.slots[i].iterations, i == 0 ? 1000 : 2000);
        assert_int_equal(info.slots[i].key_bytes, 64);
        assert_int_equal(info.slots[i].area_offset, (8 + (uint64_t)i * 504) * 512);
        assert_int_equal(info.slots[i].area_len, 256000);
    }
    img_free(&im);
}

/* AES-128-XTS (Cinder's usual) and AES-256-CBC-ESSIV are allowed too. */
static void test_luks1_valid_other_ciphers(void **state)
{
    struct unit_luks1 h;
    struct sif_luks_info info;
    struct img im;

    (void)state;
    unit_luks1_default(&h);
    h.key_bytes = 32;
    im = luks1_img(&h, L1_FILE_SIZE);
    expect_ok(&im, &info);
    assert_int_equal(info.key_bytes, 32);
    assert_int_equal(info.slots[0].area_len, 128000);
    assert_int_equal(info.meta_len, 4096 + 128000);
    img_free(&im);

    unit_luks1_default(&h);
    strcpy(h.mode, "cbc-essiv:sha256");
    h.key_bytes = 32;
    im = luks1_img(&h, L1_FILE_SIZE);
    expect_ok(&im, &info);
    assert_string_equal(info.mode, "cbc-essiv:sha256");
    img_free(&im);
}

static void test_luks_bad_magic(void **state)
{
    struct unit_luks1 h;
    struct img im;

    (void)state;
    unit_luks1_default(&h);
    im = luks1_img(&h, L1_FILE_SIZE);
    im.buf[4] = 0xbb;
    expect_parse_reject(&im, "luks.header");
    img_free(&im);

    /* right magic, unknown version */
    im = luks1_img(&h, L1_FILE_SIZE);
    unit_put_be16(im.buf + 6, 3);
    expect_parse_reject(&im, "luks.header");
    img_free(&im);

    /* the LUKS2 secondary magic is not a primary header */
    im = luks2_img(UNIT_LUKS2_JSON);
    memcpy(im.buf, "SKUL\xba\xbe", 6);
    expect_parse_reject(&im, "luks.header");
    img_free(&im);

    /* all zeros */
    im = img_new(L1_FILE_SIZE);
    expect_parse_reject(&im, "luks.header");
    img_free(&im);
}

static void test_luks_truncated(void **state)
{
    struct unit_luks1 h;
    struct img im, big;

    (void)state;
    unit_luks1_default(&h);
    big = luks1_img(&h, L1_FILE_SIZE);
    /* a file of 591 bytes holding the start of a LUKS1 header */
    im = img_new(591);
    memcpy(im.buf, big.buf, 591);
    expect_parse_reject(&im, "luks.header");
    img_free(&im);
    /* shorter than magic + version */
    im = img_new(7);
    memcpy(im.buf, big.buf, 7);
    expect_parse_reject(&im, "luks.header");
    img_free(&im);
    img_free(&big);

    /* LUKS2: the file ends inside the secondary header copy */
    big = luks2_img(UNIT_LUKS2_JSON);
    im = img_new(2 * UNIT_LUKS2_HDR - 1);
    memcpy(im.buf, big.buf, im.len);
    expect_parse_reject(&im, "luks.header");
    img_free(&im);
    /* ... and inside the binary header */
    im = img_new(4000);
    memcpy(im.buf, big.buf, im.len);
    expect_parse_reject(&im, "luks.header");
    img_free(&im);
    img_free(&big);
}

static void test_luks1_key_bytes(void **state)
{
    struct unit_luks1 h;

    (void)state;
    unit_luks1_default(&h);
    h.key_bytes = 0;
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.header");
    h.key_bytes = 65;
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.header");
}

static void test_luks1_strings(void **state)
{
    struct unit_luks1 h;
    struct img im;

    (void)state;
    /* cipher name filling all 32 bytes: not NUL-terminated */
    unit_luks1_default(&h);
    memset(h.cipher, 'a', sizeof(h.cipher));
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.header");
    /* empty mode */
    unit_luks1_default(&h);
    h.mode[0] = 0;
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.header");
    /* control character in the hash spec */
    unit_luks1_default(&h);
    im = luks1_img(&h, L1_FILE_SIZE);
    im.buf[72 + 2] = '\n';
    expect_parse_reject(&im, "luks.header");
    img_free(&im);
}

static void test_luks1_slot_state(void **state)
{
    struct unit_luks1 h;

    (void)state;
    unit_luks1_default(&h);
    h.slots[5].state = 0x00AC71F2;
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.keyslot");
    unit_luks1_default(&h);
    h.slots[0].state = 0;
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.keyslot");
}

static void test_luks1_stripes(void **state)
{
    struct unit_luks1 h;

    (void)state;
    unit_luks1_default(&h);
    h.slots[0].stripes = 1;
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.keyslot");
    h.slots[0].stripes = 4001;
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.keyslot");
}

static void test_luks1_slot_iterations_zero(void **state)
{
    struct unit_luks1 h;

    (void)state;
    unit_luks1_default(&h);
    h.slots[0].iterations = 0;
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.keyslot");
    unit_luks1_default(&h);
    h.digest_iterations = 0;
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.header");
}

static void test_luks1_material_overlaps_header(void **state)
{
    struct unit_luks1 h;

    (void)state;
    unit_luks1_default(&h);
    h.slots[0].offset_sectors = 0;
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.keyslot");
    h.slots[0].offset_sectors = 1;  /* 512 < 592 */
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.keyslot");
}

static void test_luks1_material_overlaps_slot(void **state)
{
    struct unit_luks1 h;

    (void)state;
    unit_luks1_default(&h);
    h.slots[1].state = UNIT_L1_ACTIVE;
    h.slots[1].iterations = 1000;
    h.slots[1].offset_sectors = 8 + 499;  /* last sector of slot 0's material */
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.keyslot");
    /* slot 7 placed on top of slot 0 */
    unit_luks1_default(&h);
    h.slots[7].state = UNIT_L1_ACTIVE;
    h.slots[7].iterations = 1000;
    h.slots[7].offset_sectors = 8;
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.keyslot");
    /* adjacent is fine */
    unit_luks1_default(&h);
    h.slots[1].state = UNIT_L1_ACTIVE;
    h.slots[1].iterations = 1000;
    h.slots[1].offset_sectors = 8 + 500;
    {
        struct img im = luks1_img(&h, L1_FILE_SIZE);
        struct sif_luks_info info;

        expect_ok(&im, &info);
        img_free(&im);
    }
}

static void test_luks1_material_past_payload(void **state)
{
    struct unit_luks1 h;

    (void)state;
    unit_luks1_default(&h);
    h.slots[0].offset_sectors = 4096 - 499;  /* ends one sector into the payload */
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.keyslot");
    unit_luks1_default(&h);
    h.slots[0].offset_sectors = 0xfffffff0u;  /* far away (no wrap-around) */
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.keyslot");
    /* a payload smaller than the active slot's material */
    unit_luks1_default(&h);
    h.payload_sectors = 256;
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.keyslot");
}

static void test_luks1_payload(void **state)
{
    struct unit_luks1 h;

    (void)state;
    unit_luks1_default(&h);
    /* payload (2 MiB) past the end of a 1 MiB file */
    luks1_expect_parse(&h, 1u << 20, "luks.segment");
    /* payload exactly at the end: nothing to serve */
    luks1_expect_parse(&h, 4096 * 512, "luks.segment");
    /* payload offset 0: overlaps the header (no active slot to trip first) */
    h.slots[0].state = UNIT_L1_INACTIVE;
    h.payload_sectors = 0;
    luks1_expect_parse(&h, L1_FILE_SIZE, "luks.segment");
}

/* The data length is whole sectors: a trailing partial sector is not served. */
static void test_luks1_partial_sector(void **state)
{
    struct unit_luks1 h;
    struct sif_luks_info info;
    struct img im;

    (void)state;
    unit_luks1_default(&h);
    im = luks1_img(&h, L1_FILE_SIZE + 100);
    expect_ok(&im, &info);
    assert_int_equal(info.data_len, L1_FILE_SIZE - 4096 * 512);
    img_free(&im);
}

static const struct {
    const char *cipher, *mode;
    uint32_t key_bytes;
} bad_ciphers[] = {
    { "cipher_null", "ecb", 64 },
    { "aes", "ecb", 64 },
    { "aes", "xts-plain", 64 },
    { "capi:xts(aes)", "plain64", 64 },
    { "aes", "xts-plain64", 48 },       /* a 384-bit XTS key */
    { "aes", "xts-plain64", 16 },
    { "aes", "xts-essiv:sha256", 64 },
    { "aes", "cbc-plain64", 32 },
    { "aes", "cbc-essiv:sha256", 64 },
    { "twofish", "xts-plain64", 64 },
    { "aes", "xts-random", 64 },
};

static void test_luks1_cipher(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_ciphers) / sizeof(bad_ciphers[0]); i++) {
        struct unit_luks1 h;

        unit_luks1_default(&h);
        strcpy(h.cipher, bad_ciphers[i].cipher);
        strcpy(h.mode, bad_ciphers[i].mode);
        h.key_bytes = bad_ciphers[i].key_bytes;
        print_message("LUKS1 %s-%s %u bytes\n", h.cipher, h.mode, (unsigned)h.key_bytes);
        luks1_expect_check(&h, "luks.cipher");
    }
}

static void test_luks1_slot_pbkdf(void **state)
{
    struct unit_luks1 h;
    struct sif_luks_info info;
    struct img im;

    (void)state;
    unit_luks1_default(&h);
    h.slots[0].iterations = 2000000000;
    luks1_expect_check(&h, "luks.pbkdf");
    /* an inactive slot's junk cost does not matter ... */
    unit_luks1_default(&h);
    h.slots[2].iterations = 2000000000;
    im = luks1_img(&h, L1_FILE_SIZE);
    expect_ok(&im, &info);
    img_free(&im);
    /* ... but every active slot's does, not only the first */
    unit_luks1_default(&h);
    h.slots[6].state = UNIT_L1_ACTIVE;
    h.slots[6].iterations = 10000001;
    luks1_expect_check(&h, "luks.pbkdf");
    /* exactly the cap is allowed */
    unit_luks1_default(&h);
    h.slots[0].iterations = 10000000;
    im = luks1_img(&h, L1_FILE_SIZE);
    expect_ok(&im, &info);
    img_free(&im);
}

static void test_luks1_digest_pbkdf(void **state)
{
    struct unit_luks1 h;
    struct sif_luks_info info;
    struct img im;

    (void)state;
    unit_luks1_default(&h);
    h.digest_iterations = 10000001;
    im = luks1_img(&h, L1_FILE_SIZE);
    /* the field at byte 164, written by hand to catch an offset mix-up */
    assert_int_equal(im.buf[164], 0x00);
    assert_int_equal(im.buf[165], 0x98);
    assert_int_equal(im.buf[166], 0x96);
    assert_int_equal(im.buf[167], 0x81);
    expect_check_reject(&im, "luks.pbkdf");
    img_free(&im);

    unit_luks1_default(&h);
    h.digest_iterations = 0xffffffffu;
    luks1_expect_check(&h, "luks.pbkdf");

    unit_luks1_default(&h);
    h.digest_iterations = 10000000;
    im = luks1_img(&h, L1_FILE_SIZE);
    expect_ok(&im, &info);
    assert_int_equal(info.digest_iterations, 10000000);
    img_free(&im);
}

/* ---------------------------------------------------------------- LUKS2 */

/* Builds the template with one substitution and expects a parser rejection. */
static void luks2_mut_parse(const char *from, const char *to, const char *check)
{
    char *json = unit_replace(UNIT_LUKS2_JSON, from, to);
    struct img im = luks2_img(json);

    print_message("LUKS2 %s -> %s\n", from, to);
    expect_parse_reject(&im, check);
    img_free(&im);
    free(json);
}

/* ... or a policy rejection. */
static void luks2_mut_check(const char *from, const char *to, const char *check)
{
    char *json = unit_replace(UNIT_LUKS2_JSON, from, to);
    struct img im = luks2_img(json);

    print_message("LUKS2 %s -> %s\n", from, to);
    expect_check_reject(&im, check);
    img_free(&im);
    free(json);
}

/* ... or acceptance (controls showing a neighbouring value is fine). */
static void luks2_mut_ok(const char *from, const char *to, struct sif_luks_info *info)
{
    char *json = unit_replace(UNIT_LUKS2_JSON, from, to);
    struct img im = luks2_img(json);

    expect_ok(&im, info);
    img_free(&im);
    free(json);
}

static void test_luks2_valid(void **state)
{
    struct sif_luks_info info;
    struct img im = luks2_img(UNIT_LUKS2_JSON);

    (void)state;
    expect_ok(&im, &info);
    assert_int_equal(info.version, 2);
    assert_string_equal(info.cipher, "aes");
    assert_string_equal(info.mode, "xts-plain64");
    assert_int_equal(info.key_bytes, 64);
    assert_int_equal(info.sector_size, 4096);
    assert_int_equal(info.data_offset, 16777216);
    assert_int_equal(info.data_len, UNIT_LUKS2_FILE_SIZE - 16777216);
    assert_int_equal(info.meta_len, 2 * 16384 + 16744448);
    assert_int_equal(info.digest_iterations, 1000);
    assert_int_equal(info.nslots, 1);
    assert_true(info.slots[0].active);
    assert_true(info.slots[0].bound);
    assert_int_equal(info.slots[0].kdf, SIF_KDF_PBKDF2);
    assert_string_equal(info.slots[0].hash, "sha256");
    assert_int_equal(info.slots[0].iterations, 1000);
    assert_int_equal(info.slots[0].key_bytes, 64);
    assert_int_equal(info.slots[0].area_offset, 32768);
    assert_int_equal(info.slots[0].area_len, 258048);
    img_free(&im);
}

/* A fixed-size segment, 512-byte sectors, two bound key slots, a larger
 * header (64 KiB) and an empty mandatory requirements list. */
static void test_luks2_valid_variants(void **state)
{
    struct sif_luks_info info;
    char *a, *b, *c, *json;
    struct img im;

    (void)state;
    luks2_mut_ok("\"size\":\"dynamic\"", "\"size\":\"524288\"", &info);
    assert_int_equal(info.data_len, 524288);

    luks2_mut_ok("\"sector_size\":4096", "\"sector_size\":512", &info);
    assert_int_equal(info.sector_size, 512);
    assert_int_equal(info.data_len, 1u << 20);

    luks2_mut_ok("\"keyslots_size\":\"16744448\"}",
                 "\"keyslots_size\":\"16744448\",\"requirements\":{\"mandatory\":[]}}", &info);

    a = unit_replace(UNIT_LUKS2_JSON, "\"keyslots\":{\"0\":",
                     "\"keyslots\":{\"1\":{\"type\":\"luks2\",\"key_size\":64,"
                     "\"af\":{\"type\":\"luks1\",\"stripes\":4000,\"hash\":\"sha256\"},"
                     "\"area\":{\"type\":\"raw\",\"offset\":\"290816\",\"size\":\"258048\","
                     "\"encryption\":\"aes-xts-plain64\",\"key_size\":64},"
                     "\"kdf\":{\"type\":\"argon2id\",\"time\":4,\"memory\":1048576,\"cpus\":4,"
                     "\"salt\":\"" UNIT_LUKS2_SALT "\"}},\"0\":");
    b = unit_replace(a, "\"keyslots\":[\"0\"]", "\"keyslots\":[\"0\",\"1\"]");
    im = luks2_img(b);
    expect_ok(&im, &info);
    assert_int_equal(info.nslots, 2);
    assert_true(info.slots[1].active && info.slots[1].bound);
    assert_int_equal(info.slots[1].kdf, SIF_KDF_ARGON2ID);
    assert_int_equal(info.slots[1].iterations, 4);
    assert_int_equal(info.slots[1].memory_kib, 1048576);
    assert_int_equal(info.slots[1].parallel, 4);
    assert_int_equal(info.slots[1].area_offset, 290816);
    img_free(&im);
    free(a);
    free(b);

    /* hdr_size 64 KiB: json_size 61440, key slots from 128 KiB */
    a = unit_replace(UNIT_LUKS2_JSON, "\"json_size\":\"12288\"", "\"json_size\":\"61440\"");
    b = unit_replace(a, "\"offset\":\"32768\"", "\"offset\":\"131072\"");
    c = unit_replace(b, "\"keyslots_size\":\"16744448\"", "\"keyslots_size\":\"16646144\"");
    json = c;
    im = luks2_img_sized(json, NULL, 65536, UNIT_LUKS2_FILE_SIZE);
    expect_ok(&im, &info);
    assert_int_equal(info.meta_len, 16777216);
    assert_int_equal(info.slots[0].area_offset, 131072);
    img_free(&im);
    free(a);
    free(b);
    free(c);
}

static void test_luks2_checksum(void **state)
{
    struct img im;

    (void)state;
    /* primary checksum field */
    im = luks2_img(UNIT_LUKS2_JSON);
    im.buf[448 + 5] ^= 1;
    expect_parse_reject_why(&im, "luks.header", "checksum mismatch");
    img_free(&im);
    /* a JSON byte of the primary without fixing the checksum ("1000" -> "1001") */
    im = luks2_img(UNIT_LUKS2_JSON);
    {
        char *p = strstr((char *)im.buf + 4096, "\"iterations\":1000");

        assert_non_null(p);
        p[16] = '1';
    }
    expect_parse_reject_why(&im, "luks.header", "checksum mismatch");
    img_free(&im);
    /* a binary header byte covered by the checksum (the label) */
    im = luks2_img(UNIT_LUKS2_JSON);
    im.buf[24] = 'x';
    expect_parse_reject_why(&im, "luks.header", "checksum mismatch");
    img_free(&im);
    /* the secondary copy's checksum */
    im = luks2_img(UNIT_LUKS2_JSON);
    im.buf[UNIT_LUKS2_HDR + 448] ^= 0x80;
    expect_parse_reject_why(&im, "luks.header", "checksum mismatch");
    img_free(&im);
    /* unsupported checksum algorithm (checksum recomputed as sha256 anyway) */
    im = luks2_img(UNIT_LUKS2_JSON);
    memcpy(im.buf + 72, "sha1\0\0", 6);
    unit_luks2_csum(im.buf, UNIT_LUKS2_HDR);
    expect_parse_reject_why(&im, "luks.header", "checksum algorithm");
    img_free(&im);
}

static void test_luks2_hdr_size(void **state)
{
    char *json;
    struct img im;

    (void)state;
    /* 20 KiB: not a power of two (both copies written consistently) */
    json = unit_replace(UNIT_LUKS2_JSON, "\"json_size\":\"12288\"", "\"json_size\":\"16384\"");
    im = luks2_img_sized(json, NULL, 20480, UNIT_LUKS2_FILE_SIZE);
    expect_parse_reject_why(&im, "luks.header", "power of two");
    img_free(&im);
    free(json);
    /* 8 KiB: below the minimum */
    im = luks2_img_sized("{}", NULL, 8192, UNIT_LUKS2_FILE_SIZE);
    expect_parse_reject_why(&im, "luks.header", "power of two");
    img_free(&im);
    /* 8 MiB: above the maximum */
    im = luks2_img(UNIT_LUKS2_JSON);
    unit_put_be64(im.buf + 8, 8u << 20);
    unit_luks2_csum(im.buf, UNIT_LUKS2_HDR);
    expect_parse_reject_why(&im, "luks.header", "power of two");
    img_free(&im);
    /* json_size disagreeing with hdr_size */
    luks2_mut_parse("\"json_size\":\"12288\"", "\"json_size\":\"8192\"", "luks.header");
    /* the secondary records a different hdr_size */
    im = luks2_img(UNIT_LUKS2_JSON);
    unit_put_be64(im.buf + UNIT_LUKS2_HDR + 8, 32768);
    unit_luks2_csum(im.buf + UNIT_LUKS2_HDR, UNIT_LUKS2_HDR);
    expect_parse_reject_why(&im, "luks.header", "size differs");
    img_free(&im);
    /* the secondary records the wrong hdr_offset */
    im = luks2_img(UNIT_LUKS2_JSON);
    unit_put_be64(im.buf + UNIT_LUKS2_HDR + 256, 0);
    unit_luks2_csum(im.buf + UNIT_LUKS2_HDR, UNIT_LUKS2_HDR);
    expect_parse_reject_why(&im, "luks.header", "records offset");
    img_free(&im);
}

static void test_luks2_secondary_differs(void **state)
{
    char *json2;
    struct img im;

    (void)state;
    /* same meaning, different bytes, both checksums valid */
    json2 = unit_replace(UNIT_LUKS2_JSON, "\"tokens\":{}", "\"tokens\": {}");
    im = luks2_img_sized(UNIT_LUKS2_JSON, json2, UNIT_LUKS2_HDR, UNIT_LUKS2_FILE_SIZE);
    expect_parse_reject_why(&im, "luks.header", "differ");
    img_free(&im);
    free(json2);
    /* different meaning: the secondary allows a costlier digest */
    json2 = unit_replace(UNIT_LUKS2_JSON, "\"iterations\":1000,\"salt\":\"" UNIT_LUKS2_SALT "\",\"digest\"",
                         "\"iterations\":1001,\"salt\":\"" UNIT_LUKS2_SALT "\",\"digest\"");
    im = luks2_img_sized(UNIT_LUKS2_JSON, json2, UNIT_LUKS2_HDR, UNIT_LUKS2_FILE_SIZE);
    expect_parse_reject_why(&im, "luks.header", "differ");
    img_free(&im);
    free(json2);
    /* different sequence ids */
    im = luks2_img(UNIT_LUKS2_JSON);
    unit_put_be64(im.buf + UNIT_LUKS2_HDR + 16, 4);
    unit_luks2_csum(im.buf + UNIT_LUKS2_HDR, UNIT_LUKS2_HDR);
    expect_parse_reject_why(&im, "luks.header", "differ");
    img_free(&im);
    /* the secondary copy missing entirely (zeros) */
    im = luks2_img(UNIT_LUKS2_JSON);
    memset(im.buf + UNIT_LUKS2_HDR, 0, UNIT_LUKS2_HDR);
    expect_parse_reject_why(&im, "luks.header", "secondary header has a bad magic");
    img_free(&im);
}

static void test_luks2_json_syntax(void **state)
{
    struct img im;
    char *json;

    (void)state;
    /* not terminated: the JSON area is full, no NUL anywhere */
    im = luks2_img(UNIT_LUKS2_JSON);
    for (size_t i = 4096 + strlen(UNIT_LUKS2_JSON); i < UNIT_LUKS2_HDR; i++)
        im.buf[i] = ' ';
    memcpy(im.buf + UNIT_LUKS2_HDR + 4096, im.buf + 4096, UNIT_LUKS2_HDR - 4096);
    unit_luks2_csum(im.buf, UNIT_LUKS2_HDR);
    unit_luks2_csum(im.buf + UNIT_LUKS2_HDR, UNIT_LUKS2_HDR);
    expect_parse_reject_why(&im, "luks.header", "not terminated");
    img_free(&im);
    /* truncated document */
    im = luks2_img("{\"keyslots\":{\"0\":{\"type\":\"luks2\"");
    expect_parse_reject_why(&im, "luks.header", "not a valid JSON");
    img_free(&im);
    /* trailing garbage after a valid document */
    im = luks2_img(UNIT_LUKS2_JSON "x");
    expect_parse_reject_why(&im, "luks.header", "not a valid JSON");
    img_free(&im);
    /* a document that is not an object */
    im = luks2_img("[1,2,3]");
    expect_parse_reject_why(&im, "luks.header", "not a valid JSON");
    img_free(&im);
    /* nested far deeper than a LUKS2 document */
    json = unit_replace(UNIT_LUKS2_JSON, "\"tokens\":{}",
                        "\"tokens\":{\"0\":{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]}}");
    im = luks2_img(json);
    expect_parse_reject_why(&im, "luks.header", "not a valid JSON");
    img_free(&im);
    free(json);
    /* a missing section */
    luks2_mut_parse("\"tokens\":{},", "", "luks.header");
    luks2_mut_parse(",\"config\":{\"json_size\":\"12288\",\"keyslots_size\":\"16744448\"}", "", "luks.header");
}

static void test_luks2_segments(void **state)
{
    (void)state;
    luks2_mut_parse("\"segments\":{",
                    "\"segments\":{\"1\":{\"type\":\"crypt\",\"offset\":\"16777216\",\"size\":\"dynamic\","
                    "\"iv_tweak\":\"0\",\"encryption\":\"aes-xts-plain64\",\"sector_size\":4096},",
                    "luks.segment");
    luks2_mut_parse("\"segments\":{\"0\":", "\"segments\":{\"1\":", "luks.segment");
    luks2_mut_parse("\"type\":\"crypt\"", "\"type\":\"linear\"", "luks.segment");
    luks2_mut_parse("\"sector_size\":4096}",
                    "\"sector_size\":4096,\"integrity\":{\"type\":\"hmac(sha256)\","
                    "\"journal_encryption\":\"none\",\"journal_integrity\":\"none\"}}",
                    "luks.segment");
    luks2_mut_parse("\"iv_tweak\":\"0\"", "\"iv_tweak\":\"1\"", "luks.segment");
    luks2_mut_parse("\"iv_tweak\":\"0\",", "", "luks.segment");
    luks2_mut_parse("\"sector_size\":4096", "\"sector_size\":8192", "luks.segment");
    luks2_mut_parse("\"sector_size\":4096", "\"sector_size\":256", "luks.segment");
    luks2_mut_parse("\"sector_size\":4096", "\"sector_size\":3072", "luks.segment");
    luks2_mut_parse("\"iv_tweak\":\"0\",", "\"iv_tweak\":\"0\",\"flags\":[\"backup-previous\"],", "luks.segment");
    luks2_mut_parse("\"iv_tweak\":\"0\",", "\"iv_tweak\":\"0\",\"flags\":\"x\",", "luks.segment");
}

static void test_luks2_segment_bounds(void **state)
{
    (void)state;
    /* data offset inside the metadata (keyslots area ends at 16 MiB) */
    luks2_mut_parse("\"offset\":\"16777216\"", "\"offset\":\"8388608\"", "luks.segment");
    luks2_mut_parse("\"offset\":\"16777216\"", "\"offset\":\"0\"", "luks.segment");
    /* misaligned data offset */
    luks2_mut_parse("\"offset\":\"16777216\"", "\"offset\":\"16777728\"", "luks.segment");
    /* data offset past the end of the file */
    luks2_mut_parse("\"offset\":\"16777216\"", "\"offset\":\"33554432\"", "luks.segment");
    /* a fixed size running past the end of the file */
    luks2_mut_parse("\"size\":\"dynamic\"", "\"size\":\"2097152\"", "luks.segment");
    /* size not a multiple of the sector size, or zero, or not a number */
    luks2_mut_parse("\"size\":\"dynamic\"", "\"size\":\"1536\"", "luks.segment");
    luks2_mut_parse("\"size\":\"dynamic\"", "\"size\":\"0\"", "luks.segment");
    luks2_mut_parse("\"size\":\"dynamic\"", "\"size\":\"-4096\"", "luks.segment");
    luks2_mut_parse("\"offset\":\"16777216\"", "\"offset\":16777216", "luks.segment");
    luks2_mut_parse("\"offset\":\"16777216\"", "\"offset\":\"016777216\"", "luks.segment");
    luks2_mut_parse("\"offset\":\"16777216\"", "\"offset\":\"99999999999999999999999\"", "luks.segment");
}

static void test_luks2_requirements(void **state)
{
    (void)state;
    luks2_mut_parse("\"keyslots_size\":\"16744448\"}",
                    "\"keyslots_size\":\"16744448\",\"requirements\":{\"mandatory\":[\"online-reencrypt-v2\"]}}",
                    "luks.requirements");
    luks2_mut_parse("\"keyslots_size\":\"16744448\"}",
                    "\"keyslots_size\":\"16744448\",\"requirements\":{\"mandatory\":[\"opal\"]}}",
                    "luks.requirements");
    luks2_mut_parse("\"keyslots_size\":\"16744448\"}",
                    "\"keyslots_size\":\"16744448\",\"requirements\":{\"mandatory\":\"x\"}}",
                    "luks.requirements");
}

/* A second key slot (id 1) with the given area offset, bound to the data. */
static char *luks2_two_slots(const char *offset1)
{
    char slot1[1024], *a, *b;

    unit_fmt(slot1, sizeof(slot1),
             "\"keyslots\":{\"1\":{\"type\":\"luks2\",\"key_size\":64,"
             "\"af\":{\"type\":\"luks1\",\"stripes\":4000,\"hash\":\"sha256\"},"
             "\"area\":{\"type\":\"raw\",\"offset\":\"%s\",\"size\":\"258048\","
             "\"encryption\":\"aes-xts-plain64\",\"key_size\":64}," UNIT_LUKS2_KDF_PBKDF2
             "\"salt\":\"" UNIT_LUKS2_SALT "\"}},\"0\":",
             offset1);
    a = unit_replace(UNIT_LUKS2_JSON, "\"keyslots\":{\"0\":", slot1);
    b = unit_replace(a, "\"keyslots\":[\"0\"]", "\"keyslots\":[\"0\",\"1\"]");
    free(a);
    return b;
}

static void test_luks2_keyslot_area(void **state)
{
    struct sif_luks_info info;
    struct img im;
    char *json;

    (void)state;
    /* inside the secondary header copy */
    luks2_mut_parse("\"offset\":\"32768\"", "\"offset\":\"16384\"", "luks.keyslot");
    luks2_mut_parse("\"offset\":\"32768\"", "\"offset\":\"0\"", "luks.keyslot");
    /* past the end of the key slots area (16 MiB) */
    luks2_mut_parse("\"offset\":\"32768\"", "\"offset\":\"16777216\"", "luks.keyslot");
    luks2_mut_parse("\"offset\":\"32768\"", "\"offset\":\"16715776\"", "luks.keyslot");
    luks2_mut_parse("\"offset\":\"32768\"", "\"offset\":\"18446744073709547520\"", "luks.keyslot");
    /* area too small for 64 x 4000 bytes of key material */
    luks2_mut_parse("\"size\":\"258048\"", "\"size\":\"4096\"", "luks.keyslot");
    /* area type, af type, stripes */
    luks2_mut_parse("\"type\":\"raw\"", "\"type\":\"datashift\"", "luks.keyslot");
    luks2_mut_parse("\"af\":{\"type\":\"luks1\",\"stripes\":4000", "\"af\":{\"type\":\"luks1\",\"stripes\":1",
                    "luks.keyslot");
    /* key slot id out of range, key slot type */
    luks2_mut_parse("\"keyslots\":{\"0\":", "\"keyslots\":{\"32\":", "luks.keyslot");
    luks2_mut_parse("\"type\":\"luks2\"", "\"type\":\"reencrypt\"", "luks.keyslot");

    /* overlapping key slot areas */
    json = luks2_two_slots("40960");
    im = luks2_img(json);
    expect_parse_reject(&im, "luks.keyslot");
    img_free(&im);
    free(json);
    json = luks2_two_slots("32768");
    im = luks2_img(json);
    expect_parse_reject(&im, "luks.keyslot");
    img_free(&im);
    free(json);
    /* adjacent: fine */
    json = luks2_two_slots("290816");
    im = luks2_img(json);
    expect_ok(&im, &info);
    assert_int_equal(info.nslots, 2);
    img_free(&im);
    free(json);
}

static void test_luks2_digests(void **state)
{
    (void)state;
    /* no digest for segment 0 */
    {
        char *json = unit_replace(UNIT_LUKS2_JSON, "\"segments\":[\"0\"]", "\"segments\":[]");
        struct img im = luks2_img(json);

        expect_parse_reject_why(&im, "luks.keyslot", "no digest for the data segment");
        img_free(&im);
        free(json);
    }
    luks2_mut_parse("\"segments\":[\"0\"]", "\"segments\":[\"1\"]", "luks.keyslot");
    /* the data digest binds no key slot */
    luks2_mut_parse("\"keyslots\":[\"0\"]", "\"keyslots\":[]", "luks.keyslot");
    /* the digest names a key slot that does not exist */
    luks2_mut_parse("\"keyslots\":[\"0\"]", "\"keyslots\":[\"0\",\"7\"]", "luks.keyslot");
    /* digest of another type */
    luks2_mut_parse("\"digests\":{\"0\":{\"type\":\"pbkdf2\"", "\"digests\":{\"0\":{\"type\":\"argon2id\"",
                    "luks.pbkdf");
}

static void test_luks2_cipher(void **state)
{
    static const char *const bad[] = {
        "cipher_null-ecb", "aes-ecb", "aes-xts-plain", "capi:xts(aes)-plain64", "aes-xts-random",
        "aes-cbc-plain64", "serpent-xts-plain64", "aes-xts-plain64-extra",
    };
    char to[128];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unit_fmt(to, sizeof(to), "\"encryption\":\"%s\",\"sector_size\"", bad[i]);
        luks2_mut_check("\"encryption\":\"aes-xts-plain64\",\"sector_size\"", to, "luks.cipher");
    }
    /* not CIPHER-MODE at all */
    luks2_mut_parse("\"encryption\":\"aes-xts-plain64\",\"sector_size\"", "\"encryption\":\"aes\",\"sector_size\"",
                    "luks.cipher");
    /* a 384-bit XTS key */
    luks2_mut_check("\"key_size\":64,\"af\"", "\"key_size\":48,\"af\"", "luks.cipher");
}

static void test_luks2_pbkdf2_slot(void **state)
{
    (void)state;
    luks2_mut_check(UNIT_LUKS2_KDF_PBKDF2,
                    "\"kdf\":{\"type\":\"pbkdf2\",\"hash\":\"sha256\",\"iterations\":2000000000,",
                    "luks.pbkdf");
    luks2_mut_check(UNIT_LUKS2_KDF_PBKDF2,
                    "\"kdf\":{\"type\":\"pbkdf2\",\"hash\":\"sha256\",\"iterations\":10000001,",
                    "luks.pbkdf");
    /* an unbound key slot (no digest names it) is never used to unlock,
     * but its cost is still checked */
    {
        char *a = luks2_two_slots("290816");
        char *b = unit_replace(a, "\"keyslots\":[\"0\",\"1\"]", "\"keyslots\":[\"0\"]");
        char *c = unit_replace(b, "\"offset\":\"290816\",\"size\":\"258048\",\"encryption\":\"aes-xts-plain64\","
                                  "\"key_size\":64}," UNIT_LUKS2_KDF_PBKDF2,
                               "\"offset\":\"290816\",\"size\":\"258048\",\"encryption\":\"aes-xts-plain64\","
                               "\"key_size\":64},\"kdf\":{\"type\":\"pbkdf2\",\"hash\":\"sha256\",\"iterations\":2000000000,");
        struct img im = luks2_img(c);
        struct sif_luks_info info;
        struct sif_verdict v;

        assert_int_equal(parse(&im, &info, &v), 0);
        assert_true(info.slots[1].active);
        assert_false(info.slots[1].bound);
        expect_check_reject(&im, "luks.pbkdf");
        img_free(&im);
        free(a);
        free(b);
        free(c);
    }
    /* beyond 32 bits: malformed */
    luks2_mut_parse(UNIT_LUKS2_KDF_PBKDF2,
                    "\"kdf\":{\"type\":\"pbkdf2\",\"hash\":\"sha256\",\"iterations\":4294967296,",
                    "luks.keyslot");
    /* unknown kdf */
    luks2_mut_parse(UNIT_LUKS2_KDF_PBKDF2, "\"kdf\":{\"type\":\"scrypt\",\"hash\":\"sha256\",\"iterations\":1000,",
                    "luks.pbkdf");
}

static void test_luks2_argon2(void **state)
{
    struct sif_luks_info info;

    (void)state;
    /* memory above the cap (1 GiB) */
    luks2_mut_check(UNIT_LUKS2_KDF_PBKDF2, "\"kdf\":{\"type\":\"argon2id\",\"time\":4,\"memory\":1048577,\"cpus\":4,",
                    "luks.pbkdf");
    luks2_mut_check(UNIT_LUKS2_KDF_PBKDF2,
                    "\"kdf\":{\"type\":\"argon2i\",\"time\":4,\"memory\":4194304,\"cpus\":4,", "luks.pbkdf");
    /* time above the cap (1000) */
    luks2_mut_check(UNIT_LUKS2_KDF_PBKDF2, "\"kdf\":{\"type\":\"argon2id\",\"time\":1001,\"memory\":1024,\"cpus\":1,",
                    "luks.pbkdf");
    /* parallelism above the cap (4) */
    luks2_mut_check(UNIT_LUKS2_KDF_PBKDF2, "\"kdf\":{\"type\":\"argon2id\",\"time\":4,\"memory\":65536,\"cpus\":5,",
                    "luks.pbkdf");
    /* time x memory above the cap (16 GiB-passes), each factor within its own */
    luks2_mut_check(UNIT_LUKS2_KDF_PBKDF2,
                    "\"kdf\":{\"type\":\"argon2id\",\"time\":17,\"memory\":1048576,\"cpus\":4,", "luks.pbkdf");
    /* exactly at every cap: fine */
    luks2_mut_ok(UNIT_LUKS2_KDF_PBKDF2, "\"kdf\":{\"type\":\"argon2id\",\"time\":16,\"memory\":1048576,\"cpus\":4,",
                 &info);
    assert_int_equal(info.slots[0].kdf, SIF_KDF_ARGON2ID);
    assert_int_equal(info.slots[0].iterations, 16);
    assert_int_equal(info.slots[0].memory_kib, 1048576);
    assert_int_equal(info.slots[0].parallel, 4);
    /* missing or zero parameters: malformed */
    luks2_mut_parse(UNIT_LUKS2_KDF_PBKDF2, "\"kdf\":{\"type\":\"argon2id\",\"time\":4,\"memory\":0,\"cpus\":4,",
                    "luks.keyslot");
    luks2_mut_parse(UNIT_LUKS2_KDF_PBKDF2, "\"kdf\":{\"type\":\"argon2id\",\"time\":4,\"cpus\":4,", "luks.keyslot");
}

/* argon2i and argon2id differ only in their last byte: an argon2i slot must
 * be recorded as argon2i, or libcryptsetup's reading would not match ours
 * and a real argon2i volume would be refused. */
static void test_luks2_argon2i_kind(void **state)
{
    struct sif_luks_info info;

    (void)state;
    luks2_mut_ok(UNIT_LUKS2_KDF_PBKDF2, "\"kdf\":{\"type\":\"argon2i\",\"time\":4,\"memory\":32768,\"cpus\":1,",
                 &info);
    assert_string_equal(sif_kdf_name(info.slots[0].kdf), "argon2i");
    assert_int_equal(info.slots[0].kdf, SIF_KDF_ARGON2I);
    luks2_mut_ok(UNIT_LUKS2_KDF_PBKDF2, "\"kdf\":{\"type\":\"argon2id\",\"time\":4,\"memory\":32768,\"cpus\":1,",
                 &info);
    assert_string_equal(sif_kdf_name(info.slots[0].kdf), "argon2id");
}

static void test_luks2_digest_pbkdf(void **state)
{
    struct sif_luks_info info;
    static const char from[] = "\"iterations\":1000,\"salt\":\"" UNIT_LUKS2_SALT "\",\"digest\"";

    (void)state;
    luks2_mut_check(from, "\"iterations\":10000001,\"salt\":\"" UNIT_LUKS2_SALT "\",\"digest\"", "luks.pbkdf");
    luks2_mut_check(from, "\"iterations\":4294967295,\"salt\":\"" UNIT_LUKS2_SALT "\",\"digest\"", "luks.pbkdf");
    luks2_mut_ok(from, "\"iterations\":10000000,\"salt\":\"" UNIT_LUKS2_SALT "\",\"digest\"", &info);
    assert_int_equal(info.digest_iterations, 10000000);
    /* a costly digest not bound to the data segment still counts */
    luks2_mut_check("\"digests\":{",
                    "\"digests\":{\"1\":{\"type\":\"pbkdf2\",\"keyslots\":[],\"segments\":[],"
                    "\"hash\":\"sha256\",\"iterations\":2000000000,\"salt\":\"" UNIT_LUKS2_SALT "\","
                    "\"digest\":\"" UNIT_LUKS2_SALT "\"},",
                    "luks.pbkdf");
}

/* ------------------------------------------------- real cryptsetup headers */

struct real {
    char dir[PATH_MAX];
    char tool[PATH_MAX];
};

static int real_setup(void **state)
{
    struct real *r = calloc(1, sizeof(*r));

    if (!r)
        return -1;
    unit_mkdtemp(r->dir, sizeof(r->dir));
    *state = r;
    return 0;
}

static int real_teardown(void **state)
{
    struct real *r = *state;

    if (r) {
        unit_rm_rf(r->dir);
        free(r);
    }
    return 0;
}

/* Formats dir/v.img (size bytes) with the given options; parses it. */
static void real_format(struct real *r, uint64_t size, const char *opts, struct sif_luks_info *info)
{
    char img[PATH_MAX + 16], key[PATH_MAX + 16];
    struct sif_policy p;
    struct sif_verdict v;
    struct img im;
    uint8_t *file;
    size_t flen;

    if (!unit_find_tool("cryptsetup", r->tool, sizeof(r->tool)))
        skip();
    unit_path(img, sizeof(img), r->dir, "v.img");
    unit_path(key, sizeof(key), r->dir, "pw");
    unit_write_file(key, "pw", 2, 0600);
    unlink(img);
    assert_int_equal(unit_sh("truncate -s %llu '%s'", (unsigned long long)size, img), 0);
    assert_int_equal(unit_sh("'%s' luksFormat -q --key-file '%s' %s '%s' >/dev/null 2>&1", r->tool, key, opts, img), 0);
    file = unit_read_file(img, &flen);
    assert_int_equal(flen, size);
    im = img_new(size);
    memcpy(im.buf, file, im.len);
    free(file);
    sif_verdict_init(&v);
    if (sif_luks_parse(im.buf, im.len, im.file_size, info, &v))
        fail_msg("parse failed: [%s] %s", v.check, v.reason);
    sif_policy_default(&p);
    if (sif_luks_check(info, &p, &v))
        fail_msg("check failed: [%s] %s", v.check, v.reason);
    img_free(&im);
}

static void test_real_luks2(void **state)
{
    struct sif_luks_info info;

    /* luksDump: data offset 16777216, sector 4096, Key 512 bits, area
     * offset 32768 length 258048, metadata 16384, keyslots 16744448 */
    real_format(*state, 20u << 20,
                "--type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --offset 32768 --sector-size 4096",
                &info);
    assert_int_equal(info.version, 2);
    assert_string_equal(info.cipher, "aes");
    assert_string_equal(info.mode, "xts-plain64");
    assert_int_equal(info.key_bytes, 64);
    assert_int_equal(info.sector_size, 4096);
    assert_int_equal(info.data_offset, 16777216);
    assert_int_equal(info.data_len, (20u << 20) - 16777216);
    assert_int_equal(info.meta_len, 2 * 16384 + 16744448);
    assert_int_equal(info.nslots, 1);
    assert_true(info.slots[0].active && info.slots[0].bound);
    assert_int_equal(info.slots[0].kdf, SIF_KDF_PBKDF2);
    assert_int_equal(info.slots[0].iterations, 1000);
    assert_int_equal(info.slots[0].area_offset, 32768);
    assert_int_equal(info.slots[0].area_len, 258048);
    assert_true(info.digest_iterations >= 1000);
}

static void test_real_luks2_512(void **state)
{
    struct sif_luks_info info;

    real_format(*state, 20u << 20,
                "--type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --offset 32768 --sector-size 512 "
                "--key-size 256",
                &info);
    assert_int_equal(info.version, 2);
    assert_int_equal(info.key_bytes, 32);
    assert_int_equal(info.sector_size, 512);
    assert_int_equal(info.data_offset, 16777216);
    assert_int_equal(info.data_len, (20u << 20) - 16777216);
}

static void test_real_luks2_argon2id(void **state)
{
    struct sif_luks_info info;

    real_format(*state, 20u << 20,
                "--type luks2 --pbkdf argon2id --pbkdf-memory 32768 --pbkdf-force-iterations 4 "
                "--pbkdf-parallel 1 --offset 32768",
                &info);
    assert_int_equal(info.version, 2);
    assert_int_equal(info.slots[0].kdf, SIF_KDF_ARGON2ID);
    assert_int_equal(info.slots[0].iterations, 4);
    assert_int_equal(info.slots[0].memory_kib, 32768);
    assert_int_equal(info.slots[0].parallel, 1);
    assert_int_equal(info.data_offset, 16777216);
}

static void test_real_luks1(void **state)
{
    struct sif_luks_info info;

    /* luksDump: Payload offset 4096, MK bits 512, slot 0 key material
     * offset 8, 4000 stripes */
    real_format(*state, 4u << 20, "--type luks1 --pbkdf-force-iterations 1000 --offset 4096 --key-size 512",
                &info);
    assert_int_equal(info.version, 1);
    assert_string_equal(info.cipher, "aes");
    assert_string_equal(info.mode, "xts-plain64");
    assert_int_equal(info.key_bytes, 64);
    assert_int_equal(info.sector_size, 512);
    assert_int_equal(info.data_offset, 2097152);
    assert_int_equal(info.data_len, 2097152);
    assert_int_equal(info.meta_len, 4096 + 256000);
    assert_true(info.slots[0].active);
    assert_int_equal(info.slots[0].iterations, 1000);
    assert_int_equal(info.slots[0].area_offset, 4096);
    for (int i = 1; i < 8; i++)
        assert_false(info.slots[i].active);
    assert_true(info.digest_iterations >= 1000);
}

static void test_real_luks1_128(void **state)
{
    struct sif_luks_info info;

    /* MK bits 256: AES-128-XTS, key material 250 sectors */
    real_format(*state, 4u << 20, "--type luks1 --pbkdf-force-iterations 1000 --offset 4096 --key-size 256",
                &info);
    assert_int_equal(info.version, 1);
    assert_int_equal(info.key_bytes, 32);
    assert_int_equal(info.slots[0].area_len, 128000);
    assert_int_equal(info.data_offset, 2097152);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_luks1_valid),
        cmocka_unit_test(test_luks1_valid_other_ciphers),
        cmocka_unit_test(test_luks_bad_magic),
        cmocka_unit_test(test_luks_truncated),
        cmocka_unit_test(test_luks1_key_bytes),
        cmocka_unit_test(test_luks1_strings),
        cmocka_unit_test(test_luks1_slot_state),
        cmocka_unit_test(test_luks1_stripes),
        cmocka_unit_test(test_luks1_slot_iterations_zero),
        cmocka_unit_test(test_luks1_material_overlaps_header),
        cmocka_unit_test(test_luks1_material_overlaps_slot),
        cmocka_unit_test(test_luks1_material_past_payload),
        cmocka_unit_test(test_luks1_payload),
        cmocka_unit_test(test_luks1_partial_sector),
        cmocka_unit_test(test_luks1_cipher),
        cmocka_unit_test(test_luks1_slot_pbkdf),
        cmocka_unit_test(test_luks1_digest_pbkdf),
        cmocka_unit_test(test_luks2_valid),
        cmocka_unit_test(test_luks2_valid_variants),
        cmocka_unit_test(test_luks2_checksum),
        cmocka_unit_test(test_luks2_hdr_size),
        cmocka_unit_test(test_luks2_secondary_differs),
        cmocka_unit_test(test_luks2_json_syntax),
        cmocka_unit_test(test_luks2_segments),
        cmocka_unit_test(test_luks2_segment_bounds),
        cmocka_unit_test(test_luks2_requirements),
        cmocka_unit_test(test_luks2_keyslot_area),
        cmocka_unit_test(test_luks2_digests),
        cmocka_unit_test(test_luks2_cipher),
        cmocka_unit_test(test_luks2_pbkdf2_slot),
        cmocka_unit_test(test_luks2_argon2),
        cmocka_unit_test(test_luks2_argon2i_kind),
        cmocka_unit_test(test_luks2_digest_pbkdf),
        cmocka_unit_test_setup_teardown(test_real_luks2, real_setup, real_teardown),
        cmocka_unit_test_setup_teardown(test_real_luks2_512, real_setup, real_teardown),
        cmocka_unit_test_setup_teardown(test_real_luks2_argon2id, real_setup, real_teardown),
        cmocka_unit_test_setup_teardown(test_real_luks1, real_setup, real_teardown),
        cmocka_unit_test_setup_teardown(test_real_luks1_128, real_setup, real_teardown),
    };

    return cmocka_run_group_tests_name("luks", tests, NULL, NULL);
}
