/* secmem.c: locked, undumpable, wiped memory for secrets. */
#include "config.h"

#include "secmem.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <sys/syscall.h>
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


int sif_lock_all_memory(void)
{
#ifdef SIF_ASAN
    /* AddressSanitizer's shadow memory cannot be locked. */
    return -ENOTSUP;
#else
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct caps[2];
    struct rlimit rl;
    bool ipc_lock;

    memset(caps, 0, sizeof(caps));
    ipc_lock = syscall(SYS_capget, &hdr, caps) == 0 && (caps[0].effective & (1u << CAP_IPC_LOCK));
    if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0)
        return -errno;
    if (!ipc_lock && rl.rlim_cur != RLIM_INFINITY)
        return -EPERM;
    if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0)
        return -errno;
    return 0;
#endif
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
