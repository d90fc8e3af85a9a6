/* safeimgfs: a read-only FUSE filesystem of inspected plaintext views.
 *
 * This file is glue: option parsing, the FUSE low-level operations and the
 * process lifecycle.  Inspection lives in image.c/store.c; every callback
 * here replies exactly once on every path.
 *
 * Inodes: 1 the root, 2 ".safeimgfs", 3 ".safeimgfs/status.json", and
 * from SIF_STORE_INO_FIRST on, one number per store entry, never reused: a
 * file that changes gets a new entry, so a new inode, and the old one is
 * invalidated in the kernel (sif_notify).
 */
#define FUSE_USE_VERSION 314
#include "config.h"

#include <errno.h>
#include <fuse_lowlevel.h>
#include <grp.h>
#include <pwd.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "image.h"
#include "keys.h"
#include "log.h"
#include "policy.h"
#include "secmem.h"
#include "store.h"
#include "unlock.h"

#define SIF_INO_ROOT 1
#define SIF_INO_META 2
#define SIF_INO_STATUS 3
#define SIF_INO_FIRST SIF_STORE_INO_FIRST
#define SIF_META_DIR ".safeimgfs"
#define SIF_STATUS_FILE "status.json"
/* Largest READ request accepted: the kernel sends at most 1 MiB. */
#define SIF_MAX_READ (1u << 20)
/* How long the kernel may cache names and attributes.  A view never
 * changes: a changed file becomes a new inode, and the monitor invalidates
 * the old name and inode explicitly; this only bounds how long a lost
 * invalidation could matter. */
#define SIF_TIMEOUT 60.0

struct sif_fs {
    struct sif_store *store;
    struct fuse_session *se;      /* set once mounted, for invalidations */
    uid_t uid;
    gid_t gid;
    mode_t umask;
    time_t mount_time;
};

struct sif_opts {
    char *store;
    char *keyfile;
    char *keydir;
    char *key_command;
    char *key_format;
    char *policy;
    char *audit_log;
    char *uid, *gid;             /* a number or a user/group name */
    int umask;
    int workers;
    int unlock_timeout;
    int show_version;
    /* mount options seen (see the /dev/fd/N check in main) */
    bool seen_ro, seen_nodev, seen_nosuid, seen_default_permissions;
};

enum { SIF_KEY_RO = 1, SIF_KEY_NODEV, SIF_KEY_NOSUID, SIF_KEY_DEFAULT_PERMISSIONS };

/* --------------------------------------------------------------- helpers */

