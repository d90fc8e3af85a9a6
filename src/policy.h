/* policy.h: what inspection accepts.
 *
 * The defaults accept what cryptsetup 2.6 and qemu 7.2 create with their
 * default settings on current hardware, with head-room, and refuse the costs
 * an attacker would choose to pin a CPU or exhaust memory.  A policy file
 * (a later feature) overrides these fields; nothing else reads constants.
 */
#ifndef SIF_POLICY_H
#define SIF_POLICY_H

#include <stdint.h>

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
};

void sif_policy_default(struct sif_policy *p);
/* Sets the wall-clock limit and the CPU limit that goes with it. */
void sif_policy_set_unlock_timeout(struct sif_policy *p, uint32_t seconds);

#endif
