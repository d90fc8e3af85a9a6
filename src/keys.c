/* keys.c: key files and key directories. */
#include "config.h"

#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secmem.h"

int sif_key_check_fd(int fd, char *err, size_t errlen)
{
    struct stat st;

    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat the key file (%s)", strerror(errno));
        return -errno;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "the key file is not a regular file");
        return -EINVAL;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen, "the key file has mode %04o: group and others must have no access",
                 (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        snprintf(err, errlen, "the key file belongs to uid %u, neither root nor the mounting user",
                 (unsigned)st.st_uid);
        return -EPERM;
    }
    if (st.st_size > SIF_KEYFILE_MAX) {
        snprintf(err, errlen, "the key file is larger than %d bytes", SIF_KEYFILE_MAX);
        return -EINVAL;
    }
    return 0;
}

int sif_keysrc_open(struct sif_keysrc *ks, enum sif_keysrc_kind kind, const char *path,
                    char *err, size_t errlen)
{
    int fd, r;

    memset(ks, 0, sizeof(*ks));
    ks->dirfd = -1;
    ks->kind = kind;
    if (kind == SIF_KEYSRC_NONE)
        return 0;
    ks->path = strdup(path);
    if (!ks->path)
        return -ENOMEM;
    if (kind == SIF_KEYSRC_DIR) {
        ks->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ks->dirfd < 0) {
            snprintf(err, errlen, "cannot open key directory %s (%s)", path, strerror(errno));
            return -errno;
        }
        return 0;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open key file %s (%s)", path, strerror(errno));
        return -errno;
    }
    r = sif_key_check_fd(fd, err, errlen);
    close(fd);
    return r;
}

void sif_keysrc_close(struct sif_keysrc *ks)
{
    if (ks->dirfd >= 0)
        close(ks->dirfd);
    free(ks->path);
    memset(ks, 0, sizeof(*ks));
    ks->dirfd = -1;
}

int sif_key_load(const struct sif_keysrc *ks, const char *name, uint8_t **pass, size_t *len,
                 struct sif_verdict *v)
{
    char keyname[512], err[160];
    uint8_t *buf = NULL;
    size_t n = 0;
    int fd, r;

    *pass = NULL;
    *len = 0;
    switch (ks->kind) {
    case SIF_KEYSRC_FILE:
        fd = open(ks->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        break;
    case SIF_KEYSRC_DIR:
        if ((size_t)snprintf(keyname, sizeof(keyname), "%s.key", name) >= sizeof(keyname))
            return sif_reject(v, -ENAMETOOLONG, "key.missing", "the image name is too long for a key file name");
        fd = openat(ks->dirfd, keyname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        break;
    default:
        return sif_reject(v, -ENOKEY, "key.missing",
                          "no key source configured (keyfile or keydir): the header passed inspection, the content was not inspected");
    }
    if (fd < 0) {
        int e = errno;

        if (e == ENOENT)
            return sif_reject(v, -ENOKEY, "key.missing", "no key file %s%s%s", ks->path,
                              ks->kind == SIF_KEYSRC_DIR ? "/" : "", ks->kind == SIF_KEYSRC_DIR ? keyname : "");
        return sif_reject(v, -e, e == ELOOP ? "key.perms" : "key.read", "cannot open the key file (%s)", strerror(e));
    }
    r = sif_key_check_fd(fd, err, sizeof(err));
    if (r) {
        close(fd);
        return sif_reject(v, r, r == -EPERM ? "key.perms" : "key.read", "%s", err);
    }
    buf = sif_secure_alloc(SIF_KEYFILE_MAX + 1);
    if (!buf) {
        close(fd);
        return sif_reject(v, -ENOMEM, "key.read", "cannot allocate locked memory for the passphrase");
    }
    for (;;) {
        ssize_t got = read(fd, buf + n, SIF_KEYFILE_MAX + 1 - n);

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            r = sif_reject(v, -errno, "key.read", "cannot read the key file (%s)", strerror(errno));
            goto fail;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > SIF_KEYFILE_MAX) {
            r = sif_reject(v, -EINVAL, "key.read", "the key file is larger than %d bytes", SIF_KEYFILE_MAX);
            goto fail;
        }
    }
    close(fd);
    if (n && buf[n - 1] == '\n')
        buf[--n] = 0;
    if (n == 0) {
        sif_secure_free(buf);
        return sif_reject(v, -EINVAL, "key.read", "the key file is empty");
    }
    *pass = buf;
    *len = n;
    return 0;
fail:
    close(fd);
    sif_secure_free(buf);
    return r;
}
