/* store.c: candidates, the worker pool, verdicts, and the monitor that
 * follows the directory's changes (see store.h for the lifecycle). */
#include "config.h"

#include "store.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "declared.h"
#include "log.h"
#include "unlock.h"

/* A store with more candidates than this is refused: each entry costs an
 * open descriptor once accepted, and a directory this large is not an image
 * cache. */
#define SIF_STORE_MAX 65536

/* Lookups waiting for entries no worker has taken yet go to the front of
 * the queue; at most this many are remembered at once. */
#define SIF_URGENT_MAX 64

/* A name that changed and waits to settle before it is (re)inspected. */
struct sif_dirty {
    char *name;
    uint64_t due_ms;          /* CLOCK_MONOTONIC */
    uint64_t first_ms;        /* the first change not yet settled */
    uint32_t last_gen;        /* generation of the entry it retired, or 0 */
    bool force;               /* re-inspect even if the file looks the same */
};

/* A retirement or an arrival the monitor has yet to tell the kernel and
 * the audit log about. */
struct sif_note {
    uint64_t ino;             /* the retired view, or 0 */
    char *name;               /* as in the directory */
    char *display;
    const char *event;        /* "added", "changed", "removed" */
    uint32_t generation;
    struct stat st;
    bool has_st;
};

/* A kernel cache invalidation the notifier thread has yet to send. */
struct sif_kn {
    uint64_t ino;
    char *name;
    struct sif_kn *next;
};

struct sif_store {
    char *path;
    int dirfd;
    const struct sif_inspect_env *env;
    pthread_mutex_t lock;
    pthread_cond_t decided;   /* broadcast whenever a verdict is reached */
    pthread_cond_t work;      /* signalled when the queue gains an entry */
    /* live entries, sorted by name, and the same sorted by inode number
     * (inode numbers only grow, so new entries append) */
    struct sif_entry **list, **by_ino;
    size_t n, cap;
    uint64_t next_ino;
    struct sif_entry *qhead, *qtail;  /* pending entries not yet taken */
    size_t pending;
    /* the monitor */
    int inotify_fd, wake_fd;
    int store_wd, keys_wd;    /* the watches: the store, the key directory */
    struct sif_dirty *dirty;
    size_t ndirty, dirty_cap;
    struct sif_note *notes;
    size_t nnotes, notes_cap;
    bool rescan;              /* the event queue overflowed: compare all */
    pthread_t monitor;
    bool monitoring;          /* changes are followed (store lock) */
    bool monitor_running;     /* the thread is to be joined (its starter's) */
    sif_store_notify_fn notify;
    void *notify_ctx;
    /* Invalidations go through their own thread: the kernel takes the
     * directory's lock for them, and a lookup holding it may be waiting
     * for the monitor (a name that has yet to settle). */
    struct sif_kn *kn_head, *kn_tail;
    pthread_cond_t kn_cond;
    pthread_t notifier;
    bool notifying;
    struct sif_audit *audit;
    /* counters for status.json */
    struct timespec started_at;
    uint64_t inspections, changes;
    bool stopping;
    pthread_t *workers;
    unsigned nworkers;
};

static bool sif_has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);

    return n >= k && strcmp(name + n - k, suffix) == 0;
}

bool sif_store_candidate(const char *name)
{
    static const char *const skip[] = { ".part", ".tmp", ".json", ".key" };

    if (!name[0] || name[0] == '.')
        return false;
    for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
        if (sif_has_suffix(name, skip[i]))
            return false;
    return true;
}

bool sif_store_name_ok(const char *name)
{
    const unsigned char *p = (const unsigned char *)name;

    while (*p) {
        unsigned c = *p, n, cp;

        if (c < 0x20 || c == 0x7f)
            return false;
        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07;
        else
            return false;
        for (unsigned i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        /* Overlong forms, surrogates, beyond Unicode, and C1 controls. */
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
            return false;
        p += n + 1;
    }
    return true;
}

/* The name with every byte outside printable ASCII written as \xNN. */
char *sif_store_escape_name(const char *name)
{
    size_t n = strlen(name);
    char *out = malloc(n * 4 + 1), *o = out;

    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p < 0x20 || *p >= 0x7f || *p == '\\')
            o += sprintf(o, "\\x%02x", *p);
        else
            *o++ = (char)*p;
    }
    *o = 0;
    return out;
}

/* ---------------------------------------------------------------- entries */

static void sif_store_poke(struct sif_store *s, const char *name, bool force);

static uint64_t sif_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Same file, same content as far as the kernel can tell: a write changes
 * size or mtime, a rename over it the inode, and a write that restores
 * the mtime still moves the ctime. */
static bool sif_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

void sif_entry_get(struct sif_entry *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}

