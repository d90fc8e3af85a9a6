/* luks.c: LUKS1 and LUKS2 header parsing and policy, pure functions.
 *
 * Every field is checked against the file size and against the other
 * fields before anything uses it; the LUKS2 JSON is parsed with json-c (the
 * parser libcryptsetup itself uses) with a nesting limit, after both binary
 * header checksums have been verified.
 */
#include "config.h"

#include "luks.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "checked.h"
#include "sector.h"

static const uint8_t sif_luks_magic[SIF_LUKS_MAGIC_LEN] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };
static const uint8_t sif_luks2_magic2[SIF_LUKS_MAGIC_LEN] = { 'S', 'K', 'U', 'L', 0xba, 0xbe };

/* LUKS1 on-disk layout (cryptsetup docs/on-disk-format.pdf). */
enum {
    L1_VERSION = 6, L1_CIPHER = 8, L1_MODE = 40, L1_HASH = 72, L1_PAYLOAD = 104,
    L1_KEYBYTES = 108, L1_DIGEST_ITER = 164, L1_SLOT0 = 208, L1_SLOT_LEN = 48,
    L1_FIELD = 32, L1_ACTIVE = 0x00AC71F3, L1_INACTIVE = 0x0000DEAD, L1_STRIPES = 4000,
};
_Static_assert(L1_SLOT0 + SIF_LUKS1_SLOTS * L1_SLOT_LEN == SIF_LUKS1_HDR_LEN, "LUKS1 header is 592 bytes");

/* LUKS2 binary header layout (docs/on-disk-format-luks2.pdf). */
enum {
    L2_BIN_LEN = 4096, L2_VERSION = 6, L2_HDR_SIZE = 8, L2_SEQID = 16, L2_CSUM_ALG = 72,
    L2_HDR_OFFSET = 256, L2_CSUM = 448, L2_CSUM_LEN = 64,
};
/* Nesting of a LUKS2 JSON document is 4 levels; allow a little more. */
#define SIF_LUKS2_JSON_DEPTH 10

const char *sif_kdf_name(enum sif_kdf k)
{
    switch (k) {
    case SIF_KDF_PBKDF2:
        return "pbkdf2";
    case SIF_KDF_ARGON2I:
        return "argon2i";
    case SIF_KDF_ARGON2ID:
        return "argon2id";
    default:
        return "none";
    }
}

bool sif_luks_detect(const uint8_t *buf, size_t len)
{
    if (len < 8 || memcmp(buf, sif_luks_magic, sizeof(sif_luks_magic)) != 0)
        return false;
    return sif_be16(buf + L1_VERSION) == 1 || sif_be16(buf + L1_VERSION) == 2;
}

/* Copies a NUL-terminated, printable string field of cap bytes. */
static bool sif_field_str(const uint8_t *p, size_t cap, char *out, size_t outcap)
{
    size_t n = 0;

    while (n < cap && p[n])
        n++;
    if (n == 0 || n == cap || n >= outcap)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e)
            return false;
    memcpy(out, p, n);
    out[n] = 0;
    return true;
}

static bool sif_sector_size_ok(uint64_t s)
{
    return s == 512 || s == 1024 || s == 2048 || s == 4096;
}

/* ---------------------------------------------------------------- LUKS1 */

static int sif_luks1_parse(const uint8_t *b, size_t len, uint64_t file_size,
                           struct sif_luks_info *info, struct sif_verdict *v)
{
    uint64_t payload, area_end = SIF_LUKS1_HDR_LEN;

    if (len < SIF_LUKS1_HDR_LEN)
        return sif_reject(v, -EINVAL, "luks.header", "LUKS1 header truncated (%zu bytes)", len);
    if (!sif_field_str(b + L1_CIPHER, L1_FIELD, info->cipher, sizeof(info->cipher)) ||
        !sif_field_str(b + L1_MODE, L1_FIELD, info->mode, sizeof(info->mode)))
        return sif_reject(v, -EINVAL, "luks.header", "LUKS1 cipher name or mode is not a terminated string");
    char hash[32];
    if (!sif_field_str(b + L1_HASH, L1_FIELD, hash, sizeof(hash)))
        return sif_reject(v, -EINVAL, "luks.header", "LUKS1 hash spec is not a terminated string");
    info->version = 1;
    info->key_bytes = sif_be32(b + L1_KEYBYTES);
    info->sector_size = 512;
    info->digest_iterations = sif_be32(b + L1_DIGEST_ITER);
    if (info->key_bytes == 0 || info->key_bytes > 64)
        return sif_reject(v, -EINVAL, "luks.header", "LUKS1 key size %" PRIu32 " bytes is invalid", info->key_bytes);
    if (info->digest_iterations == 0)
        return sif_reject(v, -EINVAL, "luks.header", "LUKS1 master key digest has 0 iterations");
    payload = (uint64_t)sif_be32(b + L1_PAYLOAD) * 512;

