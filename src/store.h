/* store.h: the image store, its candidates and their inspection lifecycle.
 *
 * A store is a directory.  Every regular file directly in it is a candidate
 * (sif_store_candidate() says which names are never served).  Candidates
 * start pending; a bounded pool of worker threads inspects them; a verdict,
 * once reached, is final for the life of the entry.  The FUSE glue asks for
 * entries by name (waiting for pending ones) or by index.
 */
#ifndef SIF_STORE_H
#define SIF_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "verdict.h"

struct sif_store;

struct sif_entry {
    char *name;                  /* the file name, as in the directory */
    char *display;               /* the name for logs and status.json: valid
                                    UTF-8, control bytes escaped as \xNN */
    size_t index;
    bool started;                /* a worker has taken it (store lock) */
    /* The published state: written once (release) after verdict and img,
     * read without a lock (acquire) on the read path. */
    _Atomic int state;
    struct sif_verdict verdict;  /* guarded by the store lock until decided */
    struct sif_image *img;       /* set, and immutable, once accepted */
};

/* Would a file of this name ever be served?  Hidden files, *.part, *.tmp
 * and the sidecars *.json and *.key never are. */
bool sif_store_candidate(const char *name);

/* True when a candidate's name may be served: valid UTF-8 without control
 * characters (so that no name can break status.json or forge a log line). */
bool sif_store_name_ok(const char *name);

/* A new string: name with every byte outside printable ASCII (and the
 * backslash) written as \xNN.  NULL when out of memory. */
char *sif_store_escape_name(const char *name);

/* Opens the directory and lists its candidates (pending, or rejected with
 * name.invalid).  0 or -errno. */
int sif_store_open(const char *path, const struct sif_inspect_env *env, struct sif_store **out);
/* Starts nworkers inspection threads.  0 or -errno. */
int sif_store_start(struct sif_store *s, unsigned nworkers);
/* Marks the store as stopping: verdicts reached from now on are dropped
 * (not logged, not published) and waiters return. */
void sif_store_stop(struct sif_store *s);
/* Stops the workers (in-flight inspections are abandoned) and frees all. */
void sif_store_free(struct sif_store *s);

size_t sif_store_count(const struct sif_store *s);
/* The entry at index i (stable for the life of the store), or NULL. */
struct sif_entry *sif_store_entry(struct sif_store *s, size_t i);
/* The entry called name, or NULL; with wait, blocks until it is decided. */
struct sif_entry *sif_store_find(struct sif_store *s, const char *name, bool wait);
/* The current state of an entry; lock-free. */
enum sif_state sif_store_state(struct sif_store *s, const struct sif_entry *e);
/* Blocks until no entry is pending. */
void sif_store_wait_all(struct sif_store *s);

/* status.json: a new NUL-terminated string (free()), length in *len. */
char *sif_store_status_json(struct sif_store *s, size_t *len);

#endif
