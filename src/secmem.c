/* secmem.c: locked, undumpable, wiped memory for secrets. */
#include "config.h"

#include "secmem.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

/* The mapping starts with a small header recording its length; the caller's
 * pointer follows it, 64-byte aligned. */
#define SIF_SECMEM_HDR 64

void sif_wipe(void *p, size_t len)
{
    if (p && len)
        explicit_bzero(p, len);
}

void *sif_secure_alloc(size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t total;
    uint8_t *base;

    if (len > SIZE_MAX - SIF_SECMEM_HDR - page) {
        errno = ENOMEM;
        return NULL;
    }
    total = (len + SIF_SECMEM_HDR + page - 1) / page * page;
    base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    if (mlock(base, total) != 0) {
        int e = errno;
        munmap(base, total);
        errno = e;
        return NULL;
    }
    (void)madvise(base, total, MADV_DONTDUMP);
#ifdef MADV_WIPEONFORK
    (void)madvise(base, total, MADV_WIPEONFORK);
#endif
    memcpy(base, &total, sizeof(total));
    return base + SIF_SECMEM_HDR;
}

void sif_secure_free(void *p)
{
    uint8_t *base;
    size_t total;

    if (!p)
        return;
    base = (uint8_t *)p - SIF_SECMEM_HDR;
    memcpy(&total, base, sizeof(total));
    explicit_bzero(base, total);
    munlock(base, total);
    munmap(base, total);
}

int sif_harden_process(void)
{
    struct rlimit no_core = { 0, 0 };

    if (setrlimit(RLIMIT_CORE, &no_core) != 0)
        return -errno;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return -errno;
    return 0;
}