    info->nslots = SIF_LUKS1_SLOTS;
    for (int i = 0; i < SIF_LUKS1_SLOTS; i++) {
        const uint8_t *s = b + L1_SLOT0 + i * L1_SLOT_LEN;
        struct sif_luks_slot *slot = &info->slots[i];
        uint32_t state = sif_be32(s);
        uint32_t stripes = sif_be32(s + 44);

        if (state == L1_INACTIVE)
            continue;
        if (state != L1_ACTIVE)
            return sif_reject(v, -EINVAL, "luks.keyslot", "LUKS1 key slot %d has invalid state 0x%08" PRIx32, i, state);
        if (stripes != L1_STRIPES)
            return sif_reject(v, -EINVAL, "luks.keyslot", "LUKS1 key slot %d has %" PRIu32 " AF stripes, not 4000", i, stripes);
        slot->active = slot->bound = true;
        slot->kdf = SIF_KDF_PBKDF2;
        snprintf(slot->hash, sizeof(slot->hash), "%s", hash);
        slot->iterations = sif_be32(s + 4);
        slot->key_bytes = info->key_bytes;
        slot->area_offset = (uint64_t)sif_be32(s + 40) * 512;
        slot->area_len = ((uint64_t)info->key_bytes * L1_STRIPES + 511) / 512 * 512;
        if (slot->iterations == 0)
            return sif_reject(v, -EINVAL, "luks.keyslot", "LUKS1 key slot %d has 0 iterations", i);
        if (slot->area_offset < SIF_LUKS1_HDR_LEN || !sif_range_ok(slot->area_offset, slot->area_len, payload))
            return sif_reject(v, -EINVAL, "luks.keyslot",
                              "LUKS1 key slot %d material at %" PRIu64 "+%" PRIu64 " is outside the header area (payload at %" PRIu64 ")",
                              i, slot->area_offset, slot->area_len, payload);
        for (int j = 0; j < i; j++)
            if (info->slots[j].active &&
                sif_ranges_overlap(slot->area_offset, slot->area_len, info->slots[j].area_offset, info->slots[j].area_len))
                return sif_reject(v, -EINVAL, "luks.keyslot", "LUKS1 key slots %d and %d overlap", j, i);
        if (slot->area_offset + slot->area_len > area_end)
            area_end = slot->area_offset + slot->area_len;
    }
    if (payload < SIF_LUKS1_HDR_LEN)
        return sif_reject(v, -EINVAL, "luks.segment", "LUKS1 payload offset %" PRIu64 " overlaps the header", payload);
    if (payload > file_size)
        return sif_reject(v, -EINVAL, "luks.segment", "LUKS1 payload offset %" PRIu64 " is past the end of the file (%" PRIu64 ")", payload, file_size);
    info->data_offset = payload;
    info->data_len = (file_size - payload) / 512 * 512;
    info->meta_len = area_end;
    return 0;
}

/* ---------------------------------------------------------------- LUKS2 */

