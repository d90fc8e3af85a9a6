/* store.h: the image store, its candidates and their inspection lifecycle.
 *
 * A store is a directory.  Every regular file directly in it is a candidate
 * (sif_store_candidate() says which names are never served).  Each name has
 * at most one live entry at a time: it starts pending, a bounded pool of
 * worker threads inspects it, and its verdict is final for the life of the
 * entry.
 *
 * The store changes under a live mount.  A monitor thread watches the
 * directory (inotify) and compares each changed name's identity (device,
 * inode, size, mtime, ctime) with its entry's: an entry whose file changed,
 * went away or was replaced is retired at once (marked stale: reads through
 * handles still open fail, see sif_entry_fresh()), the kernel is told to
 * drop what it cached (the notify callback), and once the name has been
 * quiet for SIF_SETTLE_MS a new entry (the next generation) is inspected
 * afresh.  A changed sidecar (NAME.json) re-inspects NAME.
 *
 * Entries are reference counted: the store holds one reference while the
 * entry is live, and every lookup returns one the caller drops with
 * sif_entry_put().  A retired entry's image (its descriptor and keys) is
 * freed when the last reference goes.
 */
#ifndef SIF_STORE_H
#define SIF_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "image.h"
#include "verdict.h"

struct sif_store;
struct sif_audit;

struct sif_entry {
    char *name;                  /* the file name, as in the directory */
    char *display;               /* the name for logs and status.json: valid
                                    UTF-8, control bytes escaped as \xNN */
    uint64_t ino;                /* the view's inode number, never reused */
    uint32_t generation;         /* 1, then +1 each time the name changes */
    struct stat st;              /* the file's identity when listed, then
                                    when opened for inspection (store lock) */
    atomic_int refs;
    atomic_bool stale;           /* retired: never served again */
    bool started;                /* a worker has taken it (store lock) */
    bool live;                   /* in the store's list (store lock) */
    bool urgent;                 /* moved to the queue's front for a lookup */
    bool queued;                 /* in the work queue (store lock) */
    /* The published state: written once (release) after verdict and img,
     * read without a lock (acquire) on the read path. */
    _Atomic int state;
    struct sif_verdict verdict;  /* guarded by the store lock until decided */
    struct sif_image *img;       /* set, and immutable, once accepted */
    struct timespec inspected_at; /* CLOCK_REALTIME when decided */
    uint64_t inspect_ms;         /* how long the inspection took */
    struct sif_entry *qnext;     /* the work queue (store lock) */
};

/* The first inode number of views; lower ones belong to the glue. */
#define SIF_STORE_INO_FIRST 16

/* How long a changed name must stay quiet before it is inspected again: a
 * file being copied in changes many times a second. */
#define SIF_SETTLE_MS 200
/* ...but a name that never stops changing is inspected at least this long
 * after its first change (the read path's identity check and the next
 * event withdraw that verdict again if the bytes moved), and a lookup
 * waits at most about this long for a name to settle. */
#define SIF_SETTLE_MAX_MS 2000

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

/* Called by the monitor thread, outside every lock, after an entry was
 * retired (ino, name) or a name appeared (ino 0): the glue drops the
 * kernel's caches of both. */
typedef void (*sif_store_notify_fn)(void *ctx, uint64_t ino, const char *name);
void sif_store_set_notify(struct sif_store *s, sif_store_notify_fn fn, void *ctx);
/* Verdicts and changes also go to this audit log (may be NULL). */
void sif_store_set_audit(struct sif_store *s, struct sif_audit *a);

/* Starts nworkers inspection threads and, with watch, the monitor.
 * 0 or -errno. */
int sif_store_start(struct sif_store *s, unsigned nworkers, bool watch);
/* Marks the store as stopping: verdicts reached from now on are dropped
 * (not logged, not published) and waiters return; the monitor and the
 * notifier have ended (no notify call runs) when it returns. */
void sif_store_stop(struct sif_store *s);
/* Stops the threads (in-flight inspections are abandoned) and frees all.
 * Entries still referenced elsewhere must have been put first. */
void sif_store_free(struct sif_store *s);

/* The number of live entries. */
size_t sif_store_count(struct sif_store *s);
/* The live entry at position i in name order, or NULL.  A reference. */
struct sif_entry *sif_store_entry(struct sif_store *s, size_t i);
/* The live entry with this inode number, or NULL.  A reference. */
struct sif_entry *sif_store_get(struct sif_store *s, uint64_t ino);
/* The live entry called name, or NULL; with wait, blocks until it is
 * decided.  A reference. */
struct sif_entry *sif_store_find(struct sif_store *s, const char *name, bool wait);
void sif_entry_get(struct sif_entry *e);
void sif_entry_put(struct sif_entry *e);

/* The current state of an entry; lock-free. */
enum sif_state sif_store_state(struct sif_store *s, const struct sif_entry *e);
/* Blocks until no live entry is pending and no change is waiting to
 * settle. */
void sif_store_wait_all(struct sif_store *s);

/* The read path's check, after reading from an accepted entry's file:
 * 0 while the entry is live and its file still has the identity that was
 * inspected; otherwise -EIO, and the entry is retired (the monitor is
 * woken to inspect the new content).  Lock-free but for that case. */
int sif_entry_fresh(struct sif_store *s, struct sif_entry *e);

/* Readdir: calls fn for each accepted live entry from position `from` in
 * name order, with the position after it, until fn returns false. */
void sif_store_each(struct sif_store *s, size_t from,
                    bool (*fn)(void *ctx, const char *name, uint64_t ino, size_t next), void *ctx);

/* status.json: a new NUL-terminated string (free()), length in *len. */
char *sif_store_status_json(struct sif_store *s, size_t *len);

#endif
