/* probe.h: the inspection engine: recognising formats in content.
 *
 * The plaintext a view serves must be a raw disk: if any tool that probes
 * formats (qemu first of all) could take it for another format, a consumer
 * might follow references to host files hidden inside it.  The same engine
 * also checks the outer file (it must be exactly one encrypted format).
 *
 * Each format is one table entry (probe_table.c): its class, a pure match
 * function over regions of the content (the first and the last
 * SIF_PROBE_REGION bytes, plus any region the entry's own regions function
 * asks for, such as a VMDK's embedded descriptor or a GPT's partition entry
 * array), so probes are unit tested and fuzzed on buffers.
 * A probe that finds its format fills a hit: where the signature is, what
 * an operator should know (a qcow2's backing file, a VMDK's createType and
 * extents) and, for layouts, whether its safety checks passed.
 */
#ifndef SIF_PROBE_H
#define SIF_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "verdict.h"

/* How much of each end of the content is inspected: qemu probes 512 bytes,
 * an ISO volume descriptor sits at 32 KiB, UDF anchors at 256 KiB or more, a
 * VMDK descriptor can be up to 1 MiB long, and footers (VHD, DMG, GPT
 * backup) are in the last sectors. */
#define SIF_PROBE_REGION (1u << 20)

/* At most this many extra regions are read for one scan, each at most
 * SIF_PROBE_REGION bytes: an attacker who controls the head can make the
 * engine read and decrypt at most 8 MiB more. */
#define SIF_PROBE_EXTRA_MAX 8

/* An extra region a probe asks for: [off, off + len) of the content. */
struct sif_probe_region {
    uint64_t off;
    uint64_t len;
};

/* An extra region that was read. */
struct sif_probe_extra {
    uint64_t off;
    size_t len;
    const uint8_t *data;
};

struct sif_probe_input {
    const uint8_t *head;  /* the first head_len bytes */
    size_t head_len;
    const uint8_t *tail;  /* the last tail_len bytes */
    size_t tail_len;
    uint64_t size;        /* total content size */
    const struct sif_probe_extra *extra;  /* regions the probes asked for */
    int n_extra;
};

enum sif_probe_class {
    /* A disk image or container format: content that is one is never
     * served as raw. */
    SIF_CLASS_IMAGE,
    /* A partition table or a filesystem found on raw disks (MBR, GPT,
     * ISO 9660, UDF): raw content, provided its safety checks pass. */
    SIF_CLASS_LAYOUT,
};

#define SIF_HIT_DETAIL 160

struct sif_probe;

struct sif_probe_hit {
    const struct sif_probe *probe;
    uint64_t where;               /* byte offset of the signature */
    bool unsafe;                  /* a safety check failed (see detail) */
    char detail[SIF_HIT_DETAIL];  /* one phrase for the operator, or "" */
};

struct sif_probe {
    const char *format;           /* "qcow2": its check id is "inner.qcow2" */
    enum sif_probe_class cls;
    /* True when the format is present.  Pure: reads only in, writes only
     * hit->where, hit->unsafe and hit->detail (pre-zeroed). */
    bool (*match)(const struct sif_probe_input *in, struct sif_probe_hit *hit);
    /* Optional: the regions beyond head and tail that match will want,
     * decided from the head and tail alone.  Pure; writes at most max
     * regions to out and returns how many it wrote. */
    int (*regions)(const struct sif_probe_input *in, struct sif_probe_region *out, int max);
};

/* The table, terminated by an entry whose format is NULL (probe_table.c). */
extern const struct sif_probe sif_probes[];

/* Reads exactly len bytes at off of the content: 0 or -errno. */
typedef int (*sif_probe_read_fn)(void *ctx, void *buf, size_t len, uint64_t off);

/* The content a scan looks at, with the buffers it owns. */
struct sif_probe_content {
    struct sif_probe_input in;
    struct sif_probe_extra extra[SIF_PROBE_EXTRA_MAX];
    uint8_t *owned[2 + SIF_PROBE_EXTRA_MAX];
};

/* Fills c for content of this size: the head (head_len bytes already read
 * may be given, else it is read), the tail, then every region the probes
 * ask for that head and tail do not cover (clipped to the content, at most
 * SIF_PROBE_EXTRA_MAX; later requests are dropped and the probes that
 * wanted them see the bytes as missing).  Only rd does I/O.  0 or -errno;
 * free c with sif_probe_content_free() either way. */
int sif_probe_gather(struct sif_probe_content *c, uint64_t size, const uint8_t *head, size_t head_len,
                     sif_probe_read_fn rd, void *ctx);
void sif_probe_content_free(struct sif_probe_content *c);

/* At most this many hits are kept per scan (more are counted). */
#define SIF_HITS_MAX 8

/* Runs every probe over in.  Keeps up to max hits in hits[] and returns
 * how many probes matched. */
int sif_probe_scan(const struct sif_probe_input *in, struct sif_probe_hit *hits, int max);

struct sif_probe_rules {
    /* Accept ISO 9660 together with an MBR/GPT (an "isohybrid" disk), as
     * nova and glance do. */
    bool allow_iso_hybrid;
    /* The layouts that count as a raw disk: SIF_LAYOUT_* bits (policy.h);
     * any other layout found is rejected as inner.FORMAT. */
    unsigned layouts;
};

void sif_probe_rules_default(struct sif_probe_rules *r);

/* The verdict on content: raw (no image format; layouts only if safe, and
 * several layouts only as an allowed hybrid) returns 0 and sets v->inner
 * to "raw"; otherwise records "inner.FORMAT", "inner.multiple" or the
 * failing layout's "inner.FORMAT" and returns -EPERM.  The hits are also
 * copied into v for the operator. */
int sif_probe_decide(const struct sif_probe_hit *hits, int n, const struct sif_probe_rules *rules,
                     struct sif_verdict *v);

/* Scan and decide in one call (rules NULL: the default rules). */
int sif_probe_inner(const struct sif_probe_input *in, const struct sif_probe_rules *rules, struct sif_verdict *v);

/* Compatibility for callers that want names only: runs every probe,
 * returns the number of matches; up to max names go to found[] and the
 * first hit's detail to detail. */
int sif_probe_run(const struct sif_probe_input *in, const char **found, int max, char *detail,
                  size_t detail_len);

#endif
