/* audit.h: the JSON-lines audit log (-o audit_log=FILE).
 *
 * One line per event, appended with a single write(2): the mount and its
 * end, every verdict, every change the store saw.  A line holds times,
 * names, file identities, check ids and reasons; never key material (the
 * verdict holds none).
 */
#ifndef SIF_AUDIT_H
#define SIF_AUDIT_H

#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "verdict.h"

struct sif_audit;

/* Opens (creates, mode 0640) path for appending.  0 or -errno. */
int sif_audit_open(const char *path, struct sif_audit **out);
void sif_audit_close(struct sif_audit *a);

/* Appends one event.  event: "mount", "unmount", "added", "changed",
 * "removed" or "verdict"; name may be NULL (mount events); st (the file's
 * identity), v and inspect_ms (negative: none) are optional.  extra is an
 * optional "key": "value" pair for mount events (the store path). */
void sif_audit_event(struct sif_audit *a, const char *event, const char *name, uint32_t generation,
                     const struct stat *st, const struct sif_verdict *v, int64_t inspect_ms, const char *store);

/* ts as RFC 3339 UTC with milliseconds ("2026-11-26T23:50:01.123Z"). */
void sif_rfc3339(const struct timespec *ts, char *buf, size_t len);
/* The same as a new JSON string (status.json, the audit log). */
struct json_object *sif_time_json(const struct timespec *ts);

#endif