static struct sif_fs *sif_fs(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static void sif_fill_stat(struct sif_fs *fs, fuse_ino_t ino, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_uid = fs->uid;
    st->st_gid = fs->gid;
    st->st_mtime = st->st_ctime = st->st_atime = fs->mount_time;
    if (ino == SIF_INO_ROOT || ino == SIF_INO_META) {
        st->st_mode = S_IFDIR | (0555 & ~fs->umask);
        st->st_nlink = ino == SIF_INO_ROOT ? 3 : 2;
    } else {
        st->st_mode = S_IFREG | (0444 & ~fs->umask);
        st->st_nlink = 1;
    }
}

/* Attributes of a view: its size and the blob's times. */
static void sif_view_stat(struct sif_fs *fs, const struct sif_entry *e, struct stat *st)
{
    sif_fill_stat(fs, e->ino, st);
    st->st_size = (off_t)e->img->size;
    /* What holds data: tools such as cp look for holes only when the
     * blocks say the file is sparse. */
    st->st_blocks = (blkcnt_t)((e->img->allocated + 511) / 512);
    st->st_blksize = 4096;
    st->st_mtim = e->img->st.st_mtim;
    st->st_ctim = e->img->st.st_ctim;
    st->st_atim = e->img->st.st_atim;
}

/* The accepted, live entry behind a view inode (a reference), or NULL. */
static struct sif_entry *sif_view(struct sif_fs *fs, fuse_ino_t ino)
{
    struct sif_entry *e;

    if (ino < SIF_INO_FIRST)
        return NULL;
    e = sif_store_get(fs->store, ino);
    if (e && (sif_store_state(fs->store, e) != SIF_ACCEPTED || atomic_load(&e->stale))) {
        sif_entry_put(e);
        e = NULL;
    }
    return e;
}

/* The store's monitor retired a view or saw a name appear: drop what the
 * kernel cached.  Runs on the monitor thread, never inside a request. */
static void sif_notify(void *ctx, uint64_t ino, const char *name)
{
    struct sif_fs *fs = ctx;
    int r;

    if (!fs->se)
        return;
    if (ino) {
        r = fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
        if (r && r != -ENOENT)
            sif_debug("cannot invalidate inode %llu (%s)", (unsigned long long)ino, strerror(-r));
    }
    r = fuse_lowlevel_notify_inval_entry(fs->se, SIF_INO_ROOT, name, strlen(name));
    if (r && r != -ENOENT)
        sif_debug("cannot invalidate the name of inode %llu (%s)", (unsigned long long)ino, strerror(-r));
}

/* The kernel's readahead for this mount is raised (root only, best
 * effort): buffered reads of a FUSE file arrive as readahead-sized
 * requests, 128 KiB by default, and 1 MiB makes each round trip carry eight
 * times the work.  The sysfs file is found from mountinfo after mounting
 * (stat() would wait for this daemon), and written on the first request,
 * after INIT, which would otherwise lower it again. */
static char sif_ra_path[128];
static pthread_once_t sif_ra_once = PTHREAD_ONCE_INIT;

static void sif_ra_find(const char *mountpoint)
{
    char line[4096], *abs = realpath(mountpoint, NULL);
    unsigned maj = 0, min = 0;
    bool found = false;
    FILE *f;

    if (!abs)
        return;
    f = fopen("/proc/self/mountinfo", "re");
    while (f && fgets(line, sizeof(line), f)) {
        char mnt[4096];
        unsigned a, b;

        /* id parent major:minor root mountpoint ...; the last match wins
         * (stacked mounts list the newest last) */
        if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &a, &b, mnt) == 3 && !strcmp(mnt, abs)) {
            maj = a;
            min = b;
            found = true;
        }
    }
    if (f)
        fclose(f);
    free(abs);
    if (found)
        snprintf(sif_ra_path, sizeof(sif_ra_path), "/sys/class/bdi/%u:%u/read_ahead_kb", maj, min);
}

static void sif_ra_apply(void)
{
    FILE *f;

    if (!sif_ra_path[0] || !(f = fopen(sif_ra_path, "we")))
        return;
    fprintf(f, "%u\n", SIF_MAX_READ / 1024);
    if (fclose(f) != 0)
        sif_debug("cannot raise readahead through %s", sif_ra_path);
}

/* ------------------------------------------------------------ operations */

static void sif_op_init(void *userdata, struct fuse_conn_info *conn)
{
    conn->max_read = SIF_MAX_READ;
    /* Readahead requests are background requests: allow enough of them
     * for several readers. */
    conn->max_background = 64;
    conn->congestion_threshold = 48;
    conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
}

static void sif_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct sif_fs *fs = sif_fs(req);
    struct fuse_entry_param ep;

    pthread_once(&sif_ra_once, sif_ra_apply);
    memset(&ep, 0, sizeof(ep));
    ep.attr_timeout = ep.entry_timeout = SIF_TIMEOUT;
    if (parent == SIF_INO_ROOT && !strcmp(name, SIF_META_DIR)) {
        ep.ino = SIF_INO_META;
    } else if (parent == SIF_INO_META && !strcmp(name, SIF_STATUS_FILE)) {
        ep.ino = SIF_INO_STATUS;
        ep.attr_timeout = ep.entry_timeout = 0;
    } else if (parent == SIF_INO_ROOT && sif_store_candidate(name)) {
        /* A pending view is waited for: its name must not fail before the
         * verdict is known. */
        struct sif_entry *e = sif_store_find(fs->store, name, true);

        if (!e || sif_store_state(fs->store, e) != SIF_ACCEPTED || atomic_load(&e->stale)) {
            sif_entry_put(e);
            fuse_reply_err(req, ENOENT);
            return;
        }
        ep.ino = e->ino;
        sif_view_stat(fs, e, &ep.attr);
        sif_entry_put(e);
        fuse_reply_entry(req, &ep);
        return;
    } else {
        fuse_reply_err(req, ENOENT);
        return;
    }
    sif_fill_stat(fs, ep.ino, &ep.attr);
    fuse_reply_entry(req, &ep);
}

