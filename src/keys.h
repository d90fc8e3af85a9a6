/* keys.h: where passphrases come from, and the checks on key files.
 *
 * A key file is refused (as ssh refuses a private key) when it is not a
 * regular file, when group or others have any permission on it, or when it
 * belongs to neither root nor the user running safeimgfs.  Its bytes, minus
 * one trailing newline, are the passphrase; they are read straight into
 * locked memory and never logged.
 */
#ifndef SIF_KEYS_H
#define SIF_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "verdict.h"

/* Longest key file accepted (see unlock.c: SIF_PASS_MAX). */
#define SIF_KEYFILE_MAX 8192

enum sif_keysrc_kind { SIF_KEYSRC_NONE, SIF_KEYSRC_FILE, SIF_KEYSRC_DIR };

struct sif_keysrc {
    enum sif_keysrc_kind kind;
    char *path;   /* the key file, or the key directory */
    int dirfd;    /* SIF_KEYSRC_DIR: the open directory */
};

/* Opens the source (the directory for keydir).  0 or -errno, with a message
 * in err. */
int sif_keysrc_open(struct sif_keysrc *ks, enum sif_keysrc_kind kind, const char *path,
                    char *err, size_t errlen);
void sif_keysrc_close(struct sif_keysrc *ks);

/* Reads and checks the passphrase for image `name` into secure memory
 * (*pass, free with sif_secure_free).  Returns 0, or -errno with a key.*
 * rejection (key.missing, key.perms, key.read) recorded in v. */
int sif_key_load(const struct sif_keysrc *ks, const char *name, uint8_t **pass, size_t *len,
                 struct sif_verdict *v);

/* The checks alone, on an open descriptor: 0 or -EPERM/-EINVAL with a
 * message in err. */
int sif_key_check_fd(int fd, char *err, size_t errlen);

#endif