/* Verifies one binary header + JSON area copy at buf. */
static int sif_luks2_check_copy(const uint8_t *h, uint64_t hdr_size, uint64_t expect_offset,
                                const uint8_t *magic, const char *which, struct sif_verdict *v)
{
    uint8_t zeroed[L2_BIN_LEN], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char alg[32];
    EVP_MD_CTX *mctx;
    int ok;

    if (memcmp(h, magic, SIF_LUKS_MAGIC_LEN) != 0 || sif_be16(h + L2_VERSION) != 2)
        return sif_reject(v, -EINVAL, "luks.header", "LUKS2 %s header has a bad magic or version", which);
    if (sif_be64(h + L2_HDR_SIZE) != hdr_size)
        return sif_reject(v, -EINVAL, "luks.header", "LUKS2 %s header size differs from the primary's", which);
    if (sif_be64(h + L2_HDR_OFFSET) != expect_offset)
        return sif_reject(v, -EINVAL, "luks.header", "LUKS2 %s header records offset %" PRIu64 ", expected %" PRIu64,
                          which, sif_be64(h + L2_HDR_OFFSET), expect_offset);
    if (!sif_field_str(h + L2_CSUM_ALG, 32, alg, sizeof(alg)) || strcmp(alg, "sha256") != 0)
        return sif_reject(v, -EINVAL, "luks.header", "LUKS2 %s header checksum algorithm is not sha256", which);
    memcpy(zeroed, h, L2_BIN_LEN);
    memset(zeroed + L2_CSUM, 0, L2_CSUM_LEN);
    mctx = EVP_MD_CTX_new();
    ok = mctx && EVP_DigestInit_ex(mctx, EVP_sha256(), NULL) &&
         EVP_DigestUpdate(mctx, zeroed, L2_BIN_LEN) &&
         EVP_DigestUpdate(mctx, h + L2_BIN_LEN, hdr_size - L2_BIN_LEN) &&
         EVP_DigestFinal_ex(mctx, md, &mdlen);
    EVP_MD_CTX_free(mctx);
    if (!ok)
        return sif_reject(v, -EIO, "luks.header", "cannot compute the LUKS2 header checksum");
    if (mdlen != 32 || memcmp(md, h + L2_CSUM, 32) != 0)
        return sif_reject(v, -EINVAL, "luks.header", "LUKS2 %s header checksum mismatch", which);
    return 0;
}

/* A JSON member that must be a string holding a decimal u64. */
static bool sif_json_u64str(struct json_object *o, const char *key, uint64_t *out)
{
    struct json_object *m;
    const char *s;
    char *end;

    if (!json_object_object_get_ex(o, key, &m) || !json_object_is_type(m, json_type_string))
        return false;
    s = json_object_get_string(m);
    if (!s || *s < '0' || *s > '9' || (s[0] == '0' && s[1]))
        return false;
    errno = 0;
    unsigned long long val = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = val;
    return true;
}

/* A JSON member that must be a non-negative integer. */
static bool sif_json_uint(struct json_object *o, const char *key, uint64_t max, uint64_t *out)
{
    struct json_object *m;
    int64_t val;

    if (!json_object_object_get_ex(o, key, &m) || !json_object_is_type(m, json_type_int))
        return false;
    errno = 0;
    val = json_object_get_int64(m);
    if (errno || val < 0 || (uint64_t)val > max)
        return false;
    *out = (uint64_t)val;
    return true;
}

static const char *sif_json_str(struct json_object *o, const char *key)
{
    struct json_object *m;

    if (!json_object_object_get_ex(o, key, &m) || !json_object_is_type(m, json_type_string))
        return NULL;
    return json_object_get_string(m);
}

static struct json_object *sif_json_member(struct json_object *o, const char *key, enum json_type t)
{
    struct json_object *m;

    if (!json_object_object_get_ex(o, key, &m) || !json_object_is_type(m, t))
        return NULL;
    return m;
}

/* Parses a JSON object key that must be a decimal id below max. */
static int sif_json_id(const char *key, int max)
{
    char *end;
    long id;

    if (!key[0] || (key[0] == '0' && key[1]) || key[0] < '0' || key[0] > '9')
        return -1;
    id = strtol(key, &end, 10);
    if (*end || id < 0 || id >= max)
        return -1;
    return (int)id;
}

/* True when the JSON array arr contains the string s. */
static bool sif_json_array_has(struct json_object *arr, const char *s)
{
    size_t n = json_object_array_length(arr);

    for (size_t i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(arr, i);

        if (json_object_is_type(e, json_type_string) && !strcmp(json_object_get_string(e), s))
            return true;
    }
    return false;
}

static int sif_luks2_segment(struct json_object *root, uint64_t file_size, uint64_t meta_len,
                             struct sif_luks_info *info, struct sif_verdict *v)
{
    struct json_object *segs = sif_json_member(root, "segments", json_type_object);
    struct json_object *seg, *m;
    const char *type, *enc, *tweak, *dash;
    uint64_t off, size = 0, sector;
    bool dynamic = false;

