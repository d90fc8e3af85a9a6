/* declared.h: what an image's sidecar says it is.
 *
 * STORE/NAME.json may hold Glance image properties (at the top level, or
 * inside a "properties" object): disk_format ("luks" or "qcow2"),
 * os_encrypt_format ("LUKSv1", "LUKSv2"), os_decrypt_size, and
 * os_encrypt_key_id.  The bytes decide what an image is; the declaration
 * must agree with them, never the other way round.  Without a sidecar the
 * bytes alone decide.
 */
#ifndef SIF_DECLARED_H
#define SIF_DECLARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "verdict.h"

/* A sidecar larger than this is refused: Glance properties are a few KiB. */
#define SIF_SIDECAR_MAX (1u << 20)

struct sif_declared {
    bool present;
    char disk_format[16];        /* "" when not declared */
    char encrypt_format[16];     /* os_encrypt_format, "" when not declared */
    bool has_decrypt_size;
    uint64_t decrypt_size;       /* os_decrypt_size */
    char key_id[256];            /* os_encrypt_key_id (keys.h: SIF_KEY_ID_MAX) */            /* os_encrypt_key_id, "" when not declared */
};

/* Parses sidecar JSON (len bytes).  0, or -EINVAL with declared.invalid. */
int sif_declared_parse(const char *buf, size_t len, struct sif_declared *d, struct sif_verdict *v);

/* Reads dirfd/NAME.json when it exists (d->present false otherwise).
 * 0, or -errno with declared.invalid recorded. */
int sif_declared_load(int dirfd, const char *name, struct sif_declared *d, struct sif_verdict *v);

/* The detected outer format ("luks1", "luks2", "qcow2+luks") against the
 * declaration: 0 or -EPERM with declared.mismatch. */
int sif_declared_check_format(const struct sif_declared *d, const char *outer, struct sif_verdict *v);

/* The plaintext size against os_decrypt_size (raw LUKS only: for qcow2 the
 * property describes the decrypted qcow2 file, not its virtual disk).
 * 0 or -EPERM with declared.mismatch. */
int sif_declared_check_size(const struct sif_declared *d, const char *outer, uint64_t size, struct sif_verdict *v);

#endif