static void sif_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct sif_fs *fs = sif_fs(req);
    struct sif_entry *e;
    struct stat st;

    pthread_once(&sif_ra_once, sif_ra_apply);
    if (ino == SIF_INO_ROOT || ino == SIF_INO_META || ino == SIF_INO_STATUS) {
        sif_fill_stat(fs, ino, &st);
        if (ino == SIF_INO_STATUS) {
            size_t len = 0;
            char *json = sif_store_status_json(fs->store, &len);

            free(json);
            st.st_size = (off_t)len;
        }
        fuse_reply_attr(req, &st, ino == SIF_INO_STATUS ? 0 : SIF_TIMEOUT);
        return;
    }
    /* Through an open handle: the handle's entry, and EIO (as for its
     * reads) once the file behind it changed. */
    if (fi && fi->fh && ino >= SIF_INO_FIRST) {
        e = (struct sif_entry *)(uintptr_t)fi->fh;
        if (e->ino != ino || sif_entry_fresh(fs->store, e) != 0) {
            fuse_reply_err(req, EIO);
            return;
        }
        sif_entry_get(e);
    } else {
        e = sif_view(fs, ino);
    }
    if (!e) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    sif_view_stat(fs, e, &st);
    sif_entry_put(e);
    fuse_reply_attr(req, &st, SIF_TIMEOUT);
}

struct sif_dirbuf {
    fuse_req_t req;
    char *buf;
    size_t size, used;
};

static bool sif_dir_add(struct sif_dirbuf *d, const char *name, fuse_ino_t ino, mode_t mode, size_t next)
{
    struct stat st;
    size_t n;

    memset(&st, 0, sizeof(st));
    st.st_ino = ino;
    st.st_mode = mode;
    n = fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used, name, &st, (off_t)next);
    if (n > d->size - d->used)
        return false;
    d->used += n;
    return true;
}

static bool sif_dir_add_view(void *ctx, const char *name, uint64_t ino, size_t next)
{
    return sif_dir_add(ctx, name, ino, S_IFREG, next + 3);
}

static void sif_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    struct sif_dirbuf d = { req, NULL, size, 0 };
    bool more = true;

    if (ino != SIF_INO_ROOT && ino != SIF_INO_META) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    d.buf = malloc(size ? size : 1);
    if (!d.buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    /* Offsets: 0 ".", 1 "..", 2 the meta dir or status file, 3 + i the
     * store's position i in name order (names may come and go between
     * calls, as in any directory that changes). */
    if (off < 1)
        more = sif_dir_add(&d, ".", ino, S_IFDIR, 1);
    if (more && off < 2)
        more = sif_dir_add(&d, "..", SIF_INO_ROOT, S_IFDIR, 2);
    if (more && off < 3)
        more = ino == SIF_INO_ROOT ? sif_dir_add(&d, SIF_META_DIR, SIF_INO_META, S_IFDIR, 3)
                                   : sif_dir_add(&d, SIF_STATUS_FILE, SIF_INO_STATUS, S_IFREG, 3);
    if (more && ino == SIF_INO_ROOT)
        sif_store_each(sif_fs(req)->store, off > 3 ? (size_t)off - 3 : 0, sif_dir_add_view, &d);
    fuse_reply_buf(req, d.buf, d.used);
    free(d.buf);
}

/* Snapshot of status.json taken at open time, so a reader sees one
 * consistent document.  A read holds a reference while it replies: the
 * reader may close (and RELEASE arrive) as soon as the reply is written. */
struct sif_status_fh {
    atomic_int refs;
    size_t len;
    char *json;
};

static void sif_status_put(struct sif_status_fh *h)
{
    if (atomic_fetch_sub(&h->refs, 1) == 1) {
        free(h->json);
        free(h);
    }
}

