/* keys.h: where passphrases come from, and the checks on key files.
 *
 * Three sources:
 *   keyfile=FILE      one passphrase for every image;
 *   keydir=DIR        DIR/<key id> when the image's sidecar declares an
 *                     os_encrypt_key_id and that file exists, else
 *                     DIR/NAME.key;
 *   key_command=PROG  PROG NAME KEY_ID is run directly (no shell) and its
 *                     standard output is the secret (a key manager's
 *                     client, e.g. for Barbican).
 *
 * A key file is refused (as ssh refuses a private key) when it is not a
 * regular file, when it is reached through a symbolic link, when group or
 * others have any permission on it, or when it belongs to neither root nor
 * the user running safeimgfs.  A key program is refused when it is not a
 * regular executable file owned by root or us, when group or others may
 * write it, or when a directory on its path may be changed by anyone else
 * (a program someone else can replace must not be trusted with our keys).
 *
 * What the source yields is turned into passphrases by the key format:
 *   raw  the bytes minus one trailing newline (the historical rule);
 *   hex  the bytes are the secret as is (no newline stripping: a binary
 *        secret may end in 0x0a) and the passphrase is its lowercase hex,
 *        as os-brick does with Barbican secrets; the legacy form of old
 *        Cinder volumes, each byte as %x without zero padding (Launchpad
 *        bug 1633518), is a second candidate.
 * Key material only ever lives in secure memory (secmem.h), is wiped when
 * released and is never logged; messages never quote it (nor a key
 * program's output).
 */
#ifndef SIF_KEYS_H
#define SIF_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "verdict.h"

/* Longest passphrase the unlock path accepts (unlock.c: SIF_PASS_MAX is the
 * same 8192 bytes); in raw format also the longest key file or key program
 * output, one trailing newline included. */
#define SIF_KEYFILE_MAX 8192

/* In hex format the passphrase is twice as long as the secret: a longer
 * secret would make a passphrase the unlock message cannot carry.
 * (Barbican symmetric keys are 16..64 bytes.) */
#define SIF_KEY_HEX_SECRET_MAX (SIF_KEYFILE_MAX / 2)

/* os_encrypt_key_id: 1..SIF_KEY_ID_MAX characters of [A-Za-z0-9._-], not
 * starting with '.' (so it is one plain file name in a key directory, never
 * "..", a hidden file or a path).  255 is NAME_MAX; Barbican ids are UUIDs. */
#define SIF_KEY_ID_MAX 255

/* key_command wall-clock limit when the caller sets none (timeout_s 0). */
#define SIF_KEY_COMMAND_TIMEOUT_DEFAULT 30

enum sif_keysrc_kind { SIF_KEYSRC_NONE, SIF_KEYSRC_FILE, SIF_KEYSRC_DIR, SIF_KEYSRC_COMMAND };

enum sif_key_format { SIF_KEY_FORMAT_RAW, SIF_KEY_FORMAT_HEX };

struct sif_keysrc {
    enum sif_keysrc_kind kind;
    char *path;                   /* the key file, key directory or key program */
    int dirfd;                    /* SIF_KEYSRC_DIR: the open directory */
    enum sif_key_format format;   /* set by the caller after sif_keysrc_open(); default raw */
    uint32_t timeout_s;           /* SIF_KEYSRC_COMMAND: wall-clock limit; 0 = default */
};

/* Opens the source (the directory for keydir) and checks it: a key file
 * with sif_key_check_fd(), a key program as described above (its path must
 * be absolute).  Leaves format raw and timeout_s 0.  0 or -errno, with a
 * message naming the path in err; call sif_keysrc_close() either way. */
int sif_keysrc_open(struct sif_keysrc *ks, enum sif_keysrc_kind kind, const char *path,
                    char *err, size_t errlen);
void sif_keysrc_close(struct sif_keysrc *ks);

/* What the programs' options say about keys. */
struct sif_key_opts {
    const char *keyfile, *keydir, *command;  /* at most one; none: no key */
    const char *format;                      /* "raw", "hex" or NULL (raw) */
    uint32_t timeout_s;                      /* the policy's key command limit */
};

/* The source the options name, opened, with its format and timeout set.
 * 0, or -EINVAL (two sources, an unknown format) or -errno with a message
 * in err; call sif_keysrc_close() either way. */
int sif_keysrc_open_opts(struct sif_keysrc *ks, const struct sif_key_opts *o, char *err, size_t errlen);

/* The candidate passphrases of one image, in secure memory, in the order to
 * try them.  form: "raw", "hex" or "hex-legacy"; source: "keyfile",
 * "keydir:id", "keydir:name" or "command" (both static strings, for the
 * verdict). */
#define SIF_KEY_CANDIDATES 2

struct sif_keyset {
    int n;
    struct {
        uint8_t *pass;
        size_t len;
        const char *form;
    } c[SIF_KEY_CANDIDATES];
    const char *source;
};

/* Loads the key of image `name`, whose sidecar declared key_id ("" or NULL:
 * none), into *out: at least one candidate on success.  The key id is
 * checked (key.id) and used by keydir and key_command; keyfile ignores it.
 * Returns 0, or -errno with the rejection recorded in v and *out empty:
 *   key.missing  no source, or no key file for the image;
 *   key.perms    a key file that others may access, a symbolic link, or
 *                owned by someone else;
 *   key.read     a key file that cannot be read, empty or too long;
 *   key.id       an invalid os_encrypt_key_id;
 *   key.command  the key program failed: exit status, signal, no output,
 *                too much output, or it could not be run;
 *   key.timeout  the key program ran longer than timeout_s and was killed
 *                with its whole process group.
 * Safe to call from several threads at once. */
int sif_keyset_load(const struct sif_keysrc *ks, const char *name, const char *key_id,
                    struct sif_keyset *out, struct sif_verdict *v);

/* Wipes and frees every candidate; safe on a zeroed or already freed set. */
void sif_keyset_free(struct sif_keyset *ks);

/* True when id is a valid key id (see SIF_KEY_ID_MAX). */
bool sif_key_id_valid(const char *id);

/* The old single-passphrase API, until every caller uses sif_keyset_load():
 * the first candidate of the set, into *pass (free with sif_secure_free). */
int sif_key_load(const struct sif_keysrc *ks, const char *name, uint8_t **pass, size_t *len,
                 struct sif_verdict *v);

/* The checks alone, on an open descriptor: 0 or -EPERM/-EINVAL with a
 * message in err. */
int sif_key_check_fd(int fd, char *err, size_t errlen);

#endif
