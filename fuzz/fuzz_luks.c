/* fuzz_luks.c: libFuzzer harness for the LUKS header parser (luks.h).
 *
 * The input is the start of an untrusted file.  It is parsed
 *
 *   1. as a whole file: sif_luks_parse(input, size, file_size = size), in
 *      an exact-size buffer so ASan sees any read past the end;
 *   2. as the start of larger files (the input followed by zeros: 8 MiB,
 *      and 4 TiB, past any LUKS1 payload offset), with len = min(file
 *      size, SIF_LUKS_PARSE_LEN) as luks.h asks;
 *   3. as an embedded (qcow2) LUKS region: sif_luks_parse_embedded;
 *   4. when it holds a LUKS2 header whose size fits in the input: with the
 *      secondary copy made equal to the primary and both checksums
 *      recomputed, so mutations get past the SHA-256 checks into the JSON;
 *   5. when it starts with '{': as the JSON area of a synthesized 16 KiB
 *      LUKS2 header (both copies, valid checksums), the fastest way into
 *      the segment, key slot and digest rules.
 *
 * Whenever a parse succeeds, the parsed header must satisfy what fmt_luks.c
 * relies on (data inside the file, metadata before the data, key slot
 * areas inside the metadata, ...), sif_luks_describe and sif_luks_check
 * (default policy) run, and an accepted header must be within every
 * policy limit.
 */
#include "config.h"

#include <errno.h>
#include <openssl/evp.h>

#include "fuzz.h"
#include "luks.h"
#include "policy.h"

#define L2_BIN 4096u
#define L2_CSUM 448u
#define L2_SYNTH_HDR (16u << 10)
#define PARSE_LEN ((size_t)SIF_LUKS_PARSE_LEN)

static const uint8_t magic1[6] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };
static const uint8_t magic2[6] = { 'S', 'K', 'U', 'L', 0xba, 0xbe };

static void parsed_ok(const struct sif_luks_info *info, uint64_t file_size, bool embedded)
{
    uint64_t end;
    int bound = 0;

    FUZZ_CHECK(info->version == 1 || info->version == 2);
    FUZZ_CHECK(!embedded || info->version == 1);
    FUZZ_CHECK(FUZZ_TERMINATED(info->cipher) && FUZZ_TERMINATED(info->mode));
    FUZZ_CHECK(info->cipher[0] && info->mode[0]);
    FUZZ_CHECK(info->sector_size == 512 || info->sector_size == 1024 || info->sector_size == 2048 ||
               info->sector_size == 4096);
    FUZZ_CHECK(info->key_bytes >= 1 && info->key_bytes <= 64);
    FUZZ_CHECK(info->nslots >= 0 && info->nslots <= SIF_LUKS_SLOTS_MAX);
    FUZZ_CHECK(info->version == 2 || info->nslots == SIF_LUKS1_SLOTS);
    FUZZ_CHECK(info->data_offset % 512 == 0);
    FUZZ_CHECK(info->meta_len <= info->data_offset);
    if (!embedded) {
        /* The view serves [data_offset, data_offset + data_len): inside the
         * file, whole sectors, not empty. */
        FUZZ_CHECK(info->data_len > 0);
        FUZZ_CHECK(info->data_len % info->sector_size == 0);
        FUZZ_CHECK(!__builtin_add_overflow(info->data_offset, info->data_len, &end) && end <= file_size);
    }
    for (int i = 0; i < info->nslots; i++) {
        const struct sif_luks_slot *s = &info->slots[i];

        if (!s->active) {
            FUZZ_CHECK(!s->bound);
            continue;
        }
        bound += s->bound;
        FUZZ_CHECK(s->kdf == SIF_KDF_PBKDF2 || s->kdf == SIF_KDF_ARGON2I || s->kdf == SIF_KDF_ARGON2ID);
        FUZZ_CHECK(s->iterations > 0);
        FUZZ_CHECK(s->kdf == SIF_KDF_PBKDF2 || (s->memory_kib > 0 && s->parallel > 0));
        FUZZ_CHECK(FUZZ_TERMINATED(s->hash));
        FUZZ_CHECK(s->key_bytes >= 1 && s->key_bytes <= 64);
        FUZZ_CHECK(!s->bound || s->key_bytes == info->key_bytes);
        /* Key material lies in the metadata, after the header, and is at
         * least what the anti-forensic splitter needs. */
        FUZZ_CHECK(s->area_offset >= (info->version == 1 ? SIF_LUKS1_HDR_LEN : 2 * (16u << 10)));
        FUZZ_CHECK(!__builtin_add_overflow(s->area_offset, s->area_len, &end) && end <= info->meta_len);
        FUZZ_CHECK(s->area_len >= (uint64_t)s->key_bytes * 4000);
        for (int j = 0; j < i; j++) {
            const struct sif_luks_slot *o = &info->slots[j];

            FUZZ_CHECK(!o->active || s->area_offset + s->area_len <= o->area_offset ||
                       o->area_offset + o->area_len <= s->area_offset || !s->area_len || !o->area_len);
        }
    }
    FUZZ_CHECK(info->version == 1 || bound > 0);
}