    if (!segs)
        return sif_reject(v, -EINVAL, "luks.header", "LUKS2 JSON has no segments object");
    if (json_object_object_length(segs) != 1 || !json_object_object_get_ex(segs, "0", &seg) ||
        !json_object_is_type(seg, json_type_object))
        return sif_reject(v, -EINVAL, "luks.segment", "LUKS2 has %d segments; exactly one segment \"0\" is supported",
                          json_object_object_length(segs));
    type = sif_json_str(seg, "type");
    if (!type || strcmp(type, "crypt") != 0)
        return sif_reject(v, -EINVAL, "luks.segment", "LUKS2 segment type is \"%s\", not crypt", type ? type : "?");
    if (json_object_object_get_ex(seg, "integrity", &m))
        return sif_reject(v, -EINVAL, "luks.segment", "LUKS2 segment has integrity protection (AEAD), which is not supported");
    if (json_object_object_get_ex(seg, "flags", &m) &&
        (!json_object_is_type(m, json_type_array) || json_object_array_length(m) != 0))
        return sif_reject(v, -EINVAL, "luks.segment", "LUKS2 segment carries flags (reencryption in progress?)");
    tweak = sif_json_str(seg, "iv_tweak");
    if (!tweak || strcmp(tweak, "0") != 0)
        return sif_reject(v, -EINVAL, "luks.segment", "LUKS2 segment iv_tweak is \"%s\", only \"0\" is supported",
                          tweak ? tweak : "?");
    if (!sif_json_u64str(seg, "offset", &off))
        return sif_reject(v, -EINVAL, "luks.segment", "LUKS2 segment offset is not a number");
    if (!sif_json_uint(seg, "sector_size", 4096, &sector) || !sif_sector_size_ok(sector))
        return sif_reject(v, -EINVAL, "luks.segment", "LUKS2 segment sector size is not 512, 1024, 2048 or 4096");
    m = sif_json_member(seg, "size", json_type_string);
    if (m && !strcmp(json_object_get_string(m), "dynamic"))
        dynamic = true;
    else if (!sif_json_u64str(seg, "size", &size) || size == 0 || size % sector)
        return sif_reject(v, -EINVAL, "luks.segment", "LUKS2 segment size is not \"dynamic\" or a multiple of the sector size");
    if (off % sector || off % 4096)
        return sif_reject(v, -EINVAL, "luks.segment", "LUKS2 data offset %" PRIu64 " is not aligned", off);
    if (off < meta_len)
        return sif_reject(v, -EINVAL, "luks.segment", "LUKS2 data offset %" PRIu64 " overlaps the metadata (%" PRIu64 " bytes)",
                          off, meta_len);
    if (off > file_size)
        return sif_reject(v, -EINVAL, "luks.segment", "LUKS2 data offset %" PRIu64 " is past the end of the file (%" PRIu64 ")",
                          off, file_size);
    if (dynamic)
        size = (file_size - off) / sector * sector;
    else if (!sif_range_ok(off, size, file_size))
        return sif_reject(v, -EINVAL, "luks.segment", "LUKS2 segment %" PRIu64 "+%" PRIu64 " runs past the end of the file (%" PRIu64 ")",
                          off, size, file_size);
    enc = sif_json_str(seg, "encryption");
    dash = enc ? strchr(enc, '-') : NULL;
    if (!dash || (size_t)(dash - enc) >= sizeof(info->cipher) || strlen(dash + 1) >= sizeof(info->mode) || !dash[1])
        return sif_reject(v, -EINVAL, "luks.cipher", "LUKS2 segment encryption \"%s\" is not CIPHER-MODE", enc ? enc : "?");
    memcpy(info->cipher, enc, (size_t)(dash - enc));
    info->cipher[dash - enc] = 0;
    snprintf(info->mode, sizeof(info->mode), "%s", dash + 1);
    info->data_offset = off;
    info->data_len = size;
    info->sector_size = (uint32_t)sector;
    return 0;
}

static int sif_luks2_kdf(struct json_object *ks, int id, struct sif_luks_slot *slot, struct sif_verdict *v)
{
    struct json_object *kdf = sif_json_member(ks, "kdf", json_type_object);
    const char *type = kdf ? sif_json_str(kdf, "type") : NULL;
    uint64_t val;

    if (!type)
        return sif_reject(v, -EINVAL, "luks.keyslot", "LUKS2 key slot %d has no kdf type", id);
    if (!strcmp(type, "pbkdf2")) {
        const char *hash = sif_json_str(kdf, "hash");

        slot->kdf = SIF_KDF_PBKDF2;
        if (!hash || strlen(hash) >= sizeof(slot->hash) || !sif_json_uint(kdf, "iterations", UINT32_MAX, &val) || !val)
            return sif_reject(v, -EINVAL, "luks.keyslot", "LUKS2 key slot %d has malformed pbkdf2 parameters", id);
        snprintf(slot->hash, sizeof(slot->hash), "%s", hash);
        slot->iterations = val;
        return 0;
    }
    if (!strcmp(type, "argon2i") || !strcmp(type, "argon2id")) {
        uint64_t mem, cpus;

        slot->kdf = type[7] ? SIF_KDF_ARGON2ID : SIF_KDF_ARGON2I;
        if (!sif_json_uint(kdf, "time", UINT32_MAX, &val) || !val ||
            !sif_json_uint(kdf, "memory", UINT32_MAX, &mem) || !mem ||
            !sif_json_uint(kdf, "cpus", UINT32_MAX, &cpus) || !cpus)
            return sif_reject(v, -EINVAL, "luks.keyslot", "LUKS2 key slot %d has malformed argon2 parameters", id);
        slot->iterations = val;
        slot->memory_kib = (uint32_t)mem;
        slot->parallel = (uint32_t)cpus;
        return 0;
    }
    return sif_reject(v, -EINVAL, "luks.pbkdf", "LUKS2 key slot %d uses unsupported kdf \"%s\"", id, type);
}