void sif_entry_put(struct sif_entry *e)
{
    if (!e || atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    sif_image_free(e->img);
    free(e->name);
    free(e->display);
    free(e);
}

/* A new pending entry (one reference, the caller's), not yet live. */
static struct sif_entry *sif_entry_new(const char *name, const struct stat *st, uint32_t generation)
{
    struct sif_entry *e = calloc(1, sizeof(*e));

    if (!e)
        return NULL;
    sif_verdict_init(&e->verdict);
    atomic_init(&e->state, SIF_PENDING);
    atomic_init(&e->refs, 1);
    atomic_init(&e->stale, false);
    e->generation = generation;
    e->st = *st;
    e->name = strdup(name);
    e->display = sif_store_name_ok(name) ? strdup(name) : sif_store_escape_name(name);
    if (!e->name || !e->display) {
        sif_entry_put(e);
        return NULL;
    }
    return e;
}

/* Position of name in the list (or where it would go).  Store lock. */
static size_t sif_list_pos(const struct sif_store *s, const char *name, bool *found)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->list[mid]->name, name);

        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static size_t sif_ino_pos(const struct sif_store *s, uint64_t ino, bool *found)
{
    size_t lo = 0, hi = s->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (s->by_ino[mid]->ino == ino) {
            *found = true;
            return mid;
        }
        if (s->by_ino[mid]->ino < ino)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static struct sif_entry *sif_live(const struct sif_store *s, const char *name)
{
    bool found;
    size_t i = sif_list_pos(s, name, &found);

    return found ? s->list[i] : NULL;
}

/* Queues e (the queue holds a reference), or moves it to the front when
 * it is queued already: an entry is in the queue at most once.  Store
 * lock. */
static void sif_enqueue(struct sif_store *s, struct sif_entry *e, bool front)
{
    if (e->queued) {
        struct sif_entry **pp = &s->qhead, *prev = NULL;

        if (!front || s->qhead == e)
            return;
        while (*pp && *pp != e) {
            prev = *pp;
            pp = &(*pp)->qnext;
        }
        if (!*pp)
            return;
        *pp = e->qnext;
        if (s->qtail == e)
            s->qtail = prev;
    } else {
        sif_entry_get(e);
        e->queued = true;
    }
    e->qnext = NULL;
    if (front) {
        e->qnext = s->qhead;
        s->qhead = e;
        if (!s->qtail)
            s->qtail = e;
    } else {
        if (s->qtail)
            s->qtail->qnext = e;
        else
            s->qhead = e;
        s->qtail = e;
    }
    pthread_cond_signal(&s->work);
}

/* Makes e live (the store takes over the caller's reference) and queues
 * it unless it is already decided.  Store lock.  0 or -errno. */
static int sif_insert(struct sif_store *s, struct sif_entry *e)
{
    bool found;
    size_t i;

    if (s->n == SIF_STORE_MAX)
        return -E2BIG;
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        struct sif_entry **nl = realloc(s->list, ncap * sizeof(*nl)), **ni;

        if (!nl)
            return -ENOMEM;
        s->list = nl;
        ni = realloc(s->by_ino, ncap * sizeof(*ni));
        if (!ni)
            return -ENOMEM;
        s->by_ino = ni;
        s->cap = ncap;
    }
    i = sif_list_pos(s, e->name, &found);
    if (found)
        return -EEXIST;
    e->ino = s->next_ino++;
    memmove(&s->list[i + 1], &s->list[i], (s->n - i) * sizeof(*s->list));
    s->list[i] = e;
    s->by_ino[s->n] = e;
    s->n++;
    e->live = true;
    if (atomic_load(&e->state) == SIF_PENDING) {
        s->pending++;
        sif_enqueue(s, e, false);
    }
    return 0;
}

/* Takes e out of the list and marks it stale; the list's reference passes
 * to the caller.  Store lock. */
static void sif_remove(struct sif_store *s, struct sif_entry *e)
{
    bool found;
    size_t i;

    atomic_store(&e->stale, true);
    if (!e->live)
        return;
    i = sif_list_pos(s, e->name, &found);
    if (found && s->list[i] == e) {
        memmove(&s->list[i], &s->list[i + 1], (s->n - i - 1) * sizeof(*s->list));
        i = sif_ino_pos(s, e->ino, &found);
        if (found)
            memmove(&s->by_ino[i], &s->by_ino[i + 1], (s->n - i - 1) * sizeof(*s->by_ino));
        s->n--;
    }
    e->live = false;
    if (atomic_load(&e->state) == SIF_PENDING && s->pending)
        s->pending--;
    /* waiters on it must see that it will never be decided */
    pthread_cond_broadcast(&s->decided);
}

/* A new entry for a file found in the directory (pending, or rejected at
 * once for its name).  NULL when out of memory. */
static struct sif_entry *sif_candidate(const char *name, const struct stat *st, uint32_t generation)
{
    struct sif_entry *e = sif_entry_new(name, st, generation);
    char line[600];

    if (!e || sif_store_name_ok(name))
        return e;
    sif_reject(&e->verdict, -EINVAL, "name.invalid", "the file name is not valid UTF-8 or contains control characters");
    atomic_store(&e->state, SIF_REJECTED);
    e->started = true;
    clock_gettime(CLOCK_REALTIME, &e->inspected_at);
    sif_verdict_line(e->display, &e->verdict, line, sizeof(line));
    sif_warn("%s", line);
    return e;
}

