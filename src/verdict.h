/* verdict.h: the outcome of inspecting one image.
 *
 * A verdict names the check that decided it (a stable dotted id such as
 * "luks.pbkdf" or "inner.qcow2") and says why in words.  Inspection code
 * calls sif_reject() once, where the failure is found; the first rejection
 * wins, so later errors never overwrite the real cause.
 */
#ifndef SIF_VERDICT_H
#define SIF_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

enum sif_state { SIF_PENDING, SIF_ACCEPTED, SIF_REJECTED };

#define SIF_CHECK_LEN 40
#define SIF_REASON_LEN 256
#define SIF_FMT_LEN 24
#define SIF_CIPHER_LEN 64

/* A format a probe found, for the operator. */
#define SIF_MATCH_FMT 16
#define SIF_MATCH_DETAIL 160
#define SIF_VERDICT_MATCHES 8

struct sif_verdict_match {
    char format[SIF_MATCH_FMT];
    uint64_t where;               /* byte offset of the signature */
    bool unsafe;                  /* a layout whose safety checks failed */
    char detail[SIF_MATCH_DETAIL];
};

/* One key slot as the header describes it (no secret in here). */
#define SIF_VERDICT_SLOTS 32
/* Inspection stages recorded per verdict. */
#define SIF_VERDICT_RAN 16

struct sif_verdict_slot {
    uint8_t id;
    bool bound;                   /* opens the data segment */
    char kdf[12];                 /* "pbkdf2", "argon2id", ... */
    uint64_t cost;                /* PBKDF2 iterations or Argon2 passes */
    uint32_t memory_kib;          /* Argon2 */
    uint32_t parallel;            /* Argon2 */
};

struct sif_verdict {
    enum sif_state state;
    char check[SIF_CHECK_LEN];    /* deciding check id, "" while pending */
    char reason[SIF_REASON_LEN];  /* one phrase with the values */
    char outer[SIF_FMT_LEN];      /* "luks1", "luks2", "unknown", "" = not yet known */
    char inner[SIF_FMT_LEN];      /* "raw", "qcow2", ...; "" = not inspected */
    bool has_size;
    uint64_t size;                /* plaintext view size in bytes */

    /* encryption details, for operators (empty when unknown) */
    char cipher[SIF_CIPHER_LEN];  /* e.g. "aes-xts-plain64" */
    uint32_t key_bits;
    uint32_t sector_size;
    uint64_t data_offset;         /* bytes */
    int nslots;
    struct sif_verdict_slot slots[SIF_VERDICT_SLOTS];

    /* where the passphrase came from ("keydir:id", "command", ...) and
     * which form of it opened the volume ("raw", "hex", "hex-legacy") */
    char key_source[16];
    char key_form[12];

    /* What the probes found in the outer file and in the plaintext. */
    bool inner_inspected;
    int n_outer, n_inner;
    struct sif_verdict_match outer_hits[SIF_VERDICT_MATCHES];
    struct sif_verdict_match inner_hits[SIF_VERDICT_MATCHES];

    /* The stages that ran, in order (for the audit log): each names the
     * check ids it may give ("outer.multiple", "luks" for the format's own
     * header, key and unlock checks, "inner", ...). */
    int n_ran;
    char ran[SIF_VERDICT_RAN][SIF_CHECK_LEN];
};

/* Records that a stage ran (silently ignored past SIF_VERDICT_RAN). */
void sif_verdict_ran(struct sif_verdict *v, const char *stage);

void sif_verdict_init(struct sif_verdict *v);

/* Records a rejection unless one is already recorded.  Always returns
 * -EPERM-like error passed in err (so callers can write
 * `return sif_reject(v, -EINVAL, "luks.header", "...")`). */
int sif_reject(struct sif_verdict *v, int err, const char *check, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void sif_accept(struct sif_verdict *v, const char *check, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const char *sif_state_name(enum sif_state s);

/* A new JSON object describing the verdict of image `name`. */
struct json_object *sif_verdict_json(const char *name, const struct sif_verdict *v);

/* "NAME: accepted [check] reason" in buf. */
void sif_verdict_line(const char *name, const struct sif_verdict *v, char *buf, size_t len);

#endif