static int sif_luks2_keyslots(struct json_object *root, uint64_t areas_start, uint64_t meta_len,
                              struct sif_luks_info *info, struct sif_verdict *v)
{
    struct json_object *kss = sif_json_member(root, "keyslots", json_type_object);

    if (!kss)
        return sif_reject(v, -EINVAL, "luks.header", "LUKS2 JSON has no keyslots object");
    json_object_object_foreach(kss, key, ks) {
        int id = sif_json_id(key, SIF_LUKS2_SLOTS);
        struct sif_luks_slot *slot;
        struct json_object *area, *af;
        const char *type;
        uint64_t ksize, stripes;
        int r;

        if (id < 0 || !json_object_is_type(ks, json_type_object))
            return sif_reject(v, -EINVAL, "luks.keyslot", "LUKS2 key slot id \"%.16s\" is invalid", key);
        slot = &info->slots[id];
        type = sif_json_str(ks, "type");
        if (!type || strcmp(type, "luks2") != 0)
            return sif_reject(v, -EINVAL, "luks.keyslot", "LUKS2 key slot %d has type \"%s\", not luks2",
                              id, type ? type : "?");
        if (!sif_json_uint(ks, "key_size", 64, &ksize) || !ksize)
            return sif_reject(v, -EINVAL, "luks.keyslot", "LUKS2 key slot %d key size is invalid", id);
        area = sif_json_member(ks, "area", json_type_object);
        type = area ? sif_json_str(area, "type") : NULL;
        if (!type || strcmp(type, "raw") != 0 || !sif_json_u64str(area, "offset", &slot->area_offset) ||
            !sif_json_u64str(area, "size", &slot->area_len))
            return sif_reject(v, -EINVAL, "luks.keyslot", "LUKS2 key slot %d area is malformed", id);
        if (slot->area_offset < areas_start || !sif_range_ok(slot->area_offset, slot->area_len, meta_len))
            return sif_reject(v, -EINVAL, "luks.keyslot",
                              "LUKS2 key slot %d area %" PRIu64 "+%" PRIu64 " is outside the key slot area", id,
                              slot->area_offset, slot->area_len);
        af = sif_json_member(ks, "af", json_type_object);
        type = af ? sif_json_str(af, "type") : NULL;
        if (!type || strcmp(type, "luks1") != 0 || !sif_json_uint(af, "stripes", 4000, &stripes) || stripes != 4000)
            return sif_reject(v, -EINVAL, "luks.keyslot", "LUKS2 key slot %d anti-forensic splitter is not luks1/4000", id);
        if (ksize * stripes > slot->area_len)
            return sif_reject(v, -EINVAL, "luks.keyslot", "LUKS2 key slot %d area is smaller than its key material", id);
        r = sif_luks2_kdf(ks, id, slot, v);
        if (r)
            return r;
        slot->active = true;
        slot->key_bytes = (uint32_t)ksize;
        if (id + 1 > info->nslots)
            info->nslots = id + 1;
    }
    for (int i = 0; i < info->nslots; i++)
        for (int j = 0; j < i; j++)
            if (info->slots[i].active && info->slots[j].active &&
                sif_ranges_overlap(info->slots[i].area_offset, info->slots[i].area_len,
                                   info->slots[j].area_offset, info->slots[j].area_len))
                return sif_reject(v, -EINVAL, "luks.keyslot", "LUKS2 key slots %d and %d overlap", j, i);
    return 0;
}

/* Digests: every one is checked for cost; the ones for segment 0 bind key
 * slots to the data. */
