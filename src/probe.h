/* probe.h: recognising disk image formats in plaintext.
 *
 * The plaintext a view serves must be a raw disk: if any tool that probes
 * formats (qemu first of all) could take it for another format, a consumer
 * might follow references to host files hidden inside it.  Each format is a
 * table entry with a pure match function over fixed regions of the content
 * (the first and last SIF_PROBE_REGION bytes), so probes can be unit tested
 * and fuzzed on buffers.
 */
#ifndef SIF_PROBE_H
#define SIF_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "verdict.h"

/* How much of each end of the content is inspected: qemu probes 512 bytes,
 * an ISO volume descriptor sits at 32 KiB, a VMDK descriptor can be up to
 * 1 MiB long, and footers (VHD, GPT backup) are in the last sectors. */
#define SIF_PROBE_REGION (1u << 20)

struct sif_probe_input {
    const uint8_t *head;  /* the first head_len bytes */
    size_t head_len;
    const uint8_t *tail;  /* the last tail_len bytes */
    size_t tail_len;
    uint64_t size;        /* total content size */
};

struct sif_probe {
    const char *format;   /* "qcow2": the check id becomes "inner.qcow2" */
    bool (*match)(const struct sif_probe_input *in, char *detail, size_t detail_len);
};

/* The probe table, terminated by an entry with format NULL. */
extern const struct sif_probe sif_probes[];

/* Runs every probe.  Returns the number of matches; the names of up to
 * `max` matching formats go to found[]. */
int sif_probe_run(const struct sif_probe_input *in, const char **found, int max, char *detail,
                  size_t detail_len);

/* The inner-content verdict: raw is accepted ("inner.raw"), one match is
 * rejected as "inner.FORMAT", several as "inner.multiple".  Sets v->inner.
 * Returns 0 when raw, -EPERM otherwise. */
int sif_probe_inner(const struct sif_probe_input *in, struct sif_verdict *v);

#endif
