/* store.c: candidates, the worker pool, verdicts. */
#include "config.h"

#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

struct sif_store {
    char *path;
    int dirfd;
    const struct sif_inspect_env *env;
    pthread_mutex_t lock;
    pthread_cond_t decided;   /* broadcast whenever a verdict is reached */
    struct sif_entry *entries;
    size_t n;
    size_t next;              /* next entry to inspect, in name order */
    size_t urgent[SIF_URGENT_MAX]; /* entries a lookup is waiting for */
    size_t nurgent;
    size_t pending;
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

static int sif_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sif_entry *)a)->name, ((const struct sif_entry *)b)->name);
}

int sif_store_open(const char *path, const struct sif_inspect_env *env, struct sif_store **out)
{
    struct sif_store *s = calloc(1, sizeof(*s));
    struct dirent *de;
    size_t cap = 0;
    DIR *d = NULL;
    int fd, r = 0;

    *out = NULL;
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->decided, NULL);
    s->env = env;
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
        if (s->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct sif_entry *ne = realloc(s->entries, ncap * sizeof(*ne));

            if (!ne) {
                r = -ENOMEM;
                goto fail;
            }
            s->entries = ne;
            cap = ncap;
        }
        struct sif_entry *e = &s->entries[s->n];
        memset(e, 0, sizeof(*e));
        sif_verdict_init(&e->verdict);
        atomic_init(&e->state, SIF_PENDING);
        e->name = strdup(de->d_name);
        e->display = sif_store_name_ok(de->d_name) ? strdup(de->d_name) : sif_store_escape_name(de->d_name);
        if (!e->name || !e->display) {
            r = -ENOMEM;
            goto fail;
        }
        s->n++;
    }
    closedir(d);
    d = NULL;
    if (s->n)
        qsort(s->entries, s->n, sizeof(*s->entries), sif_entry_cmp);
    s->pending = s->n;
    for (size_t i = 0; i < s->n; i++) {
        struct sif_entry *e = &s->entries[i];
        char line[600];

        e->index = i;
        if (sif_store_name_ok(e->name))
            continue;
        sif_reject(&e->verdict, -EINVAL, "name.invalid",
                   "the file name is not valid UTF-8 or contains control characters");
        atomic_store(&e->state, SIF_REJECTED);
        e->started = true;
        s->pending--;
        sif_verdict_line(e->display, &e->verdict, line, sizeof(line));
        sif_warn("%s", line);
    }
    *out = s;
    return 0;
fail:
    if (d)
        closedir(d);
    sif_store_free(s);
    return r;
}

/* Inspects one entry outside the lock, then publishes the verdict. */
static void sif_store_inspect(struct sif_store *s, struct sif_entry *e)
{
    struct sif_image *img = NULL;
    struct sif_verdict v;
    char line[600];
    int r;

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
        if (v.state != SIF_ACCEPTED) {
            sif_image_free(img);
            img = NULL;
        }
    }
    if (v.state == SIF_PENDING)
        sif_reject(&v, -EIO, "inspect.internal", "inspection ended without a verdict");

    pthread_mutex_lock(&s->lock);
    if (s->stopping) {
        /* Unmounting: the inspection was cut short, its outcome means
         * nothing. */
        pthread_mutex_unlock(&s->lock);
        sif_image_free(img);
        return;
    }
    sif_verdict_line(e->display, &v, line, sizeof(line));
    sif_log(v.state == SIF_ACCEPTED ? SIF_LOG_INFO : SIF_LOG_WARN, "%s", line);
    e->img = img;
    e->verdict = v;
    atomic_store_explicit(&e->state, v.state, memory_order_release);
    s->pending--;
    pthread_cond_broadcast(&s->decided);
    pthread_mutex_unlock(&s->lock);
}

static void *sif_store_worker(void *arg)
{
    struct sif_store *s = arg;

    for (;;) {
        struct sif_entry *e = NULL;

        pthread_mutex_lock(&s->lock);
        while (!e && !s->stopping && s->nurgent)
            e = &s->entries[s->urgent[--s->nurgent]];
        while (!e && !s->stopping && s->next < s->n)
            e = &s->entries[s->next++];
        if (e && e->started) {
            pthread_mutex_unlock(&s->lock);
            continue;
        }
        if (!e) {
            pthread_mutex_unlock(&s->lock);
            return NULL;
        }
        e->started = true;
        pthread_mutex_unlock(&s->lock);
        sif_store_inspect(s, e);
    }
}

int sif_store_start(struct sif_store *s, unsigned nworkers)
{
    if (nworkers == 0)
        nworkers = 1;
    s->workers = calloc(nworkers, sizeof(*s->workers));
    if (!s->workers)
        return -ENOMEM;
    for (unsigned i = 0; i < nworkers; i++) {
        int r = pthread_create(&s->workers[i], NULL, sif_store_worker, s);

        if (r)
            return -r;
        s->nworkers++;
    }
    return 0;
}

void sif_store_stop(struct sif_store *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->decided);
    pthread_mutex_unlock(&s->lock);
}

void sif_store_free(struct sif_store *s)
{
    if (!s)
        return;
    sif_store_stop(s);
    for (unsigned i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    free(s->workers);
    for (size_t i = 0; i < s->n; i++) {
        sif_image_free(s->entries[i].img);
        free(s->entries[i].name);
        free(s->entries[i].display);
    }
    free(s->entries);
    if (s->dirfd >= 0)
        close(s->dirfd);
    free(s->path);
    pthread_cond_destroy(&s->decided);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

size_t sif_store_count(const struct sif_store *s)
{
    return s->n;
}

struct sif_entry *sif_store_entry(struct sif_store *s, size_t i)
{
    return i < s->n ? &s->entries[i] : NULL;
}

struct sif_entry *sif_store_find(struct sif_store *s, const char *name, bool wait)
{
    struct sif_entry key = { .name = (char *)name };
    struct sif_entry *e;

    if (!s->n)
        return NULL;
    e = bsearch(&key, s->entries, s->n, sizeof(*s->entries), sif_entry_cmp);
    if (!e || !wait)
        return e;
    pthread_mutex_lock(&s->lock);
    /* Someone is waiting for this one: inspect it next. */
    if (!e->started && s->nurgent < SIF_URGENT_MAX)
        s->urgent[s->nurgent++] = e->index;
    while (atomic_load_explicit(&e->state, memory_order_relaxed) == SIF_PENDING && !s->stopping)
        pthread_cond_wait(&s->decided, &s->lock);
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
    while (s->pending && !s->stopping)
        pthread_cond_wait(&s->decided, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

char *sif_store_status_json(struct sif_store *s, size_t *len)
{
    struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
    size_t counts[3] = { 0, 0, 0 };
    char *out;

    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n; i++) {
        counts[s->entries[i].verdict.state]++;
        json_object_array_add(arr, sif_verdict_json(s->entries[i].display, &s->entries[i].verdict));
    }
    pthread_mutex_unlock(&s->lock);
    json_object_object_add(root, "version", json_object_new_int(1));
    json_object_object_add(root, "store", json_object_new_string(s->path));
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
