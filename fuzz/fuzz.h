/* fuzz.h: helpers shared by the libFuzzer harnesses (fuzz_*.c).
 *
 * Each harness checks the documented contract of the functions it drives,
 * not only memory safety: FUZZ_CHECK aborts (a libFuzzer crash, with the
 * input saved) and names the broken property.
 */
#ifndef SIF_FUZZ_H
#define SIF_FUZZ_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verdict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                        \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "%s:%d: contract violated: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

static inline uint64_t fuzz_le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static inline uint64_t fuzz_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static inline uint32_t fuzz_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void fuzz_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* True when the fixed-size text field s is NUL-terminated. */
#define FUZZ_TERMINATED(s) (memchr((s), 0, sizeof(s)) != NULL)

/* Every text field of a verdict is terminated, and a decided verdict names
 * its check. */
static inline void fuzz_verdict_fields_ok(const struct sif_verdict *v)
{
    FUZZ_CHECK(v->state == SIF_PENDING || v->state == SIF_ACCEPTED || v->state == SIF_REJECTED);
    FUZZ_CHECK(FUZZ_TERMINATED(v->check) && FUZZ_TERMINATED(v->reason) && FUZZ_TERMINATED(v->outer) &&
               FUZZ_TERMINATED(v->inner) && FUZZ_TERMINATED(v->cipher));
    FUZZ_CHECK(v->state == SIF_PENDING || v->check[0] != 0);
    FUZZ_CHECK(v->n_inner >= 0 && v->n_inner <= SIF_VERDICT_MATCHES);
    FUZZ_CHECK(v->n_outer >= 0 && v->n_outer <= SIF_VERDICT_MATCHES);
    FUZZ_CHECK(v->nslots >= 0 && v->nslots <= SIF_VERDICT_SLOTS);
}

/* The same, and the JSON and line renderings work on whatever is in it
 * (json-c allocations: once per input and parser, not per check). */
static inline void fuzz_verdict_ok(const struct sif_verdict *v)
{
    char line[SIF_REASON_LEN + 128];
    struct json_object *o;

    fuzz_verdict_fields_ok(v);
    o = sif_verdict_json("fuzz.img", v);
    FUZZ_CHECK(o != NULL);
    FUZZ_CHECK(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) != NULL);
    json_object_put(o);
    sif_verdict_line("fuzz.img", v, line, sizeof(line));
}

/* A rejection recorded by a parser: an error code, a REJECTED verdict and
 * a check id in the given family ("luks.", "qcow2.", "inner."). */
static inline void fuzz_rejected_ok(int r, const struct sif_verdict *v, const char *family)
{
    FUZZ_CHECK(r < 0);
    FUZZ_CHECK(v->state == SIF_REJECTED);
    FUZZ_CHECK(v->check[0] != 0);
    FUZZ_CHECK(strncmp(v->check, family, strlen(family)) == 0);
    FUZZ_CHECK(v->reason[0] != 0);
    fuzz_verdict_fields_ok(v);
}

#endif
