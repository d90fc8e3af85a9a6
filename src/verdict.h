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
};

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