static int sif_luks2_digests(struct json_object *root, struct sif_luks_info *info, struct sif_verdict *v)
{
    struct json_object *dgs = sif_json_member(root, "digests", json_type_object);
    bool have_data_digest = false;

    if (!dgs)
        return sif_reject(v, -EINVAL, "luks.header", "LUKS2 JSON has no digests object");
    json_object_object_foreach(dgs, key, dg) {
        struct json_object *slots, *segs;
        const char *type;
        uint64_t iter;

        if (sif_json_id(key, SIF_LUKS2_SLOTS) < 0 || !json_object_is_type(dg, json_type_object))
            return sif_reject(v, -EINVAL, "luks.header", "LUKS2 digest id \"%.16s\" is invalid", key);
        type = sif_json_str(dg, "type");
        if (!type || strcmp(type, "pbkdf2") != 0)
            return sif_reject(v, -EINVAL, "luks.pbkdf", "LUKS2 digest %s has type \"%s\", not pbkdf2", key, type ? type : "?");
        if (!sif_json_uint(dg, "iterations", UINT32_MAX, &iter) || !iter)
            return sif_reject(v, -EINVAL, "luks.header", "LUKS2 digest %s has no valid iteration count", key);
        if (iter > info->digest_iterations)
            info->digest_iterations = (uint32_t)iter;
        slots = sif_json_member(dg, "keyslots", json_type_array);
        segs = sif_json_member(dg, "segments", json_type_array);
        if (!slots || !segs)
            return sif_reject(v, -EINVAL, "luks.header", "LUKS2 digest %s lacks keyslots or segments", key);
        if (!sif_json_array_has(segs, "0"))
            continue;
        have_data_digest = true;
        for (size_t i = 0; i < json_object_array_length(slots); i++) {
            struct json_object *e = json_object_array_get_idx(slots, i);
            int id = json_object_is_type(e, json_type_string) ? sif_json_id(json_object_get_string(e), SIF_LUKS2_SLOTS) : -1;

            if (id < 0 || !info->slots[id].active)
                return sif_reject(v, -EINVAL, "luks.keyslot", "LUKS2 digest %s names a key slot that does not exist", key);
            info->slots[id].bound = true;
        }
    }
    if (!have_data_digest)
        return sif_reject(v, -EINVAL, "luks.keyslot", "LUKS2 has no digest for the data segment");
    return 0;
}

static int sif_luks2_parse(const uint8_t *b, size_t len, uint64_t file_size,
                           struct sif_luks_info *info, struct sif_verdict *v)
{
    uint64_t hdr_size, json_size, ks_size, meta_len;
    struct json_tokener *tok = NULL;
    struct json_object *root = NULL, *config, *req, *m;
    size_t jlen;
    int r;

    if (len < L2_BIN_LEN)
        return sif_reject(v, -EINVAL, "luks.header", "LUKS2 header truncated (%zu bytes)", len);
    hdr_size = sif_be64(b + L2_HDR_SIZE);
    if (hdr_size < (16u << 10) || hdr_size > SIF_LUKS2_HDR_MAX || !sif_is_pow2(hdr_size))
        return sif_reject(v, -EINVAL, "luks.header", "LUKS2 header size %" PRIu64 " is not a power of two in 16 KiB..4 MiB", hdr_size);
    if (2 * hdr_size > len)
        return sif_reject(v, -EINVAL, "luks.header", "LUKS2 header copies (2 x %" PRIu64 " bytes) extend past the end of the file", hdr_size);
    r = sif_luks2_check_copy(b, hdr_size, 0, sif_luks_magic, "primary", v);
    if (!r)
        r = sif_luks2_check_copy(b + hdr_size, hdr_size, hdr_size, sif_luks2_magic2, "secondary", v);
    if (r)
        return r;
    if (sif_be64(b + L2_SEQID) != sif_be64(b + hdr_size + L2_SEQID) ||
        memcmp(b + L2_BIN_LEN, b + hdr_size + L2_BIN_LEN, hdr_size - L2_BIN_LEN) != 0)
        return sif_reject(v, -EINVAL, "luks.header", "LUKS2 primary and secondary headers differ");

