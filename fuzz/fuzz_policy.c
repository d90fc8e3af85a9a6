/* fuzz_policy.c: libFuzzer harness for the policy file parser (policy.h).
 *
 * The input is the text of a policy file, in an exact-size buffer so ASan
 * sees any read past the end.  Contract checked:
 *   - sif_policy_parse() returns 0 or -EINVAL, and always leaves a
 *     NUL-terminated message (empty on success, naming the file otherwise);
 *   - a refused input leaves the policy exactly as it was;
 *   - an accepted policy is within the schema (every value in its
 *     documented range, at least one outer format, cipher and sector
 *     size, only key sizes src/sector.c implements), prints with
 *     sif_policy_to_json(), and that text parses back to an equal policy.
 */
#include "config.h"

#include <errno.h>

#include "fuzz.h"
#include "policy.h"
#include "sector.h"

#define FUZZ_NAME "fuzz.json"

/* The schema's invariants (safeimgfs.conf(5)). */
static void fuzz_policy_sane(const struct sif_policy *p)
{
    static const struct {
        const char *cipher, *mode;
    } ciphers[SIF_POLICY_CIPHERS] = {
        [SIF_POLICY_AES_XTS_PLAIN64] = { "aes", "xts-plain64" },
        [SIF_POLICY_AES_CBC_ESSIV_SHA256] = { "aes", "cbc-essiv:sha256" },
    };
    uint32_t any_cipher = 0;

    FUZZ_CHECK(p->pbkdf2_max_iterations >= 1000 && p->pbkdf2_max_iterations <= 1000000000);
    FUZZ_CHECK(p->digest_max_iterations >= 1000 && p->digest_max_iterations <= 1000000000);
    FUZZ_CHECK(p->argon2_max_memory_kib >= 32 && p->argon2_max_memory_kib <= 4194304);
    FUZZ_CHECK(p->argon2_max_time >= 1 && p->argon2_max_time <= 1000000);
    FUZZ_CHECK(p->argon2_max_parallel >= 1 && p->argon2_max_parallel <= 64);
    FUZZ_CHECK(p->argon2_max_cost >= 1 && p->argon2_max_cost <= (1ULL << 32));
    FUZZ_CHECK(p->unlock_timeout_s >= 1 && p->unlock_timeout_s <= 3600);
    FUZZ_CHECK(p->unlock_cpu_s >= 1 && p->unlock_cpu_s <= 3600 * 64);
    FUZZ_CHECK(p->unlock_mem_bytes <= (64ULL << 30));
    FUZZ_CHECK(p->unlock_mem_bytes >= (uint64_t)p->argon2_max_memory_kib * 1024 + (64ULL << 20));
    FUZZ_CHECK(p->outer_allowed != 0 && (p->outer_allowed & ~(unsigned)SIF_OUTER_ALL) == 0);
    for (int c = 0; c < SIF_POLICY_CIPHERS; c++) {
        any_cipher |= p->cipher_key_bits[c];
        for (uint32_t n = 0; n < 32; n++)
            if ((p->cipher_key_bits[c] >> n) & 1)
                FUZZ_CHECK(sif_cipher_lookup(ciphers[c].cipher, ciphers[c].mode, 8 * (n + 1)) != NULL);
    }
    FUZZ_CHECK(any_cipher != 0);
    FUZZ_CHECK(p->sector_sizes != 0 && (p->sector_sizes & ~0xfu) == 0);
    FUZZ_CHECK(p->key_command_timeout_s >= 1 && p->key_command_timeout_s <= 3600);
    FUZZ_CHECK((p->inner_layouts & ~(unsigned)SIF_LAYOUT_ALL) == 0);
    FUZZ_CHECK(p->max_virtual_size >= 512 && p->max_virtual_size <= (1ULL << 60));
    FUZZ_CHECK(p->unencrypted == SIF_UNENCRYPTED_HIDE || p->unencrypted == SIF_UNENCRYPTED_SERVE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sif_policy p, before, q;
    char err[512], err2[512];
    char *text = malloc(size ? size : 1), *json = NULL;
    int r;

    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    memset(&p, 0xa5, sizeof(p));
    before = p;
    memset(err, 'x', sizeof(err));
    r = sif_policy_parse(&p, text, size, FUZZ_NAME, err, sizeof(err));
    free(text);
    FUZZ_CHECK(r == 0 || r == -EINVAL);
    FUZZ_CHECK(memchr(err, 0, sizeof(err)) != NULL);
    if (r) {
        FUZZ_CHECK(memcmp(&p, &before, sizeof(p)) == 0);
        FUZZ_CHECK(strncmp(err, FUZZ_NAME ":", strlen(FUZZ_NAME ":")) == 0);
        FUZZ_CHECK(strlen(err) > strlen(FUZZ_NAME ": "));
        return 0;
    }
    FUZZ_CHECK(err[0] == 0);
    fuzz_policy_sane(&p);
    FUZZ_CHECK(sif_policy_to_json(&p, &json) == 0 && json != NULL);
    r = sif_policy_parse(&q, json, strlen(json), "round-trip", err2, sizeof(err2));
    if (r)
        fprintf(stderr, "%s\n%s", err2, json);
    FUZZ_CHECK(r == 0);
    FUZZ_CHECK(sif_policy_equal(&p, &q));
    free(json);
    return 0;
}