static void check_policy(const struct sif_luks_info *info)
{
    struct sif_policy p;
    struct sif_verdict v;
    bool any_bound = false;
    int r;

    sif_policy_default(&p);
    sif_verdict_init(&v);
    sif_luks_describe(info, &v);
    fuzz_verdict_ok(&v);
    r = sif_luks_check(info, &p, &v);
    if (r) {
        FUZZ_CHECK(r == -EPERM);
        fuzz_rejected_ok(r, &v, "luks.");
        return;
    }
    /* Accepted: every active slot and the digest are within the limits. */
    FUZZ_CHECK(v.state != SIF_REJECTED);
    FUZZ_CHECK(info->digest_iterations <= p.digest_max_iterations);
    for (int i = 0; i < info->nslots; i++) {
        const struct sif_luks_slot *s = &info->slots[i];

        if (!s->active)
            continue;
        any_bound |= s->bound;
        if (s->kdf == SIF_KDF_PBKDF2) {
            FUZZ_CHECK(s->iterations <= p.pbkdf2_max_iterations);
        } else {
            FUZZ_CHECK(s->memory_kib <= p.argon2_max_memory_kib);
            FUZZ_CHECK(s->iterations <= p.argon2_max_time);
            FUZZ_CHECK(s->parallel <= p.argon2_max_parallel);
            FUZZ_CHECK(s->iterations * s->memory_kib <= p.argon2_max_cost);
        }
    }
    FUZZ_CHECK(any_bound);
    fuzz_verdict_ok(&v);
}

/* Parses the first len bytes of a file of file_size bytes held in buf;
 * render: also render a rejection as JSON (once per input is enough). */
static void parse(const uint8_t *buf, size_t len, uint64_t file_size, bool render)
{
    struct sif_luks_info info;
    struct sif_verdict v;
    int r;

    sif_verdict_init(&v);
    r = sif_luks_parse(buf, len, file_size, &info, &v);
    if (r) {
        fuzz_rejected_ok(r, &v, "luks.");
        if (render)
            fuzz_verdict_ok(&v);
        return;
    }
    FUZZ_CHECK(v.state != SIF_REJECTED);
    FUZZ_CHECK(sif_luks_detect(buf, len));
    parsed_ok(&info, file_size, false);
    check_policy(&info);
}

static void parse_embedded(const uint8_t *buf, size_t len)
{
    struct sif_luks_info info;
    struct sif_verdict v;
    int r;

    sif_verdict_init(&v);
    r = sif_luks_parse_embedded(buf, len, &info, &v);
    if (r) {
        FUZZ_CHECK(r < 0 && v.state == SIF_REJECTED);
        FUZZ_CHECK(!strncmp(v.check, "luks.", 5) || !strcmp(v.check, "qcow2.crypt_header"));
        fuzz_verdict_ok(&v);
        return;
    }
    parsed_ok(&info, len, true);
    check_policy(&info);
}

/* SHA-256 of a LUKS2 header copy with its checksum field zeroed, stored in
 * that field. */
static void luks2_csum(uint8_t *h, size_t hdr_size)
{
    unsigned int mdlen = 0;
    EVP_MD_CTX *m = EVP_MD_CTX_new();

    FUZZ_CHECK(m != NULL);
    memset(h + L2_CSUM, 0, 64);
    FUZZ_CHECK(EVP_DigestInit_ex(m, EVP_sha256(), NULL) && EVP_DigestUpdate(m, h, hdr_size) &&
               EVP_DigestFinal_ex(m, h + L2_CSUM, &mdlen) && mdlen == 32);
    EVP_MD_CTX_free(m);
}