static void sif_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct sif_fs *fs = sif_fs(req);

    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (ino == SIF_INO_STATUS) {
        struct sif_status_fh *h = calloc(1, sizeof(*h));

        if (!h || !(h->json = sif_store_status_json(fs->store, &h->len))) {
            free(h);
            fuse_reply_err(req, ENOMEM);
            return;
        }
        atomic_init(&h->refs, 1);
        fi->fh = (uint64_t)(uintptr_t)h;
        fi->direct_io = 1;
        fuse_reply_open(req, fi);
        return;
    }
    if (ino == SIF_INO_ROOT || ino == SIF_INO_META) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    struct sif_entry *e = sif_view(fs, ino);
    if (!e) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    /* The read path uses the handle's entry (the handle holds a
     * reference): no lookup, no lock. */
    fi->fh = (uint64_t)(uintptr_t)e;
    /* A view (an inode) never changes: readers share the page cache; a
     * changed file is a new inode and the old one's cache is dropped. */
    fi->keep_cache = 1;
    fi->noflush = 1;
    if (fuse_reply_open(req, fi) != 0)
        sif_entry_put(e);   /* the opener is gone: no RELEASE will come */
}

static void sif_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (ino == SIF_INO_STATUS && fi->fh)
        sif_status_put((struct sif_status_fh *)(uintptr_t)fi->fh);
    else if (ino >= SIF_INO_FIRST && fi->fh)
        sif_entry_put((struct sif_entry *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}

/* One plaintext buffer per FUSE thread, reused across requests and freed
 * when libfuse retires the thread. */
static pthread_key_t sif_buf_key;
static pthread_once_t sif_buf_once = PTHREAD_ONCE_INIT;

static void sif_buf_key_make(void)
{
    (void)pthread_key_create(&sif_buf_key, free);
}

static uint8_t *sif_thread_buf(void)
{
    void *buf;

    pthread_once(&sif_buf_once, sif_buf_key_make);
    buf = pthread_getspecific(sif_buf_key);
    if (buf)
        return buf;
    if (posix_memalign(&buf, 4096, SIF_MAX_READ) != 0)
        return NULL;
    if (pthread_setspecific(sif_buf_key, buf) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void sif_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    struct sif_entry *e;
    uint8_t *buf;
    ssize_t n;

    if (ino == SIF_INO_STATUS) {
        struct sif_status_fh *h = (struct sif_status_fh *)(uintptr_t)fi->fh;

        atomic_fetch_add(&h->refs, 1);
        if (off < 0 || (size_t)off >= h->len)
            fuse_reply_buf(req, NULL, 0);
        else
            fuse_reply_buf(req, h->json + off, size < h->len - (size_t)off ? size : h->len - (size_t)off);
        sif_status_put(h);
        return;
    }
    e = (struct sif_entry *)(uintptr_t)fi->fh;
    if (!e || off < 0) {
        fuse_reply_err(req, e ? EINVAL : EBADF);
        return;
    }
    if (size > SIF_MAX_READ)
        size = SIF_MAX_READ;
    buf = sif_thread_buf();
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    n = sif_image_pread(e->img, buf, size, (uint64_t)off);
    /* After the read: the bytes came from the file that was inspected,
     * unless it changed (then they are dropped, and the view retired). */
    if (sif_entry_fresh(sif_fs(req)->store, e) != 0) {
        fuse_reply_err(req, EIO);
        return;
    }
    if (n < 0) {
        sif_err("%s: read of %zu bytes at %lld failed (%s)", e->display, size, (long long)off, strerror((int)-n));
        fuse_reply_err(req, EIO);
        return;
    }
    fuse_reply_buf(req, (const char *)buf, (size_t)n);
}

static void sif_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
    uint64_t out;
    int r;

    if (whence != SEEK_DATA && whence != SEEK_HOLE) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (off < 0) {
        fuse_reply_err(req, ENXIO);
        return;
    }
    if (ino == SIF_INO_STATUS) {
        uint64_t size = ((struct sif_status_fh *)(uintptr_t)fi->fh)->len;

        if ((uint64_t)off >= size)
            fuse_reply_err(req, ENXIO);
        else
            fuse_reply_lseek(req, whence == SEEK_DATA ? off : (off_t)size);
        return;
    }
    if (ino < SIF_INO_FIRST || !fi->fh) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    /* Holes are reported only where the content provably reads as zeros
     * (qcow2 unallocated or zero clusters); raw LUKS is all data. */
    if (sif_entry_fresh(sif_fs(req)->store, (struct sif_entry *)(uintptr_t)fi->fh) != 0) {
        fuse_reply_err(req, EIO);
        return;
    }
    r = sif_image_seek(((struct sif_entry *)(uintptr_t)fi->fh)->img, (uint64_t)off, whence, &out);
    if (r)
        fuse_reply_err(req, -r);
    else
        fuse_reply_lseek(req, (off_t)out);
}

static void sif_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs sv;

    memset(&sv, 0, sizeof(sv));
    sv.f_bsize = sv.f_frsize = 4096;
    sv.f_files = SIF_INO_FIRST + sif_store_count(sif_fs(req)->store);
    sv.f_namemax = NAME_MAX;
    sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
    fuse_reply_statfs(req, &sv);
}

