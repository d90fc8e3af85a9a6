/* audit.c: the JSON-lines audit log. */
#include "config.h"

#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

struct sif_audit {
    int fd;
    pthread_mutex_t lock;   /* one line at a time, in order */
    bool failed;            /* a write failed: said once, then quiet */
};

int sif_audit_open(const char *path, struct sif_audit **out)
{
    struct sif_audit *a = calloc(1, sizeof(*a));
    struct stat st;

    *out = NULL;
    if (!a)
        return -ENOMEM;
    a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (a->fd < 0) {
        int e = -errno;

        free(a);
        return e;
    }
    if (fstat(a->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(a->fd);
        free(a);
        return -EINVAL;
    }
    pthread_mutex_init(&a->lock, NULL);
    *out = a;
    return 0;
}

void sif_audit_close(struct sif_audit *a)
{
    if (!a)
        return;
    close(a->fd);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void sif_rfc3339(const struct timespec *ts, char *buf, size_t len)
{
    struct tm tm;
    char day[32];

    gmtime_r(&ts->tv_sec, &tm);
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03ldZ", day, ts->tv_nsec / 1000000);
}

struct json_object *sif_time_json(const struct timespec *ts)
{
    char buf[48];

    sif_rfc3339(ts, buf, sizeof(buf));
    return json_object_new_string(buf);
}

void sif_audit_event(struct sif_audit *a, const char *event, const char *name, uint32_t generation,
                     const struct stat *st, const struct sif_verdict *v, int64_t inspect_ms, const char *store)
{
    struct json_object *o;
    struct timespec now;
    const char *line;
    size_t len;

    if (!a)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    o = json_object_new_object();
    json_object_object_add(o, "time", sif_time_json(&now));
    json_object_object_add(o, "event", json_object_new_string(event));
    if (store)
        json_object_object_add(o, "store", json_object_new_string(store));
    if (name) {
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "generation", json_object_new_int64(generation));
    }
    if (st) {
        struct json_object *f = json_object_new_object();

        json_object_object_add(f, "size", json_object_new_int64((int64_t)st->st_size));
        json_object_object_add(f, "inode", json_object_new_int64((int64_t)st->st_ino));
        json_object_object_add(f, "mtime", sif_time_json(&st->st_mtim));
        json_object_object_add(o, "file", f);
    }
    if (v) {
        struct json_object *vj = sif_verdict_json(name ? name : "", v), *x;

        /* the verdict's own fields, flattened into the event */
        json_object_object_foreach(vj, key, val)
        {
            if (!strcmp(key, "name"))
                continue;
            x = val ? json_object_get(val) : NULL;
            json_object_object_add(o, key, x);
        }
        json_object_put(vj);
    }
    if (inspect_ms >= 0)
        json_object_object_add(o, "inspect_ms", json_object_new_int64(inspect_ms));
    line = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    len = strlen(line);
    pthread_mutex_lock(&a->lock);
    {
        char *buf = malloc(len + 1);
        ssize_t n = -1;

        if (buf) {
            memcpy(buf, line, len);
            buf[len] = '\n';
            n = write(a->fd, buf, len + 1);
            free(buf);
        }
        if (n != (ssize_t)len + 1 && !a->failed) {
            a->failed = true;
            sif_err("audit log: cannot append (%s)", n < 0 ? strerror(errno) : "short write");
        } else if (n == (ssize_t)len + 1) {
            a->failed = false;
        }
    }
    pthread_mutex_unlock(&a->lock);
    json_object_put(o);
}
