/* qcow2.h: pure qcow2 header and table parsing (docs/interop/qcow2.txt).
 *
 * Trust boundary: every byte comes from an untrusted image.  The parser
 * validates the header, its feature bits and its extensions; the table
 * helpers decode L1 and L2 entries, refusing reserved bits, compressed
 * clusters, misaligned offsets and ranges outside the file.  Nothing here
 * does I/O: fmt_qcow2.c reads the tables and calls these functions.
 */
#ifndef SIF_QCOW2_H
#define SIF_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "verdict.h"

#define SIF_QCOW2_V2_HDR_LEN 72
#define SIF_QCOW2_V3_HDR_LEN 104
/* qemu's own limit on the L1 table (QCOW_MAX_L1_SIZE, 32 MiB). */
#define SIF_QCOW2_L1_MAX_BYTES (32u << 20)
/* qemu's own limit on the refcount table (QCOW_MAX_REFTABLE_SIZE). */
#define SIF_QCOW2_REFTABLE_MAX (8u << 20)
/* The LUKS1 region of a qcow2 image holds a 592-byte header and 8 key
 * slots of at most 64 x 4000 bytes: about 2 MiB.  Anything larger than
 * this is not a header qemu wrote. */
#define SIF_QCOW2_CRYPT_MAX (8u << 20)

#define SIF_QCOW2_CRYPT_NONE 0
#define SIF_QCOW2_CRYPT_AES 1
#define SIF_QCOW2_CRYPT_LUKS 2

struct sif_qcow2 {
    uint32_t version;
    uint32_t cluster_bits;
    uint64_t cluster_size;
    uint64_t size;              /* virtual disk size */
    uint32_t crypt_method;
    uint32_t l1_size;           /* entries in the active L1 table */
    uint64_t l1_offset;
    uint32_t l1_used;           /* entries that map the virtual disk */
    uint64_t incompat;
    bool dirty;
    bool extended_l2;
    uint32_t l2_entries;        /* entries per L2 table */
    uint32_t l2_entry_len;      /* 8, or 16 with extended L2 */
    uint64_t subcluster_size;   /* cluster_size, or cluster_size / 32 */
    uint64_t refcount_offset;   /* refcount table (not read; kept clear of data) */
    uint64_t refcount_len;      /* bytes */
    uint64_t crypt_offset;      /* the FDE header pointer extension */
    uint64_t crypt_length;
};

/* Parses and validates the header and its extensions from buf (the first
 * len bytes of a file of file_size bytes; len >= min(file_size, cluster
 * size) is needed to walk every extension).  Returns 0, or -EINVAL with a
 * qcow2.* rejection recorded in v. */
/* As sif_qcow2_parse, and with plain_ok an unencrypted image (crypt_method
 * 0, no encryption header pointer) passes too. */
int sif_qcow2_parse_opts(const uint8_t *buf, size_t len, uint64_t file_size, bool plain_ok, struct sif_qcow2 *q,
                         struct sif_verdict *v);
int sif_qcow2_parse(const uint8_t *buf, size_t len, uint64_t file_size, struct sif_qcow2 *q,
                    struct sif_verdict *v);

/* One L1 entry: *l2 gets the L2 table offset (0 = unallocated).  Returns 0
 * or -EINVAL (reserved bits, misaligned, outside the file) with a
 * "qcow2.l1" rejection recorded. */
int sif_qcow2_l1_entry(const struct sif_qcow2 *q, uint64_t raw, uint64_t file_size, uint32_t index,
                       uint64_t *l2, struct sif_verdict *v);

/* What one guest cluster holds. */
struct sif_qcow2_cluster {
    uint64_t host;       /* host cluster offset, valid when alloc != 0 */
    uint32_t alloc;      /* bit i: subcluster i holds data (bit 0 only without extended L2) */
    uint32_t zero;       /* bit i: subcluster i reads as zeros */
};

/* Decodes the L2 entry at e (l2_entry_len bytes) for guest cluster number
 * gcluster.  Checks reserved bits, compression, alignment and that the
 * allocated part lies inside the file.  Returns 0 or -EINVAL with a
 * qcow2.l2 or qcow2.compressed rejection recorded in v. */
int sif_qcow2_l2_entry(const struct sif_qcow2 *q, const uint8_t *e, uint64_t gcluster, uint64_t file_size,
                       struct sif_qcow2_cluster *c, struct sif_verdict *v);

/* Bytes of guest cluster gcluster that lie inside the virtual disk. */
uint64_t sif_qcow2_cluster_bytes(const struct sif_qcow2 *q, uint64_t gcluster);

#endif
