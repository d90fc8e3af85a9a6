/* probe_vmdk.c: the VMDK probe.
 *
 * qemu probes three kinds of VMDK: a hosted sparse extent ("KDMV", with its
 * descriptor usually embedded at sector 1), a VMware 3 sparse extent
 * ("COWD"), and a text descriptor file (after comment and blank lines, a
 * version=1|2|3 line).  A descriptor lists extent files by name, and qemu
 * opens them: an extent naming a host path (CVE-2022-47951) makes qemu read
 * that file.  Every descriptor found in the head is parsed to tell the
 * operator its createType and extents, and whether OpenStack's inspector
 * (oslo.utils format_inspector) would accept it: every line a comment, a
 * ddb.* entry, a key=value or an extent line (RW, RDONLY, NOACCESS); at
 * least one extent; no '/' in an extent line; createType monolithicSparse
 * or streamOptimized; for a sparse extent the descriptor at sector 1 and,
 * with the grain directory at the end, a valid stream footer.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "bytes.h"
#include "checked.h"
#include "probe.h"
#include "probe_formats.h"
#include "probe_util.h"

#define VMDK_DESC_MAX ((1u << 20) - 1)   /* qemu's and OpenStack's limit */
#define VMDK_GD_AT_END UINT64_MAX
#define VMDK_MARKER_EOS 0u
#define VMDK_MARKER_FOOTER 3u

static bool sif_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* qemu's text probe, a little more lenient (it accepts exactly
 * "version=N\n" or "version=N\r\n", '#' only in the first column and blank
 * lines only if they hold a space): comment and blank lines, then a line
 * that is version=1, 2 or 3 with optional blanks around it. */
static bool sif_vmdk_text(const struct sif_probe_input *in)
{
    const char *p, *end;

    if (!in->head || !in->head_len)
        return false;
    p = (const char *)in->head;
    end = p + in->head_len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *q = p;

        while (q < le && sif_blank(*q))
            q++;
        if (q == le || *q == '#') {
            if (!nl)
                return false;
            p = nl + 1;
            continue;
        }
        if (le - q >= 9 && !memcmp(q, "version=", 8) && q[8] >= '1' && q[8] <= '3') {
            q += 9;
            while (q < le && sif_blank(*q))
                q++;
            return q == le;
        }
        return false;
    }
    return false;
}

/* ------------------------------------------------------------ descriptor */

struct sif_vmdk_desc {
    const char *create_type;      /* into the descriptor, not terminated */
    size_t create_type_len;
    int extents;
    const char *shown_extent;     /* the extent line to show (a host path first) */
    size_t shown_extent_len;
    bool host_path;               /* an extent line holds '/' */
    bool parent;                  /* parentFileNameHint */
    bool parent_host_path;
    int bad_line;                 /* first line OpenStack refuses, 1-based; 0 = none */
    bool not_ascii;
};

static bool sif_ieq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);

    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
            return false;
    return true;
}

static bool sif_iprefix(const char *a, size_t alen, const char *prefix)
{
    size_t plen = strlen(prefix);

    return alen >= plen && sif_ieq(a, plen, prefix);
}

/* The value of a key=value line, blanks and one pair of quotes removed. */
static void sif_vmdk_value(const char *v, size_t vlen, const char **out, size_t *outlen)
{
    while (vlen && sif_blank(*v)) {
        v++;
        vlen--;
    }
    while (vlen && sif_blank(v[vlen - 1]))
        vlen--;
    if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
        v++;
        vlen -= 2;
    }
    *out = v;
    *outlen = vlen;
}

/* Parses the descriptor text d[0, len) (it ends at the first NUL: embedded
 * descriptors are padded with zeros). */
