/* policy.c: the default policy. */
#include "config.h"

#include "policy.h"

#include <string.h>

void sif_policy_default(struct sif_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->pbkdf2_max_iterations = 10000000;
    p->digest_max_iterations = 10000000;
    p->argon2_max_memory_kib = 1048576;
    p->argon2_max_time = 1000;
    p->argon2_max_parallel = 4;
    p->argon2_max_cost = 16ULL * 1048576;
    sif_policy_set_unlock_timeout(p, 60);
    p->unlock_mem_bytes = 1048576ULL * 1024 + 512ULL * 1024 * 1024;
}

void sif_policy_set_unlock_timeout(struct sif_policy *p, uint32_t seconds)
{
    p->unlock_timeout_s = seconds;
    p->unlock_cpu_s = seconds * (p->argon2_max_parallel ? p->argon2_max_parallel : 1);
}
