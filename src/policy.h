/* policy.h: what inspection accepts, and the policy file that narrows it.
 *
 * The defaults accept what cryptsetup 2.6 and qemu 7.2 create with their
 * default settings on current hardware, with head-room, and refuse the costs
 * an attacker would choose to pin a CPU or exhaust memory.  A policy file
 * (safeimgfs.conf(5): JSON, comments allowed) overrides them; nothing else
 * reads constants.
 *
 * Trust boundary: the policy file is the operator's, but it is still parsed
 * as untrusted text (size and nesting caps, every value range-checked), so
 * a typo is an error that names the file, the line or the key, never a
 * silently different policy.  The struct holds no pointers: the unlock
 * helper receives a copy of it through a socket.
 */
#ifndef SIF_POLICY_H
#define SIF_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A policy file larger than this is refused: the whole schema with a
 * comment on every line is a few KiB. */
#define SIF_POLICY_FILE_MAX (1u << 20)
/* JSON nesting allowed in a policy file (json-c counts every value level):
 * the schema needs 4 (top object, "ciphers", a key size array, a number). */
#define SIF_POLICY_DEPTH 8

/* outer_allowed bits ("outer_formats"). */
#define SIF_OUTER_LUKS1 (1u << 0)
#define SIF_OUTER_LUKS2 (1u << 1)
#define SIF_OUTER_QCOW2_LUKS (1u << 2)
#define SIF_OUTER_ALL (SIF_OUTER_LUKS1 | SIF_OUTER_LUKS2 | SIF_OUTER_QCOW2_LUKS)

/* inner_layouts bits ("inner.layouts"): the probe formats of partition
 * tables and filesystems that count as a raw disk. */
#define SIF_LAYOUT_MBR (1u << 0)
#define SIF_LAYOUT_GPT (1u << 1)
#define SIF_LAYOUT_ISO (1u << 2)
#define SIF_LAYOUT_UDF (1u << 3)
#define SIF_LAYOUT_ALL (SIF_LAYOUT_MBR | SIF_LAYOUT_GPT | SIF_LAYOUT_ISO | SIF_LAYOUT_UDF)

/* The cipher specifications a policy can name (keys of "ciphers", spelled
 * as LUKS and cryptsetup spell them: "aes-xts-plain64"); src/sector.c
 * implements each. */
enum sif_policy_cipher {
    SIF_POLICY_AES_XTS_PLAIN64,      /* "aes-xts-plain64" */
    SIF_POLICY_AES_CBC_ESSIV_SHA256, /* "aes-cbc-essiv:sha256" */
    SIF_POLICY_CIPHERS
};

/* The bit of cipher_key_bits[] standing for a key of `bits` bits.  Every
 * AES key size, single or doubled for XTS, is a multiple of 64 bits, so
 * bit n stands for 64 * (n + 1) bits (up to 2048). */
#define SIF_POLICY_KEY_BIT(bits) (1u << ((bits) / 64u - 1u))

/* "unencrypted": what becomes of an image with no encryption at all. */
enum sif_unencrypted {
    SIF_UNENCRYPTED_HIDE,  /* rejected, never served (the default) */
    SIF_UNENCRYPTED_SERVE, /* inspected like the plaintext of an encrypted one, then served */
};

struct sif_policy {
    /* PBKDF2 iterations of one key slot.  cryptsetup and qemu calibrate to
     * 2 s of CPU (--iter-time 2000), which is a few million iterations of
     * PBKDF2-SHA256 on today's CPUs; 10M leaves 2-3x head-room. */
    uint64_t pbkdf2_max_iterations;
    /* PBKDF2 iterations of a digest (LUKS1 mk-digest, LUKS2 digests[]):
     * calibrated to 1/8 of the key slot time, so the same cap is generous. */
    uint64_t digest_max_iterations;
    /* Argon2 memory of one key slot, KiB.  cryptsetup's default maximum is
     * 1 GiB; it never picks more on its own. */
    uint32_t argon2_max_memory_kib;
    /* Argon2 passes of one key slot: cryptsetup calibrates time against
     * memory; with small memory it picks many passes. */
    uint32_t argon2_max_time;
    /* Argon2 lanes (threads).  cryptsetup's default maximum is 4. */
    uint32_t argon2_max_parallel;
    /* Argon2 total work, passes x KiB: bounds time even when both factors
     * are individually within their caps (default 16 GiB-passes, about
     * 4x cryptsetup's 4 passes over 1 GiB). */
    uint64_t argon2_max_cost;
    /* The unlock child is killed after this many wall-clock seconds. */
    uint32_t unlock_timeout_s;
    /* RLIMIT_CPU of the unlock child, seconds over all its threads: a
     * backstop behind the wall clock, so the wall-clock limit times the
     * Argon2 lanes that may run at once. */
    uint32_t unlock_cpu_s;
    /* RLIMIT_AS of the unlock child, bytes: the Argon2 memory cap plus room
     * for the program and libraries. */
    uint64_t unlock_mem_bytes;

