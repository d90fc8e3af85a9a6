/* unit.h: helpers shared by the cmocka unit tests.
 *
 * Include "config.h" first, then this file.  Everything here is static and
 * marked unused, so each test program takes only what it needs:
 *   - temporary directories (created in a cmocka setup, removed in teardown),
 *   - small file helpers and a runner for external tools (cryptsetup),
 *   - hex decoding and byte-order writers,
 *   - in-memory builders for LUKS1 headers and LUKS2 headers (both binary
 *     header copies, JSON area, sha256 checksums computed like cryptsetup),
 *   - string substitution used to derive an invalid LUKS2 JSON from the
 *     valid template, one condition at a time.
 */
#ifndef SIF_UNIT_H
#define SIF_UNIT_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#define UNIT_FN static __attribute__((unused))

/* ------------------------------------------------------------ strings */

/* snprintf into a fixed buffer; fails the test when the result does not fit. */
UNIT_FN __attribute__((format(printf, 3, 4))) void unit_fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < cap);
}

/* A new copy of s where `from` (which must occur exactly once) is replaced
 * by `to`.  Failing on zero or several occurrences keeps a mutation from
 * silently not applying when the template changes. */
UNIT_FN char *unit_replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    size_t ls = strlen(s), lf = strlen(from), lt = strlen(to);
    char *out;

    assert_non_null(at);
    assert_null(strstr(at + 1, from));
    out = malloc(ls - lf + lt + 1);
    assert_non_null(out);
    memcpy(out, s, (size_t)(at - s));
    memcpy(out + (at - s), to, lt);
    memcpy(out + (at - s) + lt, at + lf, ls - (size_t)(at - s) - lf + 1);
    return out;
}

/* Decodes hex (whitespace ignored) into out; returns the byte count. */
UNIT_FN size_t unit_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;

    for (const char *p = hex; *p; p++) {
        int d = 0;

        if (*p == ' ' || *p == '\n' || *p == '\t')
            continue;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            d = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            d = *p - 'A' + 10;
        else
            fail_msg("bad hex digit '%c'", *p);
        if (hi < 0) {
            hi = d;
            continue;
        }
        assert_true(n < cap);
        out[n++] = (uint8_t)(hi << 4 | d);
        hi = -1;
    }
    assert_int_equal(hi, -1);
    return n;
}

/* ------------------------------------------------------------ bytes */

UNIT_FN void unit_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

UNIT_FN void unit_put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

UNIT_FN void unit_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

UNIT_FN void unit_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A deterministic byte stream (xorshift64*), for "random" content that is
 * the same on every run. */
UNIT_FN void unit_fill_prng(uint8_t *p, size_t len, uint64_t seed)
{
    uint64_t x = seed ? seed : 0x9e3779b97f4a7c15ULL;

    for (size_t i = 0; i < len; i++) {
        if (i % 8 == 0) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
        }
        p[i] = (uint8_t)((x * 0x2545f4914f6cdd1dULL) >> (8 * (i % 8)));
    }
}

/* ------------------------------------------------------------ files */

/* A new empty directory under $TMPDIR (or /tmp); path goes to buf. */
UNIT_FN void unit_mkdtemp(char *buf, size_t cap)
{
    const char *base = getenv("TMPDIR");

    unit_fmt(buf, cap, "%s/sif-unit-XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(buf));
}

UNIT_FN int unit_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        return rmdir(path);
    return unlink(path);
}

/* rm -rf path (never follows symbolic links). */
UNIT_FN void unit_rm_rf(const char *path)
{
    nftw(path, unit_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* cmocka setup/teardown: *state is a malloc'ed temporary directory path. */
UNIT_FN int unit_tmpdir_setup(void **state)
{
    char *p = malloc(PATH_MAX);

    if (!p)
        return -1;
    unit_mkdtemp(p, PATH_MAX);
    *state = p;
    return 0;
}

UNIT_FN int unit_tmpdir_teardown(void **state)
{
    if (*state) {
        unit_rm_rf(*state);
        free(*state);
    }
    return 0;
}

/* dir/name into buf. */
UNIT_FN void unit_path(char *buf, size_t cap, const char *dir, const char *name)
{
    unit_fmt(buf, cap, "%s/%s", dir, name);
}

/* Creates (or replaces) a file with exactly these bytes and this mode. */
UNIT_FN void unit_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd;

    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fchmod(fd, mode), 0);
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, (const uint8_t *)data + off, len - off);

        assert_true(n > 0);
        off += (size_t)n;
    }
    assert_int_equal(close(fd), 0);
}

/* The whole file in a new buffer (free()); size in *len. */
UNIT_FN uint8_t *unit_read_file(const char *path, size_t *len)
{
    struct stat st;
    uint8_t *buf;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    assert_non_null(buf);
    for (size_t off = 0; off < (size_t)st.st_size;) {
        ssize_t n = pread(fd, buf + off, (size_t)st.st_size - off, (off_t)off);

        assert_true(n > 0);
        off += (size_t)n;
    }
    close(fd);
    *len = (size_t)st.st_size;
    return buf;
}

/* ------------------------------------------------------------ tools */