    jlen = strnlen((const char *)b + L2_BIN_LEN, hdr_size - L2_BIN_LEN);
    if (jlen == hdr_size - L2_BIN_LEN)
        return sif_reject(v, -EINVAL, "luks.header", "LUKS2 JSON area is not terminated");
    tok = json_tokener_new_ex(SIF_LUKS2_JSON_DEPTH);
    if (!tok)
        return sif_reject(v, -ENOMEM, "luks.header", "out of memory parsing LUKS2 JSON");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, (const char *)b + L2_BIN_LEN, (int)jlen);
    if (!root || json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) != jlen ||
        !json_object_is_type(root, json_type_object)) {
        r = sif_reject(v, -EINVAL, "luks.header", "LUKS2 JSON area is not a valid JSON object");
        goto out;
    }
    config = sif_json_member(root, "config", json_type_object);
    if (!config || !sif_json_u64str(config, "json_size", &json_size) ||
        !sif_json_u64str(config, "keyslots_size", &ks_size)) {
        r = sif_reject(v, -EINVAL, "luks.header", "LUKS2 config lacks json_size or keyslots_size");
        goto out;
    }
    if (json_size != hdr_size - L2_BIN_LEN || ks_size % 4096 || ks_size > (128u << 20)) {
        r = sif_reject(v, -EINVAL, "luks.header", "LUKS2 config json_size %" PRIu64 " or keyslots_size %" PRIu64 " is invalid",
                       json_size, ks_size);
        goto out;
    }
    req = sif_json_member(config, "requirements", json_type_object);
    if (req && json_object_object_get_ex(req, "mandatory", &m) &&
        (!json_object_is_type(m, json_type_array) || json_object_array_length(m) != 0)) {
        r = sif_reject(v, -EINVAL, "luks.requirements",
                       "LUKS2 header has mandatory requirements (reencryption, OPAL or a newer format)");
        goto out;
    }
    if (!sif_json_member(root, "tokens", json_type_object)) {
        r = sif_reject(v, -EINVAL, "luks.header", "LUKS2 JSON has no tokens object");
        goto out;
    }
    meta_len = 2 * hdr_size + ks_size;
    info->version = 2;
    info->meta_len = meta_len;
    r = sif_luks2_segment(root, file_size, meta_len, info, v);
    if (!r)
        r = sif_luks2_keyslots(root, 2 * hdr_size, meta_len, info, v);
    if (!r)
        r = sif_luks2_digests(root, info, v);
    if (r)
        goto out;
    info->key_bytes = 0;
    for (int i = 0; i < info->nslots; i++) {
        const struct sif_luks_slot *s = &info->slots[i];

        if (!s->bound)
            continue;
        if (info->key_bytes && s->key_bytes != info->key_bytes) {
            r = sif_reject(v, -EINVAL, "luks.keyslot", "LUKS2 bound key slots disagree on the key size");
            goto out;
        }
        info->key_bytes = s->key_bytes;
    }
    if (!info->key_bytes)
        r = sif_reject(v, -EINVAL, "luks.keyslot", "LUKS2 has no key slot bound to the data segment");
out:
    json_object_put(root);
    json_tokener_free(tok);
    return r;
}

int sif_luks_parse_embedded(const uint8_t *buf, size_t region_len, struct sif_luks_info *info,
                            struct sif_verdict *v)
{
    memset(info, 0, sizeof(*info));
    if (!sif_luks_detect(buf, region_len))
        return sif_reject(v, -EINVAL, "qcow2.crypt_header", "the encryption header region holds no LUKS header");
    if (sif_be16(buf + L1_VERSION) != 1)
        return sif_reject(v, -EINVAL, "qcow2.crypt_header", "the embedded LUKS header is version %u; qcow2 uses LUKS1 only",
                          (unsigned)sif_be16(buf + L1_VERSION));
    return sif_luks1_parse(buf, region_len, region_len, info, v);
}

int sif_luks_parse(const uint8_t *buf, size_t len, uint64_t file_size, struct sif_luks_info *info,
                   struct sif_verdict *v)
{
    int r;

    memset(info, 0, sizeof(*info));
    if (len > file_size)
        len = (size_t)file_size;
    if (!sif_luks_detect(buf, len))
        return sif_reject(v, -EINVAL, "luks.header", "no LUKS magic");
    r = sif_be16(buf + L1_VERSION) == 1 ? sif_luks1_parse(buf, len, file_size, info, v)
                                        : sif_luks2_parse(buf, len, file_size, info, v);
    if (r)
        return r;
    if (info->data_len == 0)
        return sif_reject(v, -EINVAL, "luks.segment", "LUKS data segment is empty");
    return 0;
}