    /* Outer formats served at all: SIF_OUTER_* bits (check outer.policy). */
    unsigned outer_allowed;
    /* Per enum sif_policy_cipher, the allowed volume key sizes as
     * SIF_POLICY_KEY_BIT() bits; 0 forbids the cipher (check luks.cipher). */
    uint32_t cipher_key_bits[SIF_POLICY_CIPHERS];
    /* LUKS2 encryption sector sizes: bit k allows 512 << k bytes (LUKS1,
     * and so qcow2, is always 512 and not governed by this). */
    uint32_t sector_sizes;
    /* Wall-clock limit of a key_command= program, seconds. */
    uint32_t key_command_timeout_s;
    /* Layouts that count as a raw disk: SIF_LAYOUT_* bits. */
    unsigned inner_layouts;
    /* An ISO 9660/UDF filesystem together with one MBR or GPT table (the
     * hybrid layout of installer images) counts as raw. */
    bool iso_hybrid;
    /* Largest plaintext view served, bytes (check size.limit). */
    uint64_t max_virtual_size;
    enum sif_unencrypted unencrypted;
};

void sif_policy_default(struct sif_policy *p);
/* Sets the wall-clock limit and the CPU limit that goes with it (seconds
 * times argon2_max_parallel): the -o unlock_timeout= option, applied after
 * a policy file, overrides both of the file's values. */
void sif_policy_set_unlock_timeout(struct sif_policy *p, uint32_t seconds);

/* Parses the policy file text (len bytes; name is what error messages call
 * it, usually its path) over the defaults: every key is optional.  Returns
 * 0 and sets *p, or -EINVAL (-ENOMEM) leaving *p alone and a message in
 * err: "NAME:LINE:COL: ..." for a syntax error, "NAME: key.path: ..." for a
 * value the schema refuses.  err is always NUL-terminated when errlen > 0
 * (and empty on success). */
int sif_policy_parse(struct sif_policy *p, const char *text, size_t len, const char *name, char *err,
                     size_t errlen);

/* Reads the file at path and parses it as above (name = path).  Refuses
 * anything but a regular file of at most SIF_POLICY_FILE_MAX bytes without
 * blocking on a FIFO.  Returns 0, -EINVAL (syntax or schema error, not a
 * regular file), -EISDIR, -EFBIG or another -errno of open/read, with a
 * message in err; *p is only modified on success. */
int sif_policy_load(struct sif_policy *p, const char *path, char *err, size_t errlen);

/* The policy as a policy file of the same schema, every key present
 * (pretty-printed, ending in a newline; free() it).  Parsing the output
 * gives back an equal policy.  0 or -ENOMEM. */
int sif_policy_to_json(const struct sif_policy *p, char **out);

/* True when both policies allow exactly the same (field by field). */
bool sif_policy_equal(const struct sif_policy *a, const struct sif_policy *b);

/* Queries, for the checks that enforce the policy. */

/* A LUKS cipher ("aes"), mode ("xts-plain64") and volume key length in
 * bytes; false for anything the policy cannot name. */
bool sif_policy_cipher_allowed(const struct sif_policy *p, const char *cipher, const char *mode,
                               uint32_t key_bytes);
/* A LUKS2 encryption sector size in bytes. */
bool sif_policy_sector_size_allowed(const struct sif_policy *p, uint32_t sector_size);
/* An outer format as a verdict names it ("luks1", "luks2", "qcow2+luks")
 * or as the policy file does ("qcow2-luks"); false for any other name. */
bool sif_policy_outer_allowed(const struct sif_policy *p, const char *outer);
/* A probe's layout format name ("mbr", "gpt", "iso", "udf"); false for
 * any other name. */
bool sif_policy_layout_allowed(const struct sif_policy *p, const char *format);

#endif