/* Finds an executable in $PATH, /usr/sbin or /sbin; absolute path to buf. */
UNIT_FN bool unit_find_tool(const char *name, char *buf, size_t cap)
{
    const char *env = getenv("PATH");
    char dirs[4096];

    unit_fmt(dirs, sizeof(dirs), "%s:/usr/sbin:/sbin:/usr/bin:/bin", env ? env : "");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (!*d)
            continue;
        if ((size_t)snprintf(buf, cap, "%s/%s", d, name) < cap && access(buf, X_OK) == 0)
            return true;
    }
    return false;
}

/* Runs a shell command; returns its exit status (-1 if it did not exit). */
UNIT_FN __attribute__((format(printf, 1, 2))) int unit_sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    int n, st;

    va_start(ap, fmt);
    n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(cmd));
    st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* Runs a shell command and returns its standard output (free()). */
UNIT_FN __attribute__((format(printf, 1, 2))) char *unit_sh_output(const char *fmt, ...)
{
    char cmd[8192];
    size_t len = 0, cap = 4096;
    char *out = malloc(cap);
    va_list ap;
    FILE *f;
    int n;

    assert_non_null(out);
    va_start(ap, fmt);
    n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(cmd));
    f = popen(cmd, "r");
    assert_non_null(f);
    for (;;) {
        size_t got;

        if (cap - len < 1024) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
        got = fread(out + len, 1, cap - len - 1, f);
        if (got == 0)
            break;
        len += got;
    }
    out[len] = 0;
    assert_int_equal(pclose(f), 0);
    return out;
}

/* ------------------------------------------------------------ LUKS1 */

/* On-disk LUKS1 facts (cryptsetup docs/on-disk-format.pdf), written here
 * independently of src/luks.c so that a wrong offset in one shows up. */
#define UNIT_L1_ACTIVE 0x00AC71F3u
#define UNIT_L1_INACTIVE 0x0000DEADu

struct unit_luks1_slot {
    uint32_t state;
    uint32_t iterations;
    uint32_t offset_sectors;  /* key material offset */
    uint32_t stripes;
};

struct unit_luks1 {
    char cipher[32];
    char mode[32];
    char hash[32];
    uint32_t payload_sectors;
    uint32_t key_bytes;
    uint32_t digest_iterations;   /* byte 164 */
    struct unit_luks1_slot slots[8];
};

/* What cryptsetup 2.6 writes for luksFormat --type luks1 --offset 4096
 * with a 512-bit key: aes-xts-plain64, sha256, slot 0 active with its key
 * material at sector 8, the others disabled at their 4 KiB aligned places
 * (500 sectors of material rounded up to 504). */
UNIT_FN void unit_luks1_default(struct unit_luks1 *h)
{
    memset(h, 0, sizeof(*h));
    strcpy(h->cipher, "aes");
    strcpy(h->mode, "xts-plain64");
    strcpy(h->hash, "sha256");
    h->payload_sectors = 4096;
    h->key_bytes = 64;
    h->digest_iterations = 1000;
    for (int i = 0; i < 8; i++) {
        h->slots[i].state = UNIT_L1_INACTIVE;
        h->slots[i].iterations = 0;
        h->slots[i].offset_sectors = 8 + (uint32_t)i * 504;
        h->slots[i].stripes = 4000;
    }
    h->slots[0].state = UNIT_L1_ACTIVE;
    h->slots[0].iterations = 1000;
}

/* Writes the 592-byte header to buf (which must hold it); the rest of buf
 * (key material) is left alone. */
UNIT_FN void unit_luks1_write(const struct unit_luks1 *h, uint8_t *buf)
{
    static const uint8_t magic[6] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };

    memset(buf, 0, 592);
    memcpy(buf, magic, 6);
    unit_put_be16(buf + 6, 1);
    memcpy(buf + 8, h->cipher, strnlen(h->cipher, 32));
    memcpy(buf + 40, h->mode, strnlen(h->mode, 32));
    memcpy(buf + 72, h->hash, strnlen(h->hash, 32));
    unit_put_be32(buf + 104, h->payload_sectors);
    unit_put_be32(buf + 108, h->key_bytes);
    for (int i = 0; i < 20; i++)
        buf[112 + i] = (uint8_t)(0xa0 + i);      /* mk-digest */
    for (int i = 0; i < 32; i++)
        buf[132 + i] = (uint8_t)(0x10 + i);      /* mk-digest-salt */
    unit_put_be32(buf + 164, h->digest_iterations);
    memcpy(buf + 168, "0f2a7e9c-5b1d-4c3e-8a6f-1d2e3f4a5b6c", 36);
    for (int i = 0; i < 8; i++) {
        uint8_t *s = buf + 208 + 48 * i;

        unit_put_be32(s, h->slots[i].state);
        unit_put_be32(s + 4, h->slots[i].iterations);
        if (h->slots[i].state == UNIT_L1_ACTIVE)
            for (int j = 0; j < 32; j++)
                s[8 + j] = (uint8_t)(0x40 + i + j);   /* salt */
        unit_put_be32(s + 40, h->slots[i].offset_sectors);
        unit_put_be32(s + 44, h->slots[i].stripes);
    }
}

