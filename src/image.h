/* image.h: one image of the store, from inspection to plaintext reads.
 *
 * An image is opened once (O_RDONLY|O_NOFOLLOW|O_CLOEXEC) and inspected by
 * sif_image_inspect(): the outer format is detected from the format table
 * (exactly one entry must claim the bytes), that format validates its
 * headers and unlocks, then the decrypted content is probed (probe.h).
 * Only an accepted image may be read; reads are thread-safe and take no
 * lock: each thread borrows a cipher context from the image's lock-free
 * pool.
 */
#ifndef SIF_IMAGE_H
#define SIF_IMAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "declared.h"
#include "keys.h"
#include "policy.h"
#include "verdict.h"

struct sif_crypt;
struct sif_crypt_ctx;
struct sif_image;

struct sif_inspect_env {
    const struct sif_policy *policy;
    const struct sif_keysrc *keys;
};

/* One outer format: a table entry, not a branch. */
struct sif_format {
    const char *name;
    /* The probe (probe_table.c) that recognises this format in the outer
     * file; any other probe that matches there makes the file ambiguous. */
    const char *probe;
    /* The outer format as verdicts name it ("luks2", "qcow2+luks"), from
     * the header bytes detect() accepted. */
    const char *(*outer_name)(const uint8_t *head, size_t head_len);
    /* Does this format claim the file?  head holds the first head_len bytes. */
    bool (*detect)(const uint8_t *head, size_t head_len, uint64_t file_size);
    /* Validates the headers and unlocks: sets img->size, img->unit,
     * img->crypt and the verdict's outer/encryption fields.  0 or -errno
     * with a rejection recorded in img->verdict. */
    int (*open)(struct sif_image *img, const struct sif_inspect_env *env, const uint8_t *head,
                size_t head_len);
    /* Reads plaintext [off, off + len), both multiples of img->unit and
     * inside img->size, into buf.  0 or -errno. */
    int (*read)(struct sif_image *img, struct sif_crypt_ctx *ctx, uint8_t *buf, size_t len, uint64_t off);
    /* Describes the content at off (< img->size): *data is false where it
     * provably reads as zeros; *len (> 0) is how far that holds.  NULL
     * means all data.  0 or -errno. */
    int (*extent)(struct sif_image *img, uint64_t off, bool *data, uint64_t *len);
    void (*close)(struct sif_image *img);
};

/* Cipher contexts kept per image: enough for every FUSE worker thread. */
#define SIF_CTX_POOL 16
/* Head of the outer file read for detection and header parsing: LUKS2 keeps
 * two header copies of up to 4 MiB each. */
#define SIF_HEAD_LEN (8u << 20)

struct sif_image {
    char *name;
    int fd;
    struct stat st;                 /* at open time */
    const struct sif_format *fmt;
    struct sif_verdict verdict;
    uint64_t size;                  /* plaintext size */
    uint64_t allocated;             /* bytes of it that hold data (st_blocks) */
    uint32_t unit;                  /* read alignment of fmt->read, <= 4096 */
    struct sif_crypt *crypt;
    bool plain;                     /* unencrypted (served by policy): no crypt */
    uint64_t data_offset;           /* format-specific */
    struct sif_declared declared;   /* the sidecar, set by the caller */
    void *priv;                     /* format-specific */
    _Atomic(struct sif_crypt_ctx *) pool[SIF_CTX_POOL];
};

/* The outer formats, NULL-terminated. */
extern const struct sif_format *const sif_formats[];
extern const struct sif_format sif_format_luks;
extern const struct sif_format sif_format_qcow2;
/* Unencrypted files that no format claims, when the policy serves them. */
extern const struct sif_format sif_format_plain;

/* Opens dirfd/name (dirfd may be AT_FDCWD).  Regular files only.
 * 0 or -errno. */
int sif_image_open(int dirfd, const char *name, const char *display_name, struct sif_image **out);
/* Runs the whole inspection; 0 when accepted, -errno otherwise (the verdict
 * says why). */
int sif_image_inspect(struct sif_image *img, const struct sif_inspect_env *env);
/* Reads plaintext at any offset and length; short at the end of the view.
 * Returns bytes read or -errno. */
ssize_t sif_image_pread(struct sif_image *img, void *buf, size_t len, uint64_t off);
void sif_image_free(struct sif_image *img);
/* lseek(SEEK_DATA or SEEK_HOLE) on the plaintext: 0 with the offset in
 * *out, -ENXIO past the end, or -errno. */
int sif_image_seek(struct sif_image *img, uint64_t off, int whence, uint64_t *out);

struct sif_luks_info;
/* The last steps of every LUKS-encrypted format, after its metadata passed
 * inspection and info passed the policy: load the image's passphrase,
 * unlock in the sandbox against a sealed copy of meta (meta_len bytes, in
 * a device of dev_size bytes) and set img->crypt for data units of
 * sector_size bytes.  0 or -errno with the rejection recorded. */
int sif_luks_open_crypt(struct sif_image *img, const struct sif_inspect_env *env,
                        const struct sif_luks_info *info, const uint8_t *meta, size_t meta_len,
                        uint64_t dev_size, uint32_t sector_size);

/* pread() of exactly len bytes; -EIO on a short read (truncated blob). */
int sif_pread_full(int fd, void *buf, size_t len, uint64_t off);

#endif
