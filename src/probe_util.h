/* probe_util.h: bounded access to the probe regions and detail text, shared
 * by the match functions (probe_formats.c, probe_vmdk.c, probe_layout.c).
 *
 * Every read of content goes through sif_head_at()/sif_tail_at()/
 * sif_content_at(), which
 * return NULL unless the whole range lies inside the region, with the
 * arithmetic checked for overflow; a match function never indexes head or
 * tail directly past what these returned.
 */
#ifndef SIF_PROBE_UTIL_H
#define SIF_PROBE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "checked.h"
#include "probe.h"

/* head[off, off + len), or NULL when it is not all inside the head. */
static inline const uint8_t *sif_head_at(const struct sif_probe_input *in, uint64_t off, uint64_t len)
{
    if (!in->head || !sif_range_ok(off, len, in->head_len))
        return NULL;
    return in->head + off;
}

/* The content's bytes [off, off + len) (an absolute offset), taken from the
 * tail region, or NULL when they are not all inside it. */
static inline const uint8_t *sif_tail_at(const struct sif_probe_input *in, uint64_t off, uint64_t len)
{
    uint64_t tail_start;

    if (!in->tail || in->tail_len > in->size)
        return NULL;
    tail_start = in->size - in->tail_len;
    if (off < tail_start || !sif_range_ok(off - tail_start, len, in->tail_len))
        return NULL;
    return in->tail + (off - tail_start);
}

/* The content's bytes [off, off + len) from the head, the tail or an extra
 * region, or NULL when no region holds them all. */
static inline const uint8_t *sif_content_at(const struct sif_probe_input *in, uint64_t off, uint64_t len)
{
    const uint8_t *p = sif_head_at(in, off, len);

    if (p || (p = sif_tail_at(in, off, len)))
        return p;
    for (int i = 0; i < in->n_extra; i++) {
        const struct sif_probe_extra *x = &in->extra[i];

        if (x->data && off >= x->off && sif_range_ok(off - x->off, len, x->len))
            return x->data + (off - x->off);
    }
    return NULL;
}

/* Adds the region [off, off + len) to out[*n] when there is room and it
 * is not empty. */
static inline void sif_want(struct sif_probe_region *out, int max, int *n, uint64_t off, uint64_t len)
{
    if (len && *n < max)
        out[(*n)++] = (struct sif_probe_region){ off, len };
}

/* True when the head holds magic at off. */
static inline bool sif_head_is(const struct sif_probe_input *in, uint64_t off, const void *magic, size_t len)
{
    const uint8_t *p = sif_head_at(in, off, len);

    return p && memcmp(p, magic, len) == 0;
}

/* ------------------------------------------------------------ detail text */

/* Appends to a fixed buffer (a hit's detail); output that does not fit is
 * cut, never overflows, and the buffer stays NUL-terminated. */
struct sif_text {
    char *buf;
    size_t cap;
    size_t len;
};

static inline void sif_text_init(struct sif_text *t, char *buf, size_t cap)
{
    t->buf = buf;
    t->cap = cap;
    t->len = 0;
    if (cap)
        buf[0] = 0;
}

static inline __attribute__((format(printf, 2, 3))) void sif_text_add(struct sif_text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->len + 1 >= t->cap)
        return;
    va_start(ap, fmt);
    n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    t->len = (size_t)n < t->cap - t->len ? t->len + (size_t)n : t->cap - 1;
}

/* Appends the untrusted bytes s[0, len) as text: printable ASCII as is,
 * everything else as '?', at most max characters ("..." marks a cut). */
static inline void sif_text_bytes(struct sif_text *t, const uint8_t *s, size_t len, size_t max)
{
    size_t i;

    for (i = 0; i < len && i < max && t->len + 1 < t->cap; i++) {
        uint8_t c = s[i];

        t->buf[t->len++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    t->buf[t->len] = 0;
    if (i < len)
        sif_text_add(t, "...");
}

/* A NUL-padded fixed-size field (a LUKS cipher name): its length up to
 * the first NUL. */
static inline size_t sif_field_len(const uint8_t *p, size_t cap)
{
    const uint8_t *z = memchr(p, 0, cap);

    return z ? (size_t)(z - p) : cap;
}

#endif