static void sif_vmdk_parse(const char *d, size_t len, struct sif_vmdk_desc *out)
{
    const char *z = memchr(d, 0, len), *end;
    int lineno = 0;

    memset(out, 0, sizeof(*out));
    end = z ? z : d + len;
    for (const char *p = d; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *s = p, *e = le, *eq, *sp;
        size_t n;

        p = nl ? nl + 1 : end;
        lineno++;
        for (const char *c = s; c < e; c++)
            if ((unsigned char)*c >= 0x80)
                out->not_ascii = true;
        while (s < e && (sif_blank(*s) || *s == '\n'))
            s++;
        while (e > s && sif_blank(e[-1]))
            e--;
        n = (size_t)(e - s);
        if (n == 0 || *s == '#')
            continue;
        if (sif_iprefix(s, n, "ddb"))
            continue;
        eq = memchr(s, '=', n);
        if (eq && !memchr(s, ' ', (size_t)(eq - s))) {
            const char *v;
            size_t vlen, klen = (size_t)(eq - s);

            while (klen && sif_blank(s[klen - 1]))
                klen--;
            sif_vmdk_value(eq + 1, (size_t)(e - eq - 1), &v, &vlen);
            if (sif_ieq(s, klen, "createType") && !out->create_type) {
                out->create_type = v;
                out->create_type_len = vlen;
            } else if (sif_ieq(s, klen, "parentFileNameHint") && vlen) {
                out->parent = true;
                out->parent_host_path |= memchr(v, '/', vlen) != NULL;
            }
            continue;
        }
        /* the access word: qemu's sscanf takes tabs as separators too */
        for (sp = s; sp < e && *sp != ' ' && *sp != '\t';)
            sp++;
        if (sif_ieq(s, (size_t)(sp - s), "rw") || sif_ieq(s, (size_t)(sp - s), "rdonly") ||
            sif_ieq(s, (size_t)(sp - s), "noaccess")) {
            bool slash = memchr(s, '/', n) != NULL;

            out->extents++;
            if (!out->shown_extent || (slash && !out->host_path)) {
                out->shown_extent = s;
                out->shown_extent_len = n;
            }
            out->host_path |= slash;
            continue;
        }
        if (!out->bad_line)
            out->bad_line = lineno;
    }
}

/* Why OpenStack would refuse the descriptor, or NULL.  An extent naming a
 * host path is refused too, but the detail says so first, in words. */
static const char *sif_vmdk_refusal(const struct sif_vmdk_desc *d, char *buf, size_t cap)
{
    if (d->not_ascii)
        return "not ASCII";
    if (d->bad_line) {
        snprintf(buf, cap, "line %d is not a descriptor line", d->bad_line);
        return buf;
    }
    if (!d->extents)
        return "no extent";
    if (!d->create_type || !(sif_ieq(d->create_type, d->create_type_len, "monolithicSparse") ||
                             sif_ieq(d->create_type, d->create_type_len, "streamOptimized")))
        return "unsupported createType";
    return NULL;
}

/* Host path warnings, which lead the detail so that a cut never hides them. */
static void sif_vmdk_warnings(struct sif_text *t, const struct sif_vmdk_desc *d)
{
    if (d->host_path)
        sif_text_add(t, "extent names a host path; ");
    if (d->parent_host_path)
        sif_text_add(t, "parent names a host path; ");
    else if (d->parent)
        sif_text_add(t, "has a parent image; ");
}

/* createType and extents: last in the detail, so that a long extent line
 * is what a cut takes. */
static void sif_vmdk_summary(struct sif_text *t, const struct sif_vmdk_desc *d)
{
    sif_text_add(t, "; createType ");
    if (d->create_type && d->create_type_len)
        sif_text_bytes(t, (const uint8_t *)d->create_type, d->create_type_len, 32);
    else
        sif_text_add(t, "(none)");
    sif_text_add(t, ", %d extent%s", d->extents, d->extents == 1 ? "" : "s");
    if (d->shown_extent) {
        sif_text_add(t, ": ");
        sif_text_bytes(t, (const uint8_t *)d->shown_extent, d->shown_extent_len, 64);
    }
}

/* ------------------------------------------------------------ sparse extents */

/* OpenStack's check of a streamOptimized image's footer: a footer marker,
 * a copy of the header that agrees with the one at 0 and does not itself
 * defer to a footer, then an end-of-stream marker, each in its own sector. */
static bool sif_vmdk_footer_ok(const struct sif_probe_input *in, const uint8_t *hdr)
{
    const uint8_t *f = in->size >= 1536 ? sif_tail_at(in, in->size - 1536, 1536) : NULL;

    if (!f)
        return false;
    if (sif_le32(f + 8) != 0 || sif_le32(f + 12) != VMDK_MARKER_FOOTER)
        return false;
    for (int i = 16; i < 512; i++)
        if (f[i])
            return false;
    if (memcmp(f + 512, hdr, 4) != 0 || sif_le32(f + 516) != sif_le32(hdr + 4) ||
        sif_le64(f + 540) != sif_le64(hdr + 28) || sif_le64(f + 548) != sif_le64(hdr + 36) ||
        sif_le64(f + 568) == VMDK_GD_AT_END)
        return false;
    for (int i = 1024; i < 1536; i++)
        if (f[i])
            return false;
    return true;
}