/* Everything that would change the filesystem. */
static void sif_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
    fuse_reply_err(req, EROFS);
}

static void sif_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    fuse_reply_err(req, EROFS);
}

static void sif_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    fuse_reply_err(req, EROFS);
}

static void sif_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, EROFS);
}

static void sif_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, EROFS);
}

static void sif_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                          const char *newname, unsigned int flags)
{
    fuse_reply_err(req, EROFS);
}

static void sif_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    fuse_reply_err(req, EROFS);
}

static void sif_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                         struct fuse_file_info *fi)
{
    fuse_reply_err(req, EROFS);
}

static void sif_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                          struct fuse_file_info *fi)
{
    fuse_reply_err(req, EROFS);
}

static void sif_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
                            int flags)
{
    fuse_reply_err(req, EROFS);
}

static void sif_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    fuse_reply_err(req, EROFS);
}

static void sif_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                             struct fuse_file_info *fi)
{
    fuse_reply_err(req, EROFS);
}

static const struct fuse_lowlevel_ops sif_ops = {
    .init = sif_op_init,
    .lookup = sif_op_lookup,
    .getattr = sif_op_getattr,
    .readdir = sif_op_readdir,
    .open = sif_op_open,
    .release = sif_op_release,
    .read = sif_op_read,
    .lseek = sif_op_lseek,
    .statfs = sif_op_statfs,
    .setattr = sif_op_setattr,
    .mknod = sif_op_mknod,
    .mkdir = sif_op_mkdir,
    .unlink = sif_op_unlink,
    .rmdir = sif_op_unlink,
    .symlink = sif_op_symlink,
    .rename = sif_op_rename,
    .link = sif_op_link,
    .write = sif_op_write,
    .create = sif_op_create,
    .setxattr = sif_op_setxattr,
    .removexattr = sif_op_removexattr,
    .fallocate = sif_op_fallocate,
};

/* --------------------------------------------------------------- options */

