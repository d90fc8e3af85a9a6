/* unlock.h: key slot unlocking in a sandboxed child process.
 *
 * libcryptsetup gives no way to bound the cost of a key slot, and a
 * crypt_device must not be shared between threads, so unlocking happens far
 * from the daemon: a helper process (started by sif_unlock_init() while the
 * caller is still single-threaded) forks one job per request; the job forks
 * a worker with RLIMIT_CPU and RLIMIT_AS set, no core dumps and no new
 * privileges, and kills it (SIGKILL) at the wall-clock limit.
 *
 * The worker never sees the image file: it opens a sealed memfd holding a
 * copy of the metadata bytes that luks.c already validated, loads it with
 * libcryptsetup, checks that libcryptsetup reads the same cipher, key size,
 * data offset, sector size and per-slot PBKDF costs as our parser did, then
 * tries only the key slots bound to the data segment.
 */
#ifndef SIF_UNLOCK_H
#define SIF_UNLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "luks.h"
#include "policy.h"
#include "verdict.h"

/* Starts the helper; call before any thread exists.  0 or -errno. */
int sif_unlock_init(void);
/* Stops the helper (also happens when the process exits). */
void sif_unlock_shutdown(void);

/* A sealed memfd holding meta_len bytes of metadata, sized to file_size
 * (the rest reads as zeros).  Returns the fd or -errno. */
int sif_unlock_make_meta(const uint8_t *meta, size_t meta_len, uint64_t file_size);

/* Unlocks with passphrase pass; on success copies info->key_bytes of
 * volume key into key (secure memory owned by the caller) and returns 0.
 * Otherwise returns -errno with a rejection (key.wrong, unlock.timeout,
 * unlock.limit, luks.mismatch, unlock.error) recorded in v. */
int sif_unlock(int meta_fd, const struct sif_luks_info *info, const struct sif_policy *p,
               const uint8_t *pass, size_t pass_len, uint8_t *key, struct sif_verdict *v);

#endif