void sif_luks_describe(const struct sif_luks_info *info, struct sif_verdict *v)
{
    snprintf(v->cipher, sizeof(v->cipher), "%s-%s", info->cipher, info->mode);
    v->key_bits = info->key_bytes * 8;
    v->sector_size = info->sector_size;
    v->data_offset = info->data_offset;
    v->nslots = 0;
    for (int i = 0; i < info->nslots && v->nslots < SIF_VERDICT_SLOTS; i++) {
        const struct sif_luks_slot *s = &info->slots[i];
        struct sif_verdict_slot *o;

        if (!s->active)
            continue;
        o = &v->slots[v->nslots++];
        o->id = (uint8_t)i;
        o->bound = s->bound;
        snprintf(o->kdf, sizeof(o->kdf), "%s", sif_kdf_name(s->kdf));
        o->cost = s->iterations;
        o->memory_kib = s->memory_kib;
        o->parallel = s->parallel;
    }
}

/* What safeimgfs cannot decrypt at all is "not supported"; what it could
 * but the policy narrowed away is "not allowed by policy".  Both are
 * luks.cipher, including a LUKS2 sector size the policy leaves out: the
 * operator's answer is the same, re-encrypt with allowed parameters.
 * LUKS1 (raw or in qcow2) always has 512-byte sectors: outer_formats, not
 * sector_sizes, decides about it. */
int sif_luks_check(const struct sif_luks_info *info, const struct sif_policy *p, struct sif_verdict *v)
{
    bool any_bound = false;
    uint64_t cost;

    if (!sif_cipher_lookup(info->cipher, info->mode, info->key_bytes))
        return sif_reject(v, -EPERM, "luks.cipher", "cipher %s-%s with a %" PRIu32 "-bit key is not supported",
                          info->cipher, info->mode, info->key_bytes * 8);
    if (!sif_policy_cipher_allowed(p, info->cipher, info->mode, info->key_bytes))
        return sif_reject(v, -EPERM, "luks.cipher", "cipher %s-%s with a %" PRIu32 "-bit key is not allowed by policy",
                          info->cipher, info->mode, info->key_bytes * 8);
    if (!sif_sector_size_ok(info->sector_size))
        return sif_reject(v, -EPERM, "luks.segment", "sector size %" PRIu32 " is not supported", info->sector_size);
    if (info->version == 2 && !sif_policy_sector_size_allowed(p, info->sector_size))
        return sif_reject(v, -EPERM, "luks.cipher", "encryption sector size %" PRIu32 " is not allowed by policy",
                          info->sector_size);
    if (info->digest_iterations > p->digest_max_iterations)
        return sif_reject(v, -EPERM, "luks.pbkdf", "digest PBKDF2 iterations %" PRIu32 " exceed the limit %" PRIu64,
                          info->digest_iterations, p->digest_max_iterations);
    for (int i = 0; i < info->nslots; i++) {
        const struct sif_luks_slot *s = &info->slots[i];

        if (!s->active)
            continue;
        any_bound |= s->bound;
        if (s->kdf == SIF_KDF_PBKDF2) {
            if (s->iterations > p->pbkdf2_max_iterations)
                return sif_reject(v, -EPERM, "luks.pbkdf", "key slot %d PBKDF2 iterations %" PRIu64 " exceed the limit %" PRIu64,
                                  i, s->iterations, p->pbkdf2_max_iterations);
            continue;
        }
        if (s->memory_kib > p->argon2_max_memory_kib)
            return sif_reject(v, -EPERM, "luks.pbkdf", "key slot %d %s memory %" PRIu32 " KiB exceeds the limit %" PRIu32 " KiB",
                              i, sif_kdf_name(s->kdf), s->memory_kib, p->argon2_max_memory_kib);
        if (s->iterations > p->argon2_max_time)
            return sif_reject(v, -EPERM, "luks.pbkdf", "key slot %d %s time cost %" PRIu64 " exceeds the limit %" PRIu32,
                              i, sif_kdf_name(s->kdf), s->iterations, p->argon2_max_time);
        if (s->parallel > p->argon2_max_parallel)
            return sif_reject(v, -EPERM, "luks.pbkdf", "key slot %d %s parallelism %" PRIu32 " exceeds the limit %" PRIu32,
                              i, sif_kdf_name(s->kdf), s->parallel, p->argon2_max_parallel);
        if (!sif_mul_u64(s->iterations, s->memory_kib, &cost) || cost > p->argon2_max_cost)
            return sif_reject(v, -EPERM, "luks.pbkdf", "key slot %d %s cost %" PRIu64 " passes x %" PRIu32 " KiB exceeds the limit %" PRIu64,
                              i, sif_kdf_name(s->kdf), s->iterations, s->memory_kib, p->argon2_max_cost);
    }
    if (!any_bound)
        return sif_reject(v, -EPERM, "luks.keyslot", "no active key slot can unlock the data");
    return 0;
}
