/* checked.h: overflow-checked arithmetic for offsets and lengths taken from
 * untrusted headers.  Each returns true when the result is valid.
 */
#ifndef SIF_CHECKED_H
#define SIF_CHECKED_H

#include <stdbool.h>
#include <stdint.h>

static inline bool sif_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static inline bool sif_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* True when [off, off + len) lies inside [0, limit). */
static inline bool sif_range_ok(uint64_t off, uint64_t len, uint64_t limit)
{
    return off <= limit && len <= limit - off;
}

/* True when [a, a + alen) and [b, b + blen) overlap; both ranges must
 * already be known not to wrap. */
static inline bool sif_ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

static inline bool sif_is_pow2(uint64_t v)
{
    return v && !(v & (v - 1));
}

#endif