/* Makes buf[hdr_size, 2 * hdr_size) the secondary copy of the primary
 * header in buf[0, hdr_size), with valid checksums on both. */
static void luks2_seal(uint8_t *buf, size_t hdr_size)
{
    static const char alg[] = "sha256";

    memcpy(buf, magic1, 6);
    buf[6] = 0;
    buf[7] = 2;
    fuzz_put_be64(buf + 8, hdr_size);
    memset(buf + 72, 0, 32);
    memcpy(buf + 72, alg, sizeof(alg) - 1);
    fuzz_put_be64(buf + 256, 0);
    memcpy(buf + hdr_size, buf, hdr_size);
    memcpy(buf + hdr_size, magic2, 6);
    fuzz_put_be64(buf + hdr_size + 256, hdr_size);
    luks2_csum(buf, hdr_size);
    luks2_csum(buf + hdr_size, hdr_size);
}

/* An all-zero buffer of SIF_LUKS_PARSE_LEN bytes: the start of a larger
 * file.  Users write a prefix and zero it again. */
static uint8_t *zero_file(void)
{
    static uint8_t *z;

    if (!z)
        z = calloc(1, PARSE_LEN);
    FUZZ_CHECK(z != NULL);
    return z;
}

static void parse_padded(const uint8_t *data, size_t size)
{
    uint8_t *z = zero_file();
    static const uint64_t sizes[] = { PARSE_LEN, (4ULL << 40) + 4096 };

    if (size > PARSE_LEN)
        return;
    memcpy(z, data, size);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        if (sizes[i] > size)
            parse(z, PARSE_LEN, sizes[i], false);
    memset(z, 0, size);
}

/* 4: a LUKS2 input with valid checksums. */
static void parse_resealed(const uint8_t *data, size_t size)
{
    uint64_t hdr_size;
    uint8_t *buf;

    if (size < L2_BIN || memcmp(data, magic1, 6) != 0 || data[6] != 0 || data[7] != 2)
        return;
    hdr_size = fuzz_be64(data + 8);
    if (hdr_size < (16u << 10) || hdr_size > SIF_LUKS2_HDR_MAX || (hdr_size & (hdr_size - 1)) ||
        2 * hdr_size > size)
        return;
    buf = malloc(size);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    luks2_seal(buf, hdr_size);
    parse(buf, size, size, false);
    /* The same header at the start of a file with room for its data. */
    if (size <= PARSE_LEN) {
        uint8_t *z = zero_file();

        memcpy(z, buf, size);
        parse(z, PARSE_LEN, 64ULL << 20, false);
        memset(z, 0, size);
    }
    free(buf);
}

/* 5: the input is the JSON area of a 16 KiB LUKS2 header. */
static void parse_synth_json(const uint8_t *data, size_t size)
{
    size_t jmax = L2_SYNTH_HDR - L2_BIN - 1, jlen = 0;
    uint8_t *z;

    while (jlen < size && (data[jlen] == ' ' || data[jlen] == '\n' || data[jlen] == '\t'))
        jlen++;
    if (jlen >= size || data[jlen] != '{')
        return;
    jlen = size < jmax ? size : jmax;
    z = zero_file();
    memcpy(z + L2_BIN, data, jlen);
    luks2_seal(z, L2_SYNTH_HDR);
    /* A file that ends right after the headers, then one with 48 MiB of
     * data after the usual 16 MiB offset. */
    parse(z, 2 * L2_SYNTH_HDR, 2 * L2_SYNTH_HDR, false);
    parse(z, PARSE_LEN, 64ULL << 20, true);
    memset(z, 0, 2 * L2_SYNTH_HDR);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 1: exactly the input, nothing past it readable. */
    uint8_t *copy = malloc(size);

    FUZZ_CHECK(size == 0 || copy != NULL);
    if (size)
        memcpy(copy, data, size);
    parse(copy, size, size, true);
    /* 3: the same bytes as the encryption region of a qcow2 image. */
    parse_embedded(copy, size);
    free(copy);
    /* 2, 4, 5 */
    parse_padded(data, size);
    parse_resealed(data, size);
    parse_synth_json(data, size);
    return 0;
}