/* A sparse extent's embedded descriptor: sector count at 36 from sector
 * number at 28, read up to VMDK_DESC_MAX bytes wherever it is. */
int sif_r_vmdk(const struct sif_probe_input *in, struct sif_probe_region *out, int max)
{
    const uint8_t *h = sif_head_at(in, 0, 64);
    uint64_t off, len;
    int n = 0;

    if (h && !memcmp(h, "KDMV", 4) && sif_mul_u64(sif_le64(h + 28), 512, &off) &&
        sif_mul_u64(sif_le64(h + 36), 512, &len))
        sif_want(out, max, &n, off, len < VMDK_DESC_MAX ? len : VMDK_DESC_MAX);
    return n;
}

static void sif_vmdk_sparse(const struct sif_probe_input *in, struct sif_text *t)
{
    const uint8_t *h = sif_head_at(in, 0, 64), *desc = NULL;
    uint64_t sec, num, off = 0, len = 0;
    struct sif_vmdk_desc d;
    const char *refusal = NULL;
    char why[48];
    bool have_desc = false;

    if (!h) {
        sif_text_add(t, "sparse extent, header cut short");
        return;
    }
    sec = sif_le64(h + 28);
    num = sif_le64(h + 36);
    if (sec && num && sif_mul_u64(sec, 512, &off) && sif_mul_u64(num, 512, &len)) {
        if (len > VMDK_DESC_MAX)
            len = VMDK_DESC_MAX;
        desc = sif_content_at(in, off, len);
        if (desc) {
            sif_vmdk_parse((const char *)desc, (size_t)len, &d);
            have_desc = true;
            sif_vmdk_warnings(t, &d);
            refusal = sif_vmdk_refusal(&d, why, sizeof(why));
        }
    }
    sif_text_add(t, "sparse extent version %u, ", (unsigned)sif_le32(h + 4));
    if (!sec || !num)
        sif_text_add(t, "no embedded descriptor");
    else if (!off || !len)
        sif_text_add(t, "descriptor at sector %llu, %llu sectors (out of range)", (unsigned long long)sec,
                     (unsigned long long)num);
    else
        sif_text_add(t, "descriptor at %llu (%llu bytes)%s", (unsigned long long)off, (unsigned long long)len,
                     desc ? "" : " beyond the inspected region");
    if (!have_desc)
        refusal = "no descriptor";
    if (!refusal && off != 512)
        refusal = "descriptor not at sector 1";
    if (sif_le64(h + 56) == VMDK_GD_AT_END) {
        sif_text_add(t, "; grain directory in the footer");
        if (!refusal && !sif_vmdk_footer_ok(in, h))
            refusal = "bad stream footer";
    }
    if (refusal)
        sif_text_add(t, "; OpenStack refuses it: %s", refusal);
    if (have_desc)
        sif_vmdk_summary(t, &d);
}

bool sif_m_vmdk(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    struct sif_text t;

    sif_text_init(&t, hit->detail, sizeof(hit->detail));
    if (sif_head_is(in, 0, "KDMV", 4)) {
        sif_vmdk_sparse(in, &t);
        return true;
    }
    if (sif_head_is(in, 0, "COWD", 4)) {
        const uint8_t *h = sif_head_at(in, 0, 8);

        sif_text_add(&t, "VMware 3 sparse extent (COWD)");
        if (h)
            sif_text_add(&t, " version %u", (unsigned)sif_le32(h + 4));
        return true;
    }
    if (sif_vmdk_text(in)) {
        struct sif_vmdk_desc d;
        const char *refusal;
        char why[48];
        size_t len = in->head_len < VMDK_DESC_MAX ? in->head_len : VMDK_DESC_MAX;

        sif_vmdk_parse((const char *)in->head, len, &d);
        refusal = sif_vmdk_refusal(&d, why, sizeof(why));
        sif_vmdk_warnings(&t, &d);
        sif_text_add(&t, "text descriptor");
        if (refusal)
            sif_text_add(&t, "; OpenStack refuses it: %s", refusal);
        sif_vmdk_summary(&t, &d);
        return true;
    }
    return false;
}
