/* fuzz_probe.c: libFuzzer harness for the inspection engine (probe.h).
 *
 * The input is content, as a view would serve it.  It is inspected three
 * ways, each as image.c builds a sif_probe_input (head = the first
 * min(size, 1 MiB) bytes, tail = the last min(size, 1 MiB) bytes, each in a
 * buffer of exactly that size so ASan sees any read past either end):
 *
 *   1. the input as it is: size = input size;
 *   2. a virtual size: the first 8 bytes (little-endian, low 32 bits) count
 *      512-byte sectors of zeros inserted in the middle of the input, so
 *      the input's first half stays at the start and its second half moves
 *      to the end (footers, backup GPTs, trailers);
 *   3. the same with a fixed 2 MiB + 512 gap, so head and tail never
 *      overlap whatever the first bytes hold.
 *
 * Each time it runs sif_probe_inner, every entry of sif_probes[] on its
 * own, sif_probe_scan, sif_probe_decide with both rule sets and
 * sif_probe_run, and checks their documented contracts; then it gathers
 * the extra regions the probes ask for (sif_probe_gather, reading the
 * virtual content) and scans again with them.  Seeds of the
 * form first-L-bytes + last-L-bytes of a real image, with the first 8
 * bytes set to the sectors left out, reproduce that image's ends exactly.
 */
#include "config.h"

#include <errno.h>

#include "fuzz.h"
#include "policy.h"
#include "probe.h"

#define REGION ((uint64_t)SIF_PROBE_REGION)

/* Content of vsize bytes: data[0, split) at 0, zeros, data[split, size)
 * at the end. */
struct vcontent {
    const uint8_t *data;
    size_t size, split;
    uint64_t vsize;
};

/* Copies (or, with src NULL, zeroes) the part of the content's data
 * segment [s_off, s_off + s_len) that falls in the window [off, off + len)
 * held by out. */
static void seg_copy(uint8_t *out, uint64_t off, size_t len, uint64_t s_off, const uint8_t *src, size_t s_len)
{
    uint64_t lo = off > s_off ? off : s_off;
    uint64_t hi = off + len < s_off + s_len ? off + len : s_off + s_len;

    if (lo >= hi)
        return;
    if (src)
        memcpy(out + (lo - off), src + (lo - s_off), (size_t)(hi - lo));
    else
        memset(out + (lo - off), 0, (size_t)(hi - lo));
}

/* The window [off, off + len) of the content, into out (len bytes that
 * are already zero).  With fill false, zeroes what a fill wrote, so the
 * 1 MiB buffers are cleared in time proportional to the input. */
static void vwindow(const struct vcontent *c, uint64_t off, uint8_t *out, size_t len, bool fill)
{
    seg_copy(out, off, len, 0, fill ? c->data : NULL, c->split);
    seg_copy(out, off, len, c->vsize - (c->size - c->split), fill ? c->data + c->split : NULL,
             c->size - c->split);
}

static bool has_image_hit(const struct sif_probe_hit *hits, int n)
{
    for (int i = 0; i < n && i < SIF_HITS_MAX; i++)
        if (hits[i].probe->cls == SIF_CLASS_IMAGE)
            return true;
    return false;
}

static bool has_unsafe_hit(const struct sif_probe_hit *hits, int n)
{
    for (int i = 0; i < n && i < SIF_HITS_MAX; i++)
        if (hits[i].unsafe)
            return true;
    return false;
}

/* The verdict of sif_probe_decide / sif_probe_inner, against probe.h. */
static void check_decision(int r, const struct sif_verdict *v, const struct sif_probe_hit *hits, int n,
                           const struct sif_probe_rules *rules, bool render)
{
    int kept = n < SIF_HITS_MAX ? n : SIF_HITS_MAX;

    FUZZ_CHECK(v->inner_inspected);
    FUZZ_CHECK(v->inner[0] != 0);
    FUZZ_CHECK(v->n_inner == (kept < SIF_VERDICT_MATCHES ? kept : SIF_VERDICT_MATCHES));
    for (int i = 0; i < v->n_inner; i++) {
        FUZZ_CHECK(strcmp(v->inner_hits[i].format, hits[i].probe->format) == 0);
        FUZZ_CHECK(v->inner_hits[i].where == hits[i].where);
        FUZZ_CHECK(v->inner_hits[i].unsafe == hits[i].unsafe);
        FUZZ_CHECK(FUZZ_TERMINATED(v->inner_hits[i].detail));
    }
    if (r == 0) {
        /* Raw: the caller records "inner.raw" (image.c); nothing may have
         * been rejected, and no image format nor unsafe layout was seen. */
        FUZZ_CHECK(strcmp(v->inner, "raw") == 0);
        FUZZ_CHECK(v->state != SIF_REJECTED);
        FUZZ_CHECK(!has_image_hit(hits, n));
        FUZZ_CHECK(!has_unsafe_hit(hits, n));
        FUZZ_CHECK(n <= 1 || rules->allow_iso_hybrid);
        FUZZ_CHECK(n <= SIF_HITS_MAX);
    } else {
        FUZZ_CHECK(r == -EPERM);
        FUZZ_CHECK(n >= 1);
        fuzz_rejected_ok(r, v, "inner.");
        /* "inner.FORMAT" or "inner.multiple", with v->inner = FORMAT. */
        FUZZ_CHECK(strcmp(v->check + 6, v->inner) == 0);
        FUZZ_CHECK(strcmp(v->inner, "raw") != 0);
    }
    if (render)
        fuzz_verdict_ok(v);
    else
        fuzz_verdict_fields_ok(v);
}