int sif_store_open(const char *path, const struct sif_inspect_env *env, struct sif_store **out)
{
    struct sif_store *s = calloc(1, sizeof(*s));
    struct dirent *de;
    DIR *d = NULL;
    int fd, r = 0;

    *out = NULL;
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->decided, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->kn_cond, NULL);
    s->env = env;
    s->inotify_fd = s->wake_fd = -1;
    s->store_wd = s->keys_wd = -1;
    s->next_ino = SIF_STORE_INO_FIRST;
    clock_gettime(CLOCK_REALTIME, &s->started_at);
    s->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    s->path = strdup(path);
    if (s->dirfd < 0 || !s->path) {
        r = s->dirfd < 0 ? -errno : -ENOMEM;
        goto fail;
    }
    fd = dup(s->dirfd);
    if (fd < 0 || !(d = fdopendir(fd))) {
        r = -errno;
        if (fd >= 0)
            close(fd);
        goto fail;
    }
    while ((de = readdir(d))) {
        struct sif_entry *e;
        struct stat st;

        if (!sif_store_candidate(de->d_name))
            continue;
        if (fstatat(s->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (s->n == SIF_STORE_MAX) {
            sif_err("%s: more than %d candidates", path, SIF_STORE_MAX);
            r = -E2BIG;
            goto fail;
        }
        e = sif_candidate(de->d_name, &st, 1);
        if (!e || (r = sif_insert(s, e)) != 0) {
            sif_entry_put(e);
            r = r ? r : -ENOMEM;
            goto fail;
        }
    }
    closedir(d);
    *out = s;
    return 0;
fail:
    if (d)
        closedir(d);
    sif_store_free(s);
    return r;
}

void sif_store_set_notify(struct sif_store *s, sif_store_notify_fn fn, void *ctx)
{
    s->notify = fn;
    s->notify_ctx = ctx;
}

void sif_store_set_audit(struct sif_store *s, struct sif_audit *a)
{
    s->audit = a;
}

/* --------------------------------------------------------------- inspection */

/* Inspects one entry outside the lock, then publishes the verdict. */
static void sif_store_inspect(struct sif_store *s, struct sif_entry *e)
{
    struct sif_image *img = NULL;
    struct timespec t0, t1;
    struct sif_verdict v;
    struct stat after;
    char line[600];
    uint64_t ms;
    int r;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    sif_verdict_init(&v);
    r = sif_image_open(s->dirfd, e->name, e->name, &img);
    if (r) {
        sif_reject(&v, r, "blob.open", "cannot open the image (%s)", strerror(-r));
    } else if (sif_declared_load(s->dirfd, e->name, &img->declared, &v) != 0) {
        sif_image_free(img);
        img = NULL;
    } else {
        sif_image_inspect(img, s->env);
        v = img->verdict;
        /* The bytes inspected must be the bytes served: a file written to
         * while it was inspected is judged again once it settles. */
        if (v.state == SIF_ACCEPTED && (fstat(img->fd, &after) != 0 || !sif_same_file(&after, &img->st))) {
            v.state = SIF_PENDING;
            v.check[0] = 0;
            sif_reject(&v, -EAGAIN, "blob.changed", "the file changed while it was inspected");
        }
        if (v.state != SIF_ACCEPTED) {
            sif_image_free(img);
            img = NULL;
        }
    }
    if (v.state == SIF_PENDING)
        sif_reject(&v, -EIO, "inspect.internal", "inspection ended without a verdict");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000 + (uint64_t)((t1.tv_nsec - t0.tv_nsec) / 1000000);

    pthread_mutex_lock(&s->lock);
    if (s->stopping || atomic_load(&e->stale)) {
        /* Unmounting, or the file changed meanwhile: the outcome means
         * nothing (a new entry judges the new content). */
        bool stale = !s->stopping;

        pthread_mutex_unlock(&s->lock);
        if (stale)
            sif_debug("%s: verdict of generation %u dropped: the file changed", e->display, e->generation);
        sif_image_free(img);
        return;
    }
    if (img)
        e->st = img->st;
    e->img = img;
    e->verdict = v;
    e->inspect_ms = ms;
    clock_gettime(CLOCK_REALTIME, &e->inspected_at);
    atomic_store_explicit(&e->state, v.state, memory_order_release);
    if (s->pending)
        s->pending--;
    s->inspections++;
    pthread_cond_broadcast(&s->decided);
    pthread_mutex_unlock(&s->lock);
    sif_verdict_line(e->display, &v, line, sizeof(line));
    sif_log(v.state == SIF_ACCEPTED ? SIF_LOG_INFO : SIF_LOG_WARN, "%s", line);
    sif_audit_event(s->audit, "verdict", e->display, e->generation, img ? &img->st : &e->st, &v, (int64_t)ms, NULL);
    /* A file that changed under the inspection: look again. */
    if (!strcmp(v.check, "blob.changed"))
        sif_store_poke(s, e->name, true);
}

static void *sif_store_worker(void *arg)
{
    struct sif_store *s = arg;

    pthread_mutex_lock(&s->lock);
    for (;;) {
        struct sif_entry *e;

        while (!s->stopping && !s->qhead)
            pthread_cond_wait(&s->work, &s->lock);
        if (s->stopping)
            break;
        e = s->qhead;
        s->qhead = e->qnext;
        if (!s->qhead)
            s->qtail = NULL;
        e->qnext = NULL;
        e->queued = false;
        if (e->started || atomic_load(&e->stale)) {
            pthread_mutex_unlock(&s->lock);
            sif_entry_put(e);
            pthread_mutex_lock(&s->lock);
            continue;
        }
        e->started = true;
        pthread_mutex_unlock(&s->lock);
        sif_store_inspect(s, e);
        sif_entry_put(e);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---------------------------------------------------------------- monitor */

/* Wakes the monitor (any thread; async-signal-safe). */
static void sif_wake(struct sif_store *s)
{
    uint64_t one = 1;

    if (s->wake_fd >= 0 && write(s->wake_fd, &one, sizeof(one)) < 0) {
        /* the counter is saturated: the monitor is awake anyway */
    }
}

static bool sif_dirty_has(const struct sif_store *s, const char *name)
{
    for (size_t i = 0; i < s->ndirty; i++)
        if (!strcmp(s->dirty[i].name, name))
            return true;
    return false;
}

/* Adds (or pushes back) a name waiting to settle.  Store lock. */
static void sif_dirty_add(struct sif_store *s, const char *name, uint32_t last_gen, bool force)
{
    uint64_t now = sif_now_ms(), due = now + SIF_SETTLE_MS;

    if (!s->monitoring)
        return;
    for (size_t i = 0; i < s->ndirty; i++) {
        struct sif_dirty *d = &s->dirty[i];

        if (strcmp(d->name, name) != 0)
            continue;
        /* quiet for SIF_SETTLE_MS, or SIF_SETTLE_MAX_MS after the first
         * change, whichever comes first */
        d->due_ms = due < d->first_ms + SIF_SETTLE_MAX_MS ? due : d->first_ms + SIF_SETTLE_MAX_MS;
        d->force |= force;
        if (last_gen > d->last_gen)
            d->last_gen = last_gen;
        return;
    }
    if (s->ndirty == s->dirty_cap) {
        size_t ncap = s->dirty_cap ? s->dirty_cap * 2 : 16;
        struct sif_dirty *nd = ncap <= SIF_STORE_MAX ? realloc(s->dirty, ncap * sizeof(*nd)) : NULL;

        if (!nd) {
            /* too many changes at once: compare everything instead */
            s->rescan = true;
            return;
        }
        s->dirty = nd;
        s->dirty_cap = ncap;
    }
    s->dirty[s->ndirty].name = strdup(name);
    if (!s->dirty[s->ndirty].name) {
        s->rescan = true;
        return;
    }
    s->dirty[s->ndirty].due_ms = due;
    s->dirty[s->ndirty].first_ms = now;
    s->dirty[s->ndirty].last_gen = last_gen;
    s->dirty[s->ndirty].force = force;
    s->ndirty++;
}

/* Queues a note for the monitor to deliver.  Store lock. */
static void sif_note_add(struct sif_store *s, const struct sif_entry *e, const char *event, const struct stat *st)
{
    struct sif_note *n;

    if (!s->monitoring)
        return;
    if (s->nnotes == s->notes_cap) {
        size_t ncap = s->notes_cap ? s->notes_cap * 2 : 16;
        struct sif_note *nn = realloc(s->notes, ncap * sizeof(*nn));

        if (!nn) {
            sif_err("%s: out of memory: the kernel may keep a stale cache of %s", s->path, e->display);
            return;
        }
        s->notes = nn;
        s->notes_cap = ncap;
    }
    n = &s->notes[s->nnotes];
    memset(n, 0, sizeof(*n));
    n->ino = strcmp(event, "added") ? e->ino : 0;
    n->name = strdup(e->name);
    n->display = strdup(e->display);
    n->event = event;
    n->generation = e->generation;
    if (st) {
        n->st = *st;
        n->has_st = true;
    }
    if (!n->name || !n->display) {
        free(n->name);
        free(n->display);
        return;
    }
    s->nnotes++;
}

/* Retires a live entry: stale at once, out of the list, a note for the
 * kernel.  Store lock; returns the list's reference for the caller to
 * put outside the lock. */
static struct sif_entry *sif_retire(struct sif_store *s, struct sif_entry *e, const struct stat *now)
{
    sif_remove(s, e);
    s->changes++;
    sif_note_add(s, e, now ? "changed" : "removed", now);
    return e;
}

static void sif_store_poke(struct sif_store *s, const char *name, bool force)
{
    pthread_mutex_lock(&s->lock);
    sif_dirty_add(s, name, 0, force);
    pthread_mutex_unlock(&s->lock);
    sif_wake(s);
}

int sif_entry_fresh(struct sif_store *s, struct sif_entry *e)
{
    const struct stat *was = &e->img->st;
    struct sif_entry *gone = NULL;
    struct stat st;

    if (atomic_load_explicit(&e->stale, memory_order_acquire))
        return -EIO;
    if (fstat(e->img->fd, &st) == 0 && st.st_nlink > 0 && sif_same_file(&st, was))
        return 0;
    pthread_mutex_lock(&s->lock);
    if (e->live) {
        sif_dirty_add(s, e->name, e->generation, true);
        gone = sif_retire(s, e, st.st_nlink > 0 ? &st : NULL);
    }
    atomic_store(&e->stale, true);
    pthread_mutex_unlock(&s->lock);
    sif_wake(s);
    if (gone) {
        sif_warn("%s: the file changed after it was inspected: its view is withdrawn", e->display);
        sif_entry_put(gone);
    }
    return -EIO;
}

/* An event (or a rescan) touched name: retire its entry at once if the
 * file is no longer the one listed, and let the name settle. */
static void sif_touch(struct sif_store *s, const char *name, bool force)
{
    struct sif_entry *cur, *gone = NULL;
    struct stat st;
    bool exists = fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    uint32_t last_gen = 0;

    pthread_mutex_lock(&s->lock);
    cur = sif_live(s, name);
    if (cur && (force || !exists || !sif_same_file(&st, &cur->st))) {
        last_gen = cur->generation;
        gone = sif_retire(s, cur, exists ? &st : NULL);
    }
    sif_dirty_add(s, name, last_gen, force);
    pthread_mutex_unlock(&s->lock);
    sif_entry_put(gone);
}

/* A settled name: (re)create its entry if the file is a candidate. */
static void sif_settle(struct sif_store *s, const struct sif_dirty *d)
{
    struct sif_entry *cur, *gone = NULL, *e = NULL;
    struct stat st;
    bool exists = fstatat(s->dirfd, d->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
    uint32_t last_gen = d->last_gen;
    int r = 0;

    pthread_mutex_lock(&s->lock);
    cur = sif_live(s, d->name);
    if (cur) {
        if (exists && !d->force && sif_same_file(&st, &cur->st)) {
            pthread_mutex_unlock(&s->lock);
            return;
        }
        if (cur->generation > last_gen)
            last_gen = cur->generation;
        gone = sif_retire(s, cur, exists ? &st : NULL);
    }
    if (exists && !s->stopping) {
        e = sif_candidate(d->name, &st, last_gen + 1);
        if (e && (r = sif_insert(s, e)) == 0) {
            if (!last_gen) {
                s->changes++;
                sif_note_add(s, e, "added", &st);
            }
            e = NULL;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (e || r)
        sif_err("%s: cannot follow %s (%s)", s->path, d->name, strerror(r ? -r : ENOMEM));
    sif_entry_put(e);
    sif_entry_put(gone);
}

/* Every name in the directory and every live name. */
static void sif_rescan(struct sif_store *s)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    DIR *d;
    int fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 || !(d = fdopendir(fd))) {
        if (fd >= 0)
            close(fd);
        sif_err("%s: cannot list the store again (%s)", s->path, strerror(errno));
        return;
    }
    pthread_mutex_lock(&s->lock);
    cap = s->n + 16;
    names = calloc(cap, sizeof(*names));
    for (size_t i = 0; names && i < s->n; i++)
        names[n++] = strdup(s->list[i]->name);
    pthread_mutex_unlock(&s->lock);
    while (names && (de = readdir(d))) {
        if (!sif_store_candidate(de->d_name))
            continue;
        if (n == cap) {
            char **nn = cap < SIF_STORE_MAX * 2 ? realloc(names, cap * 2 * sizeof(*nn)) : NULL;

            if (!nn)
                break;
            names = nn;
            cap *= 2;
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    for (size_t i = 0; i < n; i++) {
        if (names[i])
            sif_touch(s, names[i], false);
        free(names[i]);
    }
    free(names);
}

static void sif_deliver_notes(struct sif_store *s)
{
    struct sif_note *notes;
    size_t n;

    pthread_mutex_lock(&s->lock);
    notes = s->notes;
    n = s->nnotes;
    s->notes = NULL;
    s->nnotes = s->notes_cap = 0;
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n; i++) {
        struct sif_note *x = &notes[i];

        if (strcmp(x->event, "added"))
            sif_info("%s: %s: view generation %u withdrawn", x->display,
                     strcmp(x->event, "removed") ? "the file changed" : "the file is gone", x->generation);
        sif_audit_event(s->audit, x->event, x->display, x->generation, x->has_st ? &x->st : NULL, NULL, -1, NULL);
        if (s->notify) {
            struct sif_kn *k = malloc(sizeof(*k));

            if (k) {
                k->ino = x->ino;
                k->name = x->name;
                k->next = NULL;
                x->name = NULL;
                pthread_mutex_lock(&s->lock);
                if (s->kn_tail)
                    s->kn_tail->next = k;
                else
                    s->kn_head = k;
                s->kn_tail = k;
                pthread_cond_signal(&s->kn_cond);
                pthread_mutex_unlock(&s->lock);
            } else {
                sif_err("%s: out of memory: the kernel may keep a stale cache of %s", s->path, x->display);
            }
        }
        free(x->name);
        free(x->display);
    }
    free(notes);
}

static void *sif_notifier(void *arg)
{
    struct sif_store *s = arg;

    pthread_mutex_lock(&s->lock);
    for (;;) {
        struct sif_kn *k;

        while (!s->stopping && !s->kn_head)
            pthread_cond_wait(&s->kn_cond, &s->lock);
        if (s->stopping)
            break;
        k = s->kn_head;
        s->kn_head = k->next;
        if (!s->kn_head)
            s->kn_tail = NULL;
        pthread_mutex_unlock(&s->lock);
        s->notify(s->notify_ctx, k->ino, k->name);
        free(k->name);
        free(k);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* The name an event is about: a candidate itself, or the image a sidecar
 * describes (NAME.json -> NAME, force).  NULL when neither. */
static const char *sif_event_name(const char *name, char *buf, size_t len, bool *force)
{
    size_t n = strlen(name);

    *force = false;
    if (sif_store_candidate(name))
        return name;
    if (n > 5 && n - 5 < len && !strcmp(name + n - 5, ".json") && name[0] != '.') {
        memcpy(buf, name, n - 5);
        buf[n - 5] = 0;
        if (sif_store_candidate(buf)) {
            *force = true;
            return buf;
        }
    }
    return NULL;
}

/* Something in the key directory changed: every image rejected for its
 * key (key.missing, key.perms, key.wrong, ...) is judged again. */
static void sif_keys_changed(struct sif_store *s)
{
    char **names = NULL;
    size_t n = 0;

    pthread_mutex_lock(&s->lock);
    names = calloc(s->n ? s->n : 1, sizeof(*names));
    for (size_t i = 0; names && i < s->n; i++) {
        const struct sif_entry *e = s->list[i];

        if (atomic_load(&e->state) == SIF_REJECTED && !strncmp(e->verdict.check, "key.", 4))
            names[n++] = strdup(e->name);
    }
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n; i++) {
        if (names[i])
            sif_touch(s, names[i], true);
        free(names[i]);
    }
    free(names);
}

static void sif_read_events(struct sif_store *s)
{
    /* aligned for struct inotify_event; room for many events per read */
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));

    for (;;) {
        ssize_t len = read(s->inotify_fd, buf, sizeof(buf));

        if (len <= 0)
            return;
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            char base[NAME_MAX + 1];
            const char *name;
            bool force;

            p += sizeof(*ev) + ev->len;
            if (ev->wd == s->keys_wd && s->keys_wd >= 0) {
                if (!(ev->mask & IN_IGNORED))
                    sif_keys_changed(s);
                continue;
            }
            if (ev->mask & IN_Q_OVERFLOW) {
                pthread_mutex_lock(&s->lock);
                s->rescan = true;
                pthread_mutex_unlock(&s->lock);
                continue;
            }
            if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
                sif_err("%s: the store directory was moved or removed: no more changes are followed", s->path);
                continue;
            }
            if (!ev->len || !ev->name[0])
                continue;
            name = sif_event_name(ev->name, base, sizeof(base), &force);
            /* a write may keep size and times (same timestamp tick): the
             * event itself says the bytes changed */
            if (name)
                sif_touch(s, name, force || (ev->mask & IN_MODIFY));
        }
    }
}

static void *sif_monitor(void *arg)
{
    struct sif_store *s = arg;

    for (;;) {
        struct pollfd pf[2] = { { s->inotify_fd, POLLIN, 0 }, { s->wake_fd, POLLIN, 0 } };
        uint64_t now = sif_now_ms(), next = UINT64_MAX, tick;
        int timeout;
        bool rescan;

        pthread_mutex_lock(&s->lock);
        for (size_t i = 0; i < s->ndirty; i++)
            if (s->dirty[i].due_ms < next)
                next = s->dirty[i].due_ms;
        pthread_mutex_unlock(&s->lock);
        timeout = next == UINT64_MAX ? -1 : next <= now ? 0 : (int)(next - now);
        if (poll(pf, 2, timeout) < 0 && errno != EINTR)
            break;
        if (pf[1].revents & POLLIN) {
            if (read(s->wake_fd, &tick, sizeof(tick)) < 0) {
                /* nonblocking and already drained */
            }
        }
        pthread_mutex_lock(&s->lock);
        if (s->stopping) {
            pthread_mutex_unlock(&s->lock);
            break;
        }
        pthread_mutex_unlock(&s->lock);
        if (pf[0].revents & POLLIN)
            sif_read_events(s);
        pthread_mutex_lock(&s->lock);
        rescan = s->rescan;
        s->rescan = false;
        pthread_mutex_unlock(&s->lock);
        if (rescan)
            sif_rescan(s);
        sif_deliver_notes(s);
        /* the names that have been quiet long enough, one at a time (the
         * list may change while one is settled) */
        for (;;) {
            struct sif_dirty d = { 0 };
            bool found = false;

            now = sif_now_ms();
            pthread_mutex_lock(&s->lock);
            for (size_t i = 0; i < s->ndirty; i++) {
                if (s->dirty[i].due_ms > now)
                    continue;
                d = s->dirty[i];
                s->dirty[i] = s->dirty[--s->ndirty];
                found = true;
                break;
            }
            pthread_mutex_unlock(&s->lock);
            if (!found)
                break;
            sif_settle(s, &d);
            free(d.name);
            pthread_mutex_lock(&s->lock);
            pthread_cond_broadcast(&s->decided);  /* sif_store_wait_all */
            pthread_mutex_unlock(&s->lock);
        }
        sif_deliver_notes(s);
    }
    return NULL;
}

/* ------------------------------------------------------------------- API */

int sif_store_start(struct sif_store *s, unsigned nworkers, bool watch)
{
    if (nworkers == 0)
        nworkers = 1;
    if (watch) {
        s->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (s->inotify_fd < 0 || s->wake_fd < 0)
            return -errno;
        /* Everything that can change a file's bytes or which file a name
         * is: writes, truncation, renames in and out, deletion, and
         * attribute changes (a touch that restores an mtime). */
        s->store_wd = inotify_add_watch(s->inotify_fd, s->path,
                                        IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO |
                                            IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR |
                                            IN_EXCL_UNLINK);
        if (s->store_wd < 0)
            return -errno;
        /* A key that appears or is fixed later: the images rejected for
         * their key are judged again (best effort: without the watch a
         * touch of the image does it). */
        if (s->env->keys && s->env->keys->kind == SIF_KEYSRC_DIR && s->env->keys->dirfd >= 0) {
            char kpath[64];

            /* the directory that was opened, even if given relative to a
             * working directory the daemon has left */
            snprintf(kpath, sizeof(kpath), "/proc/self/fd/%d", s->env->keys->dirfd);
            s->keys_wd = inotify_add_watch(s->inotify_fd, kpath, IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB | IN_ONLYDIR);
            if (s->keys_wd < 0)
                sif_warn("%s: cannot watch the key directory (%s): fix a key, then touch its image",
                         s->env->keys->path, strerror(errno));
        }
        pthread_mutex_lock(&s->lock);
        s->monitoring = true;
        /* anything that changed between the listing and the watch */
        s->rescan = true;
        pthread_mutex_unlock(&s->lock);
        if (s->notify) {
            if (pthread_create(&s->notifier, NULL, sif_notifier, s) != 0)
                return -EAGAIN;
            s->notifying = true;
        }
        if (pthread_create(&s->monitor, NULL, sif_monitor, s) != 0) {
            pthread_mutex_lock(&s->lock);
            s->monitoring = false;
            pthread_mutex_unlock(&s->lock);
            return -EAGAIN;
        }
        s->monitor_running = true;
    }
    s->workers = calloc(nworkers, sizeof(*s->workers));
    if (!s->workers)
        return -ENOMEM;
    for (unsigned i = 0; i < nworkers; i++) {
        int r = pthread_create(&s->workers[i], NULL, sif_store_worker, s);

        if (r)
            return -r;
        s->nworkers++;
    }
    if (watch)
        sif_wake(s);
    return 0;
}

void sif_store_stop(struct sif_store *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->decided);
    pthread_cond_broadcast(&s->work);
    pthread_cond_broadcast(&s->kn_cond);
    pthread_mutex_unlock(&s->lock);
    sif_wake(s);
    /* No notification may reach the glue after this returns (it is about
     * to tear its session down). */
    if (s->monitor_running) {
        pthread_join(s->monitor, NULL);
        s->monitor_running = false;
    }
    if (s->notifying) {
        pthread_join(s->notifier, NULL);
        s->notifying = false;
    }
}

void sif_store_free(struct sif_store *s)
{
    if (!s)
        return;
    sif_store_stop(s);
    for (unsigned i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    free(s->workers);
    while (s->kn_head) {
        struct sif_kn *k = s->kn_head;

        s->kn_head = k->next;
        free(k->name);
        free(k);
    }
    while (s->qhead) {
        struct sif_entry *e = s->qhead;

        s->qhead = e->qnext;
        sif_entry_put(e);
    }
    for (size_t i = 0; i < s->n; i++)
        sif_entry_put(s->list[i]);
    free(s->list);
    free(s->by_ino);
    for (size_t i = 0; i < s->ndirty; i++)
        free(s->dirty[i].name);
    free(s->dirty);
    for (size_t i = 0; i < s->nnotes; i++) {
        free(s->notes[i].name);
        free(s->notes[i].display);
    }
    free(s->notes);
    if (s->inotify_fd >= 0)
        close(s->inotify_fd);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    if (s->dirfd >= 0)
        close(s->dirfd);
    free(s->path);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->kn_cond);
    pthread_cond_destroy(&s->decided);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

size_t sif_store_count(struct sif_store *s)
{
    size_t n;

    pthread_mutex_lock(&s->lock);
    n = s->n;
    pthread_mutex_unlock(&s->lock);
    return n;
}

struct sif_entry *sif_store_entry(struct sif_store *s, size_t i)
{
    struct sif_entry *e = NULL;

    pthread_mutex_lock(&s->lock);
    if (i < s->n) {
        e = s->list[i];
        sif_entry_get(e);
    }
    pthread_mutex_unlock(&s->lock);
    return e;
}

struct sif_entry *sif_store_get(struct sif_store *s, uint64_t ino)
{
    struct sif_entry *e = NULL;
    bool found;
    size_t i;

    pthread_mutex_lock(&s->lock);
    i = sif_ino_pos(s, ino, &found);
    if (found) {
        e = s->by_ino[i];
        sif_entry_get(e);
    }
    pthread_mutex_unlock(&s->lock);
    return e;
}

/* A lookup missed: is name a file the monitor has not caught up with (a
 * NAME.part renamed to NAME a moment ago)?  Then it is made to settle now,
 * and the lookup waits for it like for any pending entry. */
static struct sif_entry *sif_find_settling(struct sif_store *s, const char *name)
{
    struct sif_entry *e = NULL;
    struct stat st;

    if (!s->monitoring || !sif_store_candidate(name))
        return NULL;
    pthread_mutex_unlock(&s->lock);
    if (fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
        sif_store_poke(s, name, false);
    pthread_mutex_lock(&s->lock);
    {
        struct timespec until;

        /* bounded: a name that keeps changing settles within
         * SIF_SETTLE_MAX_MS, this allows twice that */
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 2 * SIF_SETTLE_MAX_MS / 1000;
        while (!s->stopping && !(e = sif_live(s, name)) && sif_dirty_has(s, name))
            if (pthread_cond_timedwait(&s->decided, &s->lock, &until) == ETIMEDOUT)
                break;
    }
    return e;
}

struct sif_entry *sif_store_find(struct sif_store *s, const char *name, bool wait)
{
    struct sif_entry *e;

    pthread_mutex_lock(&s->lock);
    e = sif_live(s, name);
    if (!e && wait)
        e = sif_find_settling(s, name);
    if (!e) {
        pthread_mutex_unlock(&s->lock);
        return NULL;
    }
    sif_entry_get(e);
    if (wait) {
        /* Someone is waiting for this one: inspect it next. */
        if (!e->started && !e->urgent && atomic_load(&e->state) == SIF_PENDING) {
            e->urgent = true;
            sif_enqueue(s, e, true);
        }
        while (atomic_load_explicit(&e->state, memory_order_relaxed) == SIF_PENDING && e->live && !s->stopping)
            pthread_cond_wait(&s->decided, &s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return e;
}

enum sif_state sif_store_state(struct sif_store *s, const struct sif_entry *e)
{
    (void)s;
    return (enum sif_state)atomic_load_explicit(&e->state, memory_order_acquire);
}

void sif_store_wait_all(struct sif_store *s)
{
    pthread_mutex_lock(&s->lock);
    while ((s->pending || (s->monitoring && s->ndirty)) && !s->stopping)
        pthread_cond_wait(&s->decided, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

void sif_store_each(struct sif_store *s, size_t from,
                    bool (*fn)(void *ctx, const char *name, uint64_t ino, size_t next), void *ctx)
{
    pthread_mutex_lock(&s->lock);
    for (size_t i = from; i < s->n; i++) {
        struct sif_entry *e = s->list[i];

        if (atomic_load(&e->state) != SIF_ACCEPTED || atomic_load(&e->stale))
            continue;
        if (!fn(ctx, e->name, e->ino, i + 1))
            break;
    }
    pthread_mutex_unlock(&s->lock);
}

char *sif_store_status_json(struct sif_store *s, size_t *len)
{
    struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
    size_t counts[3] = { 0, 0, 0 };
    uint64_t inspections, changes;
    bool watching;
    char *out;

    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        const struct sif_entry *e = s->list[i];
        enum sif_state st = (enum sif_state)atomic_load(&e->state);
        struct json_object *o, *f;

        counts[st]++;
        o = sif_verdict_json(e->display, &e->verdict);
        json_object_object_add(o, "generation", json_object_new_int64(e->generation));
        if (st != SIF_PENDING) {
            json_object_object_add(o, "inspected_at", sif_time_json(&e->inspected_at));
            json_object_object_add(o, "inspect_ms", json_object_new_int64((int64_t)e->inspect_ms));
        } else {
            json_object_object_add(o, "inspected_at", NULL);
            json_object_object_add(o, "inspect_ms", NULL);
        }
        f = json_object_new_object();
        json_object_object_add(f, "size", json_object_new_int64((int64_t)e->st.st_size));
        json_object_object_add(f, "inode", json_object_new_int64((int64_t)e->st.st_ino));
        json_object_object_add(f, "mtime", sif_time_json(&e->st.st_mtim));
        json_object_object_add(o, "file", f);
        json_object_array_add(arr, o);
    }
    inspections = s->inspections;
    changes = s->changes;
    watching = s->monitoring;
    pthread_mutex_unlock(&s->lock);
    json_object_object_add(root, "version", json_object_new_int(2));
    json_object_object_add(root, "store", json_object_new_string(s->path));
    json_object_object_add(root, "started_at", sif_time_json(&s->started_at));
    json_object_object_add(root, "watching", json_object_new_boolean(watching));
    json_object_object_add(root, "inspections", json_object_new_int64((int64_t)inspections));
    json_object_object_add(root, "changes", json_object_new_int64((int64_t)changes));
    json_object_object_add(root, "pending", json_object_new_int64((int64_t)counts[SIF_PENDING]));
    json_object_object_add(root, "accepted", json_object_new_int64((int64_t)counts[SIF_ACCEPTED]));
    json_object_object_add(root, "rejected", json_object_new_int64((int64_t)counts[SIF_REJECTED]));
    json_object_object_add(root, "images", arr);
    out = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
    if (out) {
        size_t n = strlen(out);
        char *o2 = realloc(out, n + 2);
        if (o2) {
            out = o2;
            out[n++] = '\n';
            out[n] = 0;
        }
        *len = n;
    }
    return out;
}
