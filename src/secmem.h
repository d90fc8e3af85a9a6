/* secmem.h: memory for secrets (passphrases, volume keys).
 *
 * Allocations are page-backed, mlock()ed so they never reach swap, marked
 * MADV_DONTDUMP so they never reach a core dump and MADV_WIPEONFORK so a
 * child never inherits them, and wiped before they are unmapped.
 */
#ifndef SIF_SECMEM_H
#define SIF_SECMEM_H

#include <stddef.h>

/* SIF_ASAN: built with AddressSanitizer, which reserves terabytes of
 * address space (no RLIMIT_AS, no mlockall under it). */
#if defined(__SANITIZE_ADDRESS__)
#define SIF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIF_ASAN 1
#endif
#endif

/* Zeroed, locked memory of at least len bytes, or NULL (errno set). */
void *sif_secure_alloc(size_t len);

/* Wipes and releases memory from sif_secure_alloc(); NULL is a no-op. */
void sif_secure_free(void *p);

/* Wipes len bytes in a way the compiler cannot elide. */
void sif_wipe(void *p, size_t len);

/* Process-wide hardening: no core dumps, not ptrace-attachable by other
 * users' processes.  Returns 0 or -errno. */
int sif_harden_process(void);

/* Locks all present and future memory of the process (pages are locked
 * as they are touched), so that secrets held by libraries (OpenSSL's
 * expanded key schedules, libcryptsetup's buffers) never reach swap.  Done
 * only where locking cannot make later allocations fail: with an unlimited
 * RLIMIT_MEMLOCK (as root by default).  Returns 0, or -errno when memory
 * stays unlocked. */
int sif_lock_all_memory(void);

#endif
