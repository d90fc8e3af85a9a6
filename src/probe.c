/* probe.c: the engine: run the table, decide on the hits. */
#include "config.h"

#include "probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "policy.h"

void sif_probe_rules_default(struct sif_probe_rules *r)
{
    memset(r, 0, sizeof(*r));
    r->allow_iso_hybrid = true;
    r->layouts = SIF_LAYOUT_ALL;
}

/* The SIF_LAYOUT_* bit of a layout probe. */
static unsigned sif_layout_bit(const struct sif_probe *p)
{
    static const struct {
        const char *format;
        unsigned bit;
    } bits[] = { { "mbr", SIF_LAYOUT_MBR }, { "gpt", SIF_LAYOUT_GPT }, { "iso", SIF_LAYOUT_ISO }, { "udf", SIF_LAYOUT_UDF } };

    for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
        if (!strcmp(p->format, bits[i].format))
            return bits[i].bit;
    return 0;
}

/* True when [off, off + len) lies inside the head, the tail or a region
 * already read. */
static bool sif_covered(const struct sif_probe_input *in, uint64_t off, uint64_t len)
{
    if (sif_range_ok(off, len, in->head_len))
        return true;
    if (in->tail_len <= in->size && off >= in->size - in->tail_len &&
        sif_range_ok(off - (in->size - in->tail_len), len, in->tail_len))
        return true;
    for (int i = 0; i < in->n_extra; i++)
        if (off >= in->extra[i].off && sif_range_ok(off - in->extra[i].off, len, in->extra[i].len))
            return true;
    return false;
}

static int sif_gather_region(struct sif_probe_content *c, const struct sif_probe_region *r, sif_probe_read_fn rd,
                             void *ctx)
{
    struct sif_probe_input *in = &c->in;
    uint64_t len = r->len;
    uint8_t *buf;
    int e;

    if (len == 0 || r->off >= in->size)
        return 0;
    if (len > in->size - r->off)
        len = in->size - r->off;
    if (len > SIF_PROBE_REGION)
        len = SIF_PROBE_REGION;
    if (sif_covered(in, r->off, len) || in->n_extra >= SIF_PROBE_EXTRA_MAX)
        return 0;
    buf = malloc((size_t)len);
    if (!buf)
        return -ENOMEM;
    c->owned[2 + in->n_extra] = buf;
    e = rd(ctx, buf, (size_t)len, r->off);
    if (e)
        return e;
    c->extra[in->n_extra] = (struct sif_probe_extra){ r->off, (size_t)len, buf };
    in->n_extra++;
    return 0;
}

int sif_probe_gather(struct sif_probe_content *c, uint64_t size, const uint8_t *head, size_t head_len,
                     sif_probe_read_fn rd, void *ctx)
{
    size_t region = size < SIF_PROBE_REGION ? (size_t)size : SIF_PROBE_REGION;
    struct sif_probe_input *in = &c->in;
    struct sif_probe_region want[SIF_PROBE_EXTRA_MAX];
    uint8_t *buf;
    int e;

    memset(c, 0, sizeof(*c));
    in->size = size;
    in->extra = c->extra;
    if (head && head_len >= region) {
        in->head = head;
    } else {
        if (!(buf = malloc(region ? region : 1)))
            return -ENOMEM;
        c->owned[0] = buf;
        if (region && (e = rd(ctx, buf, region, 0)) != 0)
            return e;
        in->head = buf;
    }
    in->head_len = region;
    if (!(buf = malloc(region ? region : 1)))
        return -ENOMEM;
    c->owned[1] = buf;
    if (region && (e = rd(ctx, buf, region, size - region)) != 0)
        return e;
    in->tail = buf;
    in->tail_len = region;

    /* One round: regions are decided on the head and tail only, so a
     * region can never ask for another. */
    for (const struct sif_probe *p = sif_probes; p->format; p++) {
        int n;

        if (!p->regions)
            continue;
        n = p->regions(in, want, SIF_PROBE_EXTRA_MAX);
        for (int i = 0; i < n && i < SIF_PROBE_EXTRA_MAX; i++)
            if ((e = sif_gather_region(c, &want[i], rd, ctx)) != 0)
                return e;
    }
    return 0;
}

void sif_probe_content_free(struct sif_probe_content *c)
{
    for (size_t i = 0; i < sizeof(c->owned) / sizeof(c->owned[0]); i++)
        free(c->owned[i]);
    memset(c, 0, sizeof(*c));
}

int sif_probe_scan(const struct sif_probe_input *in, struct sif_probe_hit *hits, int max)
{
    int n = 0;

    for (const struct sif_probe *p = sif_probes; p->format; p++) {
        struct sif_probe_hit h;

        memset(&h, 0, sizeof(h));
        h.probe = p;
        if (!p->match(in, &h))
            continue;
        if (n < max)
            hits[n] = h;
        n++;
    }
    return n;
}