/* ------------------------------------------------------------ LUKS2 */

/* A LUKS2 JSON area as cryptsetup 2.6.1 writes it for
 *   luksFormat --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000
 *              --offset 32768 --sector-size 4096
 * (hdr_size 16 KiB, keyslots area 32 KiB..16 MiB, one 512-bit AES-XTS
 * key slot, data at 16 MiB). */
#define UNIT_LUKS2_SALT "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define UNIT_LUKS2_KDF_PBKDF2 "\"kdf\":{\"type\":\"pbkdf2\",\"hash\":\"sha256\",\"iterations\":1000,"
#define UNIT_LUKS2_SLOT0                                                                              \
    "\"0\":{\"type\":\"luks2\",\"key_size\":64,"                                                       \
    "\"af\":{\"type\":\"luks1\",\"stripes\":4000,\"hash\":\"sha256\"},"                                \
    "\"area\":{\"type\":\"raw\",\"offset\":\"32768\",\"size\":\"258048\","                             \
    "\"encryption\":\"aes-xts-plain64\",\"key_size\":64}," UNIT_LUKS2_KDF_PBKDF2                     \
    "\"salt\":\"" UNIT_LUKS2_SALT "\"}}"
#define UNIT_LUKS2_SEG0                                                                               \
    "\"0\":{\"type\":\"crypt\",\"offset\":\"16777216\",\"size\":\"dynamic\",\"iv_tweak\":\"0\","      \
    "\"encryption\":\"aes-xts-plain64\",\"sector_size\":4096}"
#define UNIT_LUKS2_JSON                                                                               \
    "{\"keyslots\":{" UNIT_LUKS2_SLOT0 "},"                                                            \
    "\"tokens\":{},"                                                                                   \
    "\"segments\":{" UNIT_LUKS2_SEG0 "},"                                                              \
    "\"digests\":{\"0\":{\"type\":\"pbkdf2\",\"keyslots\":[\"0\"],\"segments\":[\"0\"],"              \
    "\"hash\":\"sha256\",\"iterations\":1000,\"salt\":\"" UNIT_LUKS2_SALT "\","                       \
    "\"digest\":\"" UNIT_LUKS2_SALT "\"}},"                                                            \
    "\"config\":{\"json_size\":\"12288\",\"keyslots_size\":\"16744448\"}}"
#define UNIT_LUKS2_HDR 16384u
/* 16 MiB of metadata plus 1 MiB of data. */
#define UNIT_LUKS2_FILE_SIZE (17u << 20)

/* Recomputes the sha256 checksum of the header copy at h (binary header
 * with the checksum field zeroed, then the JSON area). */
UNIT_FN void unit_luks2_csum(uint8_t *h, uint64_t hdr_size)
{
    unsigned int mdlen = 0;
    EVP_MD_CTX *m = EVP_MD_CTX_new();

    assert_non_null(m);
    memset(h + 448, 0, 64);
    assert_true(EVP_DigestInit_ex(m, EVP_sha256(), NULL));
    assert_true(EVP_DigestUpdate(m, h, (size_t)hdr_size));
    assert_true(EVP_DigestFinal_ex(m, h + 448, &mdlen));
    assert_int_equal(mdlen, 32);
    EVP_MD_CTX_free(m);
}

/* Writes one header copy (binary header + JSON area of hdr_size bytes) at h. */
UNIT_FN void unit_luks2_copy(uint8_t *h, uint64_t hdr_size, uint64_t hdr_offset, bool secondary,
                             uint64_t seqid, const char *json)
{
    static const uint8_t m1[6] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };
    static const uint8_t m2[6] = { 'S', 'K', 'U', 'L', 0xba, 0xbe };
    size_t jlen = strlen(json);

    assert_true(hdr_size > 4096 && jlen <= hdr_size - 4096);
    memset(h, 0, (size_t)hdr_size);
    memcpy(h, secondary ? m2 : m1, 6);
    unit_put_be16(h + 6, 2);
    unit_put_be64(h + 8, hdr_size);
    unit_put_be64(h + 16, seqid);
    memcpy(h + 72, "sha256", 6);
    for (int i = 0; i < 64; i++)
        h[104 + i] = (uint8_t)(secondary ? 0x80 + i : i);   /* salt: differs per copy */
    memcpy(h + 168, "6f4b2c1a-9d8e-4f7a-b3c2-1e0d9c8b7a6f", 36);
    unit_put_be64(h + 256, hdr_offset);
    memcpy(h + 4096, json, jlen);
    unit_luks2_csum(h, hdr_size);
}

/* Writes both copies (primary at 0, secondary at hdr_size) into buf, which
 * must hold 2 * hdr_size bytes.  json2 NULL means the same JSON twice. */
UNIT_FN void unit_luks2_write(uint8_t *buf, uint64_t hdr_size, const char *json, const char *json2)
{
    unit_luks2_copy(buf, hdr_size, 0, false, 3, json);
    unit_luks2_copy(buf + hdr_size, hdr_size, hdr_size, true, 3, json2 ? json2 : json);
}

#endif
