/* luks.h: pure LUKS1/LUKS2 header parsing and policy checks.
 *
 * Trust boundary: the bytes passed in come straight from an untrusted image.
 * Nothing here does I/O or runs a KDF: the parser turns bytes into a
 * struct sif_luks_info (rejecting anything malformed or inconsistent), and
 * sif_luks_check() decides whether the policy allows unlocking it.  Only
 * after both pass may a key slot be tried (see unlock.h), and libcryptsetup
 * then sees a private copy of exactly the bytes checked here.
 */
#ifndef SIF_LUKS_H
#define SIF_LUKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "verdict.h"

#define SIF_LUKS_MAGIC_LEN 6
#define SIF_LUKS1_HDR_LEN 592
#define SIF_LUKS1_SLOTS 8
/* LUKS2 allows 32 key slots (ids 0..31). */
#define SIF_LUKS2_SLOTS 32
#define SIF_LUKS_SLOTS_MAX SIF_LUKS2_SLOTS
/* LUKS2 hdr_size is 16 KiB..4 MiB, so both header copies lie in 8 MiB. */
#define SIF_LUKS2_HDR_MAX (4u << 20)
/* What the parser needs to see from the start of the file. */
#define SIF_LUKS_PARSE_LEN (2u * SIF_LUKS2_HDR_MAX)
/* cryptsetup caps the LUKS2 key slot area at 128 MiB; the metadata we copy
 * for unlocking (both headers plus key slots) is at most this. */
#define SIF_LUKS_META_MAX ((128u << 20) + SIF_LUKS_PARSE_LEN)

enum sif_kdf { SIF_KDF_NONE, SIF_KDF_PBKDF2, SIF_KDF_ARGON2I, SIF_KDF_ARGON2ID };

struct sif_luks_slot {
    bool active;
    bool bound;           /* assigned to the data segment's digest */
    enum sif_kdf kdf;
    char hash[32];        /* pbkdf2 hash */
    uint64_t iterations;  /* pbkdf2 iterations or argon2 passes */
    uint32_t memory_kib;  /* argon2 */
    uint32_t parallel;    /* argon2 */
    uint32_t key_bytes;
    uint64_t area_offset; /* bytes */
    uint64_t area_len;    /* bytes */
};

struct sif_luks_info {
    int version;                /* 1 or 2 */
    char cipher[32];            /* "aes" */
    char mode[32];              /* "xts-plain64" */
    uint32_t key_bytes;         /* volume key length */
    uint32_t sector_size;       /* data unit, bytes */
    uint64_t data_offset;       /* bytes from the start of the file */
    uint64_t data_len;          /* bytes of plaintext the view serves */
    uint64_t meta_len;          /* bytes [0, meta_len) hold all metadata */
    uint32_t digest_iterations; /* highest digest PBKDF2 cost */
    int nslots;                 /* slots[] entries in use (max slot id + 1) */
    struct sif_luks_slot slots[SIF_LUKS_SLOTS_MAX];
};

const char *sif_kdf_name(enum sif_kdf k);

/* True when buf starts with a LUKS magic of version 1 or 2. */
bool sif_luks_detect(const uint8_t *buf, size_t len);

/* Parses the header in buf (the first len bytes of a file of file_size
 * bytes; len >= min(file_size, SIF_LUKS_PARSE_LEN)).  Returns 0, or -EINVAL
 * with a "luks.*" rejection recorded in v. */
int sif_luks_parse(const uint8_t *buf, size_t len, uint64_t file_size, struct sif_luks_info *info,
                   struct sif_verdict *v);

/* Parses a LUKS1 header embedded in a qcow2 image: buf holds the whole
 * encryption header region of region_len bytes (key material offsets are
 * relative to it).  The data segment is the qcow2 file's, so the payload
 * offset is only checked for consistency.  LUKS2 is refused, as qemu does.
 * Returns 0 or -EINVAL with a rejection recorded in v. */
int sif_luks_parse_embedded(const uint8_t *buf, size_t region_len, struct sif_luks_info *info,
                            struct sif_verdict *v);

/* Copies what an operator should see (cipher, key size, sector size, data
 * offset, every active key slot's KDF and cost) into v. */
void sif_luks_describe(const struct sif_luks_info *info, struct sif_verdict *v);

/* Applies the policy to a parsed header: cipher, key size, sector size and
 * every key slot's and digest's PBKDF cost.  Returns 0 or -EPERM with the
 * rejection recorded in v. */
int sif_luks_check(const struct sif_luks_info *info, const struct sif_policy *p,
                   struct sif_verdict *v);

#endif