#define SIF_OPT(t, p) { t, offsetof(struct sif_opts, p), 1 }
static const struct fuse_opt sif_opt_spec[] = {
    SIF_OPT("keyfile=%s", keyfile),
    SIF_OPT("keydir=%s", keydir),
    SIF_OPT("uid=%s", uid),
    SIF_OPT("gid=%s", gid),
    SIF_OPT("umask=%o", umask),
    SIF_OPT("workers=%d", workers),
    SIF_OPT("unlock_timeout=%d", unlock_timeout),
    SIF_OPT("audit_log=%s", audit_log),
    SIF_OPT("policy=%s", policy),
    SIF_OPT("key_command=%s", key_command),
    SIF_OPT("key_format=%s", key_format),
    SIF_OPT("--version", show_version),
    SIF_OPT("-V", show_version),
    /* Kept for the mount, and noted: a mount made by mount.fuse3 itself
     * (drop_privileges) has only the options it was given. */
    FUSE_OPT_KEY("ro", SIF_KEY_RO),
    FUSE_OPT_KEY("nodev", SIF_KEY_NODEV),
    FUSE_OPT_KEY("nosuid", SIF_KEY_NOSUID),
    FUSE_OPT_KEY("default_permissions", SIF_KEY_DEFAULT_PERMISSIONS),
    /* Generic options fstab lines carry that mean nothing here (the mount
     * is always noatime and read-only); libfuse would refuse them. */
    FUSE_OPT_KEY("relatime", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("strictatime", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("nodiratime", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("lazytime", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("iversion", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("nosymfollow", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("mand", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_KEY("silent", FUSE_OPT_KEY_DISCARD),
    FUSE_OPT_END
};

static int sif_opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    struct sif_opts *o = data;

    if (key == FUSE_OPT_KEY_NONOPT && !o->store) {
        o->store = strdup(arg);
        return 0;
    }
    switch (key) {
    case SIF_KEY_RO:
        o->seen_ro = true;
        break;
    case SIF_KEY_NODEV:
        o->seen_nodev = true;
        break;
    case SIF_KEY_NOSUID:
        o->seen_nosuid = true;
        break;
    case SIF_KEY_DEFAULT_PERMISSIONS:
        o->seen_default_permissions = true;
        break;
    default:
        break;
    }
    return 1;
}

static void sif_usage(const char *prog)
{
    printf("usage: %s [-f] [-d] [-o OPT[,OPT...]] STORE MOUNTPOINT\n\n"
           "Serves a read-only plaintext view of every encrypted image in STORE that passes inspection.\n\n"
           "safeimgfs options:\n"
           "    -o keyfile=FILE        passphrase of every image\n"
           "    -o keydir=DIR          passphrase of NAME is DIR/KEY_ID (os_encrypt_key_id in NAME.json)\n"
           "                           or DIR/NAME.key\n"
           "    -o key_command=PROG    run PROG NAME KEY_ID (no shell); the passphrase is its output\n"
           "    -o key_format=hex      the key is a secret whose lowercase hex is the passphrase\n"
           "                           (os-brick's convention; the legacy form is tried too)\n"
           "    -o uid=U,gid=G         owner and group of the views, numbers or names\n"
           "                           (default: the mounting user and group)\n"
           "    -o umask=M             octal mask of the views' modes (default 0227: files 0440)\n"
           "    -o workers=N           inspection threads (default 2)\n"
           "    -o unlock_timeout=S    kill a key slot unlock after S seconds (default 60)\n"
           "    -o audit_log=FILE      append one JSON line per verdict and store change\n"
           "    -o policy=FILE         what inspection accepts (safeimgfs.conf(5))\n"
           "    -f                     stay in the foreground (verdicts on stderr)\n"
           "    -d                     debug output (implies -f)\n"
           "    -V, --version          print the version\n\n"
           "Verdicts: MOUNTPOINT/.safeimgfs/status.json\n",
           prog);
}

/* A uid or gid given as a number or a name (a hypervisor's group, say).
 * 0 or -EINVAL (logged). */
static int sif_parse_id(const char *s, bool group, unsigned *out)
{
    char *end;
    unsigned long n;

    errno = 0;
    n = strtoul(s, &end, 10);
    if (*s >= '0' && *s <= '9' && !*end && !errno && n < UINT32_MAX) {
        *out = (unsigned)n;
        return 0;
    }
    if (group) {
        struct group *g = getgrnam(s);

        if (g) {
            *out = g->gr_gid;
            return 0;
        }
    } else {
        struct passwd *pw = getpwnam(s);

        if (pw) {
            *out = pw->pw_uid;
            return 0;
        }
    }
    sif_err("%s=%s: no such %s", group ? "gid" : "uid", s, group ? "group" : "user");
    return -EINVAL;
}

/* Replaces *path by its absolute, resolved form.  0 or -errno (logged). */
static int sif_make_absolute(char **path, const char *what)
{
    char *abs = realpath(*path, NULL);

    if (!abs) {
        int e = errno;

        sif_err("%s %s: %s", what, *path, strerror(e));
        return -e;
    }
    free(*path);
    *path = abs;
    return 0;
}

int main(int argc, char **argv)
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_cmdline_opts cl;
    struct fuse_loop_config *lc = NULL;
    struct fuse_session *se = NULL;
    struct sif_opts o = { .umask = -1, .workers = 2 };
    struct sif_keysrc keys = { .dirfd = -1 };
    struct sif_policy policy;
    struct sif_inspect_env env = { &policy, &keys };
    struct sif_fs fs = { 0 };
    struct sif_audit *audit = NULL;
    char err[256] = "", fsname[PATH_MAX + 32];
    int ret = 1, r;

    memset(&cl, 0, sizeof(cl));
    sif_log_init("safeimgfs", false);
    if (fuse_opt_parse(&args, &o, sif_opt_spec, sif_opt_proc) != 0)
        return 2;
    if (o.show_version) {
        printf("safeimgfs %s (libfuse %s)\n", PACKAGE_VERSION, fuse_pkgversion());
        return 0;
    }
    if (fuse_parse_cmdline(&args, &cl) != 0)
        return 2;
    if (cl.show_help) {
        sif_usage(argv[0]);
        fuse_lowlevel_help();
        ret = 0;
        goto out;
    }
    sif_log_init("safeimgfs", cl.debug);
    if (!o.store || !cl.mountpoint) {
        sif_usage(argv[0]);
        ret = 2;
        goto out;
    }
    /* mount.fuse3's drop_privileges mounts by itself and hands over the
     * descriptor as /dev/fd/N: the options forced below never reach that
     * mount, so it must have been given them. */
    if (!strncmp(cl.mountpoint, "/dev/fd/", 8) &&
        !(o.seen_ro && o.seen_nodev && o.seen_nosuid && o.seen_default_permissions)) {
        sif_err("mounted through %s (mount.fuse3 drop_privileges): the mount options must include "
                "ro,nodev,nosuid,default_permissions, or every user could read the views",
                cl.mountpoint);
        ret = 2;
        goto out;
    }
    /* The daemon changes to / when it detaches: keep absolute paths. */
    if (sif_make_absolute(&o.store, "store") != 0 || (o.keyfile && sif_make_absolute(&o.keyfile, "key file") != 0)) {
        ret = 2;
        goto out;
    }
    if (o.workers < 1 || o.workers > 64) {
        sif_err("workers=%d is outside 1..64", o.workers);
        ret = 2;
        goto out;
    }
    if (o.umask != -1 && (o.umask & ~0777)) {
        sif_err("umask=%o is not a permission mask", o.umask);
        ret = 2;
        goto out;
    }
    fs.uid = getuid();
    fs.gid = getgid();
    if ((o.uid && sif_parse_id(o.uid, false, &fs.uid) != 0) || (o.gid && sif_parse_id(o.gid, true, &fs.gid) != 0)) {
        ret = 2;
        goto out;
    }
    /* Views are never writable, whatever the mask says. */
    fs.umask = (mode_t)(o.umask >= 0 ? o.umask : 0227) | 0222;
    fs.mount_time = time(NULL);

    if (sif_harden_process() != 0)
        sif_warn("cannot disable core dumps");
    sif_policy_default(&policy);
    if (o.policy && sif_policy_load(&policy, o.policy, err, sizeof(err)) != 0) {
        sif_err("policy=%s", err);
        ret = 2;
        goto out;
    }
    /* the mount option wins over the file */
    if (o.unlock_timeout) {
        if (o.unlock_timeout < 1 || o.unlock_timeout > 3600) {
            sif_err("unlock_timeout=%d is outside 1..3600", o.unlock_timeout);
            ret = 2;
            goto out;
        }
        sif_policy_set_unlock_timeout(&policy, (uint32_t)o.unlock_timeout);
    }
    if (sif_keysrc_open_opts(&keys,
                             &(struct sif_key_opts){ o.keyfile, o.keydir, o.key_command, o.key_format,
                                                     policy.key_command_timeout_s },
                             err, sizeof(err)) != 0) {
        sif_err("%s", err);
        ret = 2;
        goto out;
    }
    if (o.audit_log) {
        r = sif_audit_open(o.audit_log, &audit);
        if (r) {
            sif_err("audit_log=%s: cannot open it for appending (%s)", o.audit_log, strerror(-r));
            ret = 2;
            goto out;
        }
    }
    if (keys.kind == SIF_KEYSRC_NONE)
        sif_warn("no keyfile=, keydir= or key_command=: every encrypted image will be rejected (key.missing)");
    r = sif_store_open(o.store, &env, &fs.store);
    if (r) {
        sif_err("cannot open store %s (%s)", o.store, strerror(-r));
        goto out;
    }

    snprintf(fsname, sizeof(fsname), "-ofsname=safeimgfs:%s,subtype=safeimgfs", o.store);
    if (fuse_opt_add_arg(&args, "-oro,default_permissions,noatime,nodev,nosuid") != 0 ||
        fuse_opt_add_arg(&args, fsname) != 0 || fuse_opt_add_arg(&args, "-omax_read=1048576") != 0)
        goto out;
    se = fuse_session_new(&args, &sif_ops, sizeof(sif_ops), &fs);
    if (!se)
        goto out;
    if (fuse_set_signal_handlers(se) != 0)
        goto out_session;
    if (fuse_session_mount(se, cl.mountpoint) != 0)
        goto out_signals;
    sif_ra_find(cl.mountpoint);
    if (fuse_daemonize(cl.foreground) != 0)
        goto out_unmount;
    if (!cl.foreground)
        sif_log_syslog();
    /* The unlock helper must be forked while this process has one thread. */
    r = sif_unlock_init();
    if (r) {
        sif_err("cannot start the unlock helper (%s)", strerror(-r));
        goto out_unmount;
    }
    /* After the helper's fork: memory locks are not inherited, and the
     * helper holds no secrets (its workers lock their own). */
    /* Detached, stderr is /dev/null: keep what libraries and key programs
     * write there (a thread: after the helper's fork). */
    if (!cl.foreground && (r = sif_log_capture_stderr()) != 0)
        sif_warn("cannot capture stderr (%s)", strerror(-r));
    r = sif_lock_all_memory();
    if (r)
        sif_warn("memory stays unlocked (%s): cipher key schedules could reach swap; "
                 "run as root or with an unlimited RLIMIT_MEMLOCK", strerror(-r));
    sif_store_set_notify(fs.store, sif_notify, &fs);
    sif_store_set_audit(fs.store, audit);
    fs.se = se;
    /* first in the audit log, before any verdict */
    sif_audit_event(audit, "mount", NULL, 0, NULL, NULL, -1, o.store);
    r = sif_store_start(fs.store, (unsigned)o.workers, true);
    if (r) {
        sif_err("cannot start inspection workers (%s)", strerror(-r));
        goto out_unmount;
    }
    sif_info("serving %s on %s (%zu candidates)", o.store, cl.mountpoint, sif_store_count(fs.store));

    lc = fuse_loop_cfg_create();
    if (!lc)
        goto out_unmount;
    fuse_loop_cfg_set_clone_fd(lc, cl.clone_fd);
    if (cl.max_idle_threads != UINT_MAX)
        fuse_loop_cfg_set_idle_threads(lc, cl.max_idle_threads);
    /* libfuse leaves max_threads unset (UINT_MAX) unless -o max_threads=
     * is given: default to enough threads to overlap reads on two cores. */
    fuse_loop_cfg_set_max_threads(lc, cl.max_threads > 0 && cl.max_threads <= 1024 ? cl.max_threads : 16);
    /* libfuse's signal handler stores the signal number as the loop's
     * result: an unmount by SIGTERM, SIGINT or SIGHUP is a clean exit. */
    r = fuse_session_loop_mt(se, lc);
    ret = r == 0 || r == SIGTERM || r == SIGINT || r == SIGHUP ? 0 : 1;
    fuse_loop_cfg_destroy(lc);
    sif_info("unmounting %s", cl.mountpoint);
    sif_audit_event(audit, "unmount", NULL, 0, NULL, NULL, -1, o.store);

out_unmount:
    /* Abandon in-flight inspections: stop the store first so that their
     * failures are not reported as verdicts, then kill the unlocks. */
    if (fs.store)
        sif_store_stop(fs.store);
    sif_unlock_shutdown();
    fuse_session_unmount(se);
out_signals:
    fuse_remove_signal_handlers(se);
out_session:
    fuse_session_destroy(se);
out:
    sif_store_free(fs.store);
    sif_audit_close(audit);
    sif_keysrc_close(&keys);
    free(cl.mountpoint);
    free(o.store);
    free(o.keyfile);
    free(o.keydir);
    free(o.key_command);
    free(o.key_format);
    free(o.policy);
    free(o.audit_log);
    free(o.uid);
    free(o.gid);
    fuse_opt_free_args(&args);
    return ret;
}