static void inspect(const struct vcontent *c)
{
    size_t hl = c->vsize < REGION ? (size_t)c->vsize : (size_t)REGION;
    /* Exactly hl bytes each: a full region reuses two zeroed 1 MiB
     * buffers (mmap-sized allocations would dominate the run time). */
    static uint8_t *big_head, *big_tail;
    bool big = hl == REGION;
    uint8_t *head, *tail;
    struct sif_probe_input in;
    struct sif_probe_hit hits[SIF_HITS_MAX], one;
    struct sif_probe_rules rules;
    struct sif_verdict v;
    const char *found[2];
    char detail[24];
    bool matched[64];
    int n, nmatch = 0, nprobes = 0, r;

    if (big && !big_head) {
        big_head = calloc(1, REGION);
        big_tail = calloc(1, REGION);
    }
    head = big ? big_head : calloc(1, hl);
    tail = big ? big_tail : calloc(1, hl);
    FUZZ_CHECK(hl == 0 || (head && tail));
    vwindow(c, 0, head, hl, true);
    vwindow(c, c->vsize - hl, tail, hl, true);
    in = (struct sif_probe_input){ head, hl, tail, hl, c->vsize, NULL, 0 };

    /* Every probe on its own: pure, and it writes only its hit. */
    for (const struct sif_probe *p = sif_probes; p->format; p++, nprobes++) {
        FUZZ_CHECK(nprobes < 64);
        memset(&one, 0, sizeof(one));
        one.probe = p;
        matched[nprobes] = p->match(&in, &one);
        FUZZ_CHECK(one.probe == p);
        FUZZ_CHECK(FUZZ_TERMINATED(one.detail));
        if (matched[nprobes]) {
            FUZZ_CHECK(c->vsize == 0 || one.where < c->vsize);
            nmatch++;
        }
    }

    /* The scan runs the same probes in table order. */
    n = sif_probe_scan(&in, hits, SIF_HITS_MAX);
    FUZZ_CHECK(n == nmatch);
    for (int i = 0, k = 0; i < nprobes && k < SIF_HITS_MAX; i++) {
        if (!matched[i])
            continue;
        FUZZ_CHECK(hits[k].probe == &sif_probes[i]);
        k++;
    }

    /* The engine's verdict, with the default rules. */
    sif_verdict_init(&v);
    r = sif_probe_inner(&in, NULL, &v);
    check_decision(r, &v, hits, n, &(struct sif_probe_rules){ .allow_iso_hybrid = true, .layouts = SIF_LAYOUT_ALL }, true);

    /* Both rule sets through sif_probe_decide. */
    sif_probe_rules_default(&rules);
    FUZZ_CHECK(rules.allow_iso_hybrid);
    for (int hybrid = 0; hybrid < 2; hybrid++) {
        rules.allow_iso_hybrid = hybrid;
        sif_verdict_init(&v);
        r = sif_probe_decide(hits, n, &rules, &v);
        check_decision(r, &v, hits, n, &rules, false);
    }

    /* The names-only compatibility call. */
    memset(detail, 'x', sizeof(detail));
    FUZZ_CHECK(sif_probe_run(&in, found, 2, detail, sizeof(detail)) == n);
    FUZZ_CHECK(FUZZ_TERMINATED(detail));
    for (int i = 0; i < n && i < 2; i++)
        FUZZ_CHECK(found[i] == hits[i].probe->format);

    if (big) {
        vwindow(c, 0, head, hl, false);
        vwindow(c, c->vsize - hl, tail, hl, false);
    } else {
        free(head);
        free(tail);
    }
}

static int vread(void *ctx, void *buf, size_t len, uint64_t off)
{
    const struct vcontent *c = ctx;

    FUZZ_CHECK(off <= c->vsize && len <= c->vsize - off);
    vwindow(c, off, buf, len, true);
    return 0;
}

/* The extra regions: inside the content, bounded, and a scan with them
 * keeps the contracts. */
static void gather(const struct vcontent *c)
{
    struct sif_probe_content g;
    struct sif_probe_hit hits[SIF_HITS_MAX];
    struct sif_verdict v;
    int n;

    FUZZ_CHECK(sif_probe_gather(&g, c->vsize, NULL, 0, vread, (void *)c) == 0);
    FUZZ_CHECK(g.in.n_extra >= 0 && g.in.n_extra <= SIF_PROBE_EXTRA_MAX);
    for (int i = 0; i < g.in.n_extra; i++) {
        const struct sif_probe_extra *x = &g.in.extra[i];

        FUZZ_CHECK(x->len > 0 && x->len <= REGION && x->off < c->vsize && x->len <= c->vsize - x->off);
    }
    n = sif_probe_scan(&g.in, hits, SIF_HITS_MAX);
    FUZZ_CHECK(n >= 0);
    sif_verdict_init(&v);
    n = sif_probe_inner(&g.in, NULL, &v);
    FUZZ_CHECK(n == 0 || n == -EPERM);
    sif_probe_content_free(&g);
}

static void table_ok(void)
{
    static bool done;

    if (done)
        return;
    done = true;
    for (const struct sif_probe *p = sif_probes; p->format; p++) {
        FUZZ_CHECK(p->format[0] != 0 && p->match != NULL);
        FUZZ_CHECK(strlen(p->format) < SIF_MATCH_FMT && strlen(p->format) < SIF_FMT_LEN);
        FUZZ_CHECK(strlen("inner.") + strlen(p->format) < SIF_CHECK_LEN);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vcontent c = { data, size, (size + 1) / 2, size };

    table_ok();
    inspect(&c);
    gather(&c);
    if (size >= 8) {
        c.vsize = size + (fuzz_le64(data) & 0xffffffffu) * 512;
        if (c.vsize != size) {
            inspect(&c);
            gather(&c);
        }
    }
    c.vsize = size + 2 * REGION + 512;
    inspect(&c);
    return 0;
}