static void sif_copy_hits(const struct sif_probe_hit *hits, int n, struct sif_verdict_match *out, int *nout)
{
    *nout = 0;
    for (int i = 0; i < n && i < SIF_HITS_MAX && *nout < SIF_VERDICT_MATCHES; i++) {
        struct sif_verdict_match *m = &out[(*nout)++];

        snprintf(m->format, sizeof(m->format), "%s", hits[i].probe->format);
        m->where = hits[i].where;
        m->unsafe = hits[i].unsafe;
        snprintf(m->detail, sizeof(m->detail), "%s", hits[i].detail);
    }
}

/* True for the layouts an ISO may be combined with in a hybrid image. */
static bool sif_is_table(const struct sif_probe *p)
{
    return !strcmp(p->format, "gpt") || !strcmp(p->format, "mbr");
}

int sif_probe_decide(const struct sif_probe_hit *hits, int n, const struct sif_probe_rules *rules,
                     struct sif_verdict *v)
{
    int kept = n < SIF_HITS_MAX ? n : SIF_HITS_MAX, images = 0, iso = 0, tables = 0;
    const struct sif_probe_hit *first_image = NULL, *first_unsafe = NULL, *first_denied = NULL;
    char check[SIF_CHECK_LEN];

    v->inner_inspected = true;
    sif_copy_hits(hits, kept, v->inner_hits, &v->n_inner);
    for (int i = 0; i < kept; i++) {
        const struct sif_probe_hit *h = &hits[i];

        if (h->probe->cls == SIF_CLASS_IMAGE) {
            if (!images++)
                first_image = h;
            continue;
        }
        iso += !strcmp(h->probe->format, "iso") || !strcmp(h->probe->format, "udf");
        tables += sif_is_table(h->probe);
        if (!(rules->layouts & sif_layout_bit(h->probe)) && !first_denied)
            first_denied = h;
        if (h->unsafe && !first_unsafe)
            first_unsafe = h;
    }
    /* Two or more formats: only an ISO (with UDF) on an MBR or GPT, the
     * hybrid layout of installer images, is raw content. */
    if (n > 1 && !(n == kept && images == 0 && rules->allow_iso_hybrid && iso >= 1 && tables <= 1 &&
                   iso + tables == n)) {
        snprintf(v->inner, sizeof(v->inner), "multiple");
        return sif_reject(v, -EPERM, "inner.multiple", "the plaintext matches %d formats (%s, %s%s)", n,
                          hits[0].probe->format, hits[1].probe->format, n > 2 ? ", ..." : "");
    }
    if (first_image) {
        snprintf(v->inner, sizeof(v->inner), "%s", first_image->probe->format);
        snprintf(check, sizeof(check), "inner.%s", first_image->probe->format);
        return sif_reject(v, -EPERM, check, "the plaintext is a %s image%s%s, not a raw disk", first_image->probe->format,
                          first_image->detail[0] ? ": " : "", first_image->detail);
    }
    if (first_denied) {
        snprintf(v->inner, sizeof(v->inner), "%s", first_denied->probe->format);
        snprintf(check, sizeof(check), "inner.%s", first_denied->probe->format);
        return sif_reject(v, -EPERM, check, "the plaintext has a %s, not allowed by policy%s%s",
                          first_denied->probe->format, first_denied->detail[0] ? ": " : "", first_denied->detail);
    }
    if (first_unsafe) {
        snprintf(v->inner, sizeof(v->inner), "%s", first_unsafe->probe->format);
        snprintf(check, sizeof(check), "inner.%s", first_unsafe->probe->format);
        return sif_reject(v, -EPERM, check, "the plaintext has a %s that fails its safety checks: %s",
                          first_unsafe->probe->format, first_unsafe->detail[0] ? first_unsafe->detail : "malformed");
    }
    snprintf(v->inner, sizeof(v->inner), "raw");
    return 0;
}

int sif_probe_inner(const struct sif_probe_input *in, const struct sif_probe_rules *rules, struct sif_verdict *v)
{
    struct sif_probe_hit hits[SIF_HITS_MAX];
    struct sif_probe_rules def;
    int n = sif_probe_scan(in, hits, SIF_HITS_MAX);

    if (!rules) {
        sif_probe_rules_default(&def);
        rules = &def;
    }
    return sif_probe_decide(hits, n, rules, v);
}

int sif_probe_run(const struct sif_probe_input *in, const char **found, int max, char *detail,
                  size_t detail_len)
{
    struct sif_probe_hit hits[SIF_HITS_MAX];
    int n = sif_probe_scan(in, hits, SIF_HITS_MAX);

    for (int i = 0; i < n && i < max && i < SIF_HITS_MAX; i++)
        found[i] = hits[i].probe->format;
    if (detail_len)
        snprintf(detail, detail_len, "%s", n ? hits[0].detail : "");
    return n;
}
