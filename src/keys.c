/* keys.c: key files, key directories and key programs (see keys.h).
 *
 * Trust boundary: the key directory and the key program are configured by
 * the operator, but the key id comes from the image's sidecar in the store,
 * so it is checked before it names a file or becomes a program argument.  A
 * key program's output is a secret: it goes straight into secure memory and
 * no message ever quotes it.
 */
#include "config.h"

#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "secmem.h"

extern char **environ;

/* How often the fallback wait for a key program's exit looks again, when
 * the kernel has no pidfd_open (before Linux 5.3). */
#define SIF_KEYCMD_POLL_MS 10

static const char sif_hexdigits[] = "0123456789abcdef";

/* ---------------------------------------------------------------- checks */

/* The key file checks with a size limit. */
static int sif_check_fd_max(int fd, size_t max, char *err, size_t errlen)
{
    struct stat st;

    if (fstat(fd, &st) != 0) {
        int e = errno;

        snprintf(err, errlen, "cannot stat the key file (%s)", strerror(e));
        return -e;
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
    if ((uint64_t)st.st_size > max) {
        snprintf(err, errlen, "the key file is larger than %zu bytes", max);
        return -EINVAL;
    }
    return 0;
}

int sif_key_check_fd(int fd, char *err, size_t errlen)
{
    return sif_check_fd_max(fd, SIF_KEYFILE_MAX, err, errlen);
}

bool sif_key_id_valid(const char *id)
{
    size_t n = 0;

    if (!id || id[0] == '.')
        return false;
    for (; id[n]; n++) {
        char c = id[n];

        if (n >= SIF_KEY_ID_MAX)
            return false;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

/* One directory on a key program's path: others must not be able to
 * rename or replace what it holds.  A sticky directory (/tmp) is fine: its
 * other users cannot remove or rename our files in it. */
static int sif_check_program_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;

    if (stat(dir, &st) != 0) {
        int e = errno;

        snprintf(err, errlen, "cannot stat directory %s (%s)", dir, strerror(e));
        return -e;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        snprintf(err, errlen, "directory %s belongs to uid %u, neither root nor the mounting user: "
                 "its owner could replace the program", dir, (unsigned)st.st_uid);
        return -EPERM;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
        snprintf(err, errlen, "directory %s has mode %04o: group or others could replace the program",
                 dir, (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

/* The key program checks on path (absolute, its directories already
 * resolved by realpath()). */
static int sif_check_program(const char *path, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    struct stat st;
    int fd, r;

    fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;

        if (e == ELOOP)
            snprintf(err, errlen, "%s is a symbolic link: give the program's own path", path);
        else
            snprintf(err, errlen, "cannot open %s (%s)", path, strerror(e));
        return -e;
    }
    r = fstat(fd, &st) != 0 ? -errno : 0;
    close(fd);
    if (r) {
        snprintf(err, errlen, "cannot stat %s (%s)", path, strerror(-r));
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        return -EINVAL;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
        snprintf(err, errlen, "%s belongs to uid %u, neither root nor the mounting user", path,
                 (unsigned)st.st_uid);
        return -EPERM;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen, "%s has mode %04o: group and others must not be able to write it", path,
                 (unsigned)(st.st_mode & 07777));
        return -EPERM;
    }
    if (!(st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) || faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) != 0) {
        snprintf(err, errlen, "%s is not executable", path);
        return -EACCES;
    }
    /* Every directory from the program's up to the root. */
    if ((size_t)snprintf(dir, sizeof(dir), "%s", path) >= sizeof(dir)) {
        snprintf(err, errlen, "the key program's path is too long");
        return -ENAMETOOLONG;
    }
    for (;;) {
        char *slash = strrchr(dir, '/');

        if (!slash)
            break;
        if (slash == dir) {
            r = sif_check_program_dir("/", err, errlen);
            break;
        }
        *slash = 0;
        r = sif_check_program_dir(dir, err, errlen);
        if (r)
            break;
    }
    return r;
}

/* ---------------------------------------------------------------- sources */

int sif_keysrc_open_opts(struct sif_keysrc *ks, const struct sif_key_opts *o, char *err, size_t errlen)
{
    int r;

    memset(ks, 0, sizeof(*ks));
    ks->dirfd = -1;
    if (!!o->keyfile + !!o->keydir + !!o->command > 1) {
        snprintf(err, errlen, "a key file, a key directory and a key command are mutually exclusive");
        return -EINVAL;
    }
    if (o->format && strcmp(o->format, "raw") != 0 && strcmp(o->format, "hex") != 0) {
        snprintf(err, errlen, "key format \"%s\": it is raw or hex", o->format);
        return -EINVAL;
    }
    r = sif_keysrc_open(ks,
                        o->keyfile   ? SIF_KEYSRC_FILE
                        : o->keydir  ? SIF_KEYSRC_DIR
                        : o->command ? SIF_KEYSRC_COMMAND
                                     : SIF_KEYSRC_NONE,
                        o->keyfile ? o->keyfile : o->keydir ? o->keydir : o->command, err, errlen);
    if (r)
        return r;
    ks->format = o->format && !strcmp(o->format, "hex") ? SIF_KEY_FORMAT_HEX : SIF_KEY_FORMAT_RAW;
    ks->timeout_s = o->timeout_s;
    return 0;
}

int sif_keysrc_open(struct sif_keysrc *ks, enum sif_keysrc_kind kind, const char *path,
                    char *err, size_t errlen)
{
    int fd, r;

    memset(ks, 0, sizeof(*ks));
    ks->dirfd = -1;
    ks->kind = kind;
    ks->format = SIF_KEY_FORMAT_RAW;
    if (kind == SIF_KEYSRC_NONE)
        return 0;
    if (kind == SIF_KEYSRC_COMMAND) {
        if (!path || path[0] != '/') {
            snprintf(err, errlen, "key_command %s: the program's path must be absolute", path ? path : "");
            return -EINVAL;
        }
        /* The directories resolved once, so that the checks and every run
         * see the same path; the program itself must not be a link. */
        ks->path = realpath(path, NULL);
        if (!ks->path) {
            int e = errno;

            snprintf(err, errlen, "key_command %s: %s", path, strerror(e));
            return -e;
        }
        r = sif_check_program(ks->path, err, errlen);
        if (r == 0 && strcmp(ks->path, path) != 0) {
            /* realpath() followed a link in the last component. */
            struct stat st;

            if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
                snprintf(err, errlen, "key_command %s is a symbolic link: give the program's own path", path);
                r = -ELOOP;
            }
        }
        return r;
    }
    ks->path = strdup(path);
    if (!ks->path)
        return -ENOMEM;
    if (kind == SIF_KEYSRC_DIR) {
        ks->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ks->dirfd < 0) {
            int e = errno;

            snprintf(err, errlen, "cannot open key directory %s (%s)", path, strerror(e));
            return -e;
        }
        return 0;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;

        snprintf(err, errlen, "cannot open key file %s (%s)", path, strerror(e));
        return -e;
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

/* ---------------------------------------------------------------- key sets */

void sif_keyset_free(struct sif_keyset *ks)
{
    for (int i = 0; i < SIF_KEY_CANDIDATES; i++)
        sif_secure_free(ks->c[i].pass);
    memset(ks, 0, sizeof(*ks));
}

/* The longest secret a source may deliver in this format. */
static size_t sif_secret_max(enum sif_key_format fmt)
{
    return fmt == SIF_KEY_FORMAT_HEX ? SIF_KEY_HEX_SECRET_MAX : SIF_KEYFILE_MAX;
}

/* Turns the secret buf[0..n) (secure memory of at least n + 1 bytes, taken
 * over and freed here) into candidates.  -ENODATA when nothing is left of
 * it, -ENOMEM. */
static int sif_keyset_fill(enum sif_key_format fmt, uint8_t *buf, size_t n, struct sif_keyset *out)
{
    uint8_t *hex, *legacy;
    size_t lm = 0;
    bool differs = false;

    if (fmt == SIF_KEY_FORMAT_RAW) {
        if (n && buf[n - 1] == '\n')
            buf[--n] = 0;
        if (n == 0) {
            sif_secure_free(buf);
            return -ENODATA;
        }
        out->c[0].pass = buf;
        out->c[0].len = n;
        out->c[0].form = "raw";
        out->n = 1;
        return 0;
    }
    if (n == 0) {
        sif_secure_free(buf);
        return -ENODATA;
    }
    /* n <= SIF_KEY_HEX_SECRET_MAX, so 2 * n + 1 cannot overflow. */
    hex = sif_secure_alloc(2 * n + 1);
    legacy = sif_secure_alloc(2 * n + 1);
    if (!hex || !legacy) {
        sif_secure_free(hex);
        sif_secure_free(legacy);
        sif_secure_free(buf);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = (uint8_t)sif_hexdigits[buf[i] >> 4];
        hex[2 * i + 1] = (uint8_t)sif_hexdigits[buf[i] & 15];
        /* The legacy form is "%x" per byte: no leading zero nibble. */
        if (buf[i] >= 0x10)
            legacy[lm++] = (uint8_t)sif_hexdigits[buf[i] >> 4];
        else
            differs = true;
        legacy[lm++] = (uint8_t)sif_hexdigits[buf[i] & 15];
    }
    sif_secure_free(buf);
    out->c[0].pass = hex;
    out->c[0].len = 2 * n;
    out->c[0].form = "hex";
    out->n = 1;
    if (differs) {
        out->c[1].pass = legacy;
        out->c[1].len = lm;
        out->c[1].form = "hex-legacy";
        out->n = 2;
    } else {
        sif_secure_free(legacy);
    }
    return 0;
}

/* Reads fd to its end into new secure memory of max + 1 bytes.  -EFBIG
 * when there is more than max, or -errno. */
static int sif_read_all(int fd, size_t max, uint8_t **bufp, size_t *lenp)
{
    uint8_t *buf = sif_secure_alloc(max + 1);
    size_t n = 0;

    *bufp = NULL;
    *lenp = 0;
    if (!buf)
        return -ENOMEM;
    for (;;) {
        ssize_t got = read(fd, buf + n, max + 1 - n);

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;

            sif_secure_free(buf);
            return -e;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > max) {
            sif_secure_free(buf);
            return -EFBIG;
        }
    }
    *bufp = buf;
    *lenp = n;
    return 0;
}

/* Checks, reads and converts the open key file fd (closed here); `shown`
 * names it in messages. */
static int sif_load_fd(int fd, const char *shown, enum sif_key_format fmt, struct sif_keyset *out,
                       struct sif_verdict *v)
{
    size_t max = sif_secret_max(fmt), n = 0;
    uint8_t *buf = NULL;
    char err[160];
    int r;

    r = sif_check_fd_max(fd, SIF_KEYFILE_MAX, err, sizeof(err));
    if (r) {
        close(fd);
        return sif_reject(v, r, r == -EPERM ? "key.perms" : "key.read", "key file %s: %s", shown, err);
    }
    r = sif_read_all(fd, max, &buf, &n);
    close(fd);
    if (r == -EFBIG)
        return sif_reject(v, -EINVAL, "key.read", "key file %s is larger than %zu bytes%s", shown, max,
                          fmt == SIF_KEY_FORMAT_HEX ? " (key_format=hex doubles its length)" : "");
    if (r == -ENOMEM)
        return sif_reject(v, r, "key.read", "cannot allocate locked memory for the key from %s", shown);
    if (r)
        return sif_reject(v, r, "key.read", "cannot read key file %s (%s)", shown, strerror(-r));
    r = sif_keyset_fill(fmt, buf, n, out);
    if (r == -ENODATA)
        return sif_reject(v, -EINVAL, "key.read", "key file %s is empty", shown);
    if (r)
        return sif_reject(v, r, "key.read", "cannot allocate locked memory for the key from %s", shown);
    return 0;
}

static int sif_open_key(int dirfd, const char *path)
{
    int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

    return fd < 0 ? -errno : fd;
}

/* A failed open of key file `shown`, other than a missing file. */
static int sif_open_failed(struct sif_verdict *v, int r, const char *shown)
{
    if (r == -ELOOP)
        return sif_reject(v, r, "key.perms", "key file %s is a symbolic link", shown);
    return sif_reject(v, r, "key.read", "cannot open key file %s (%s)", shown, strerror(-r));
}

static int sif_load_file(const struct sif_keysrc *ks, struct sif_keyset *out, struct sif_verdict *v)
{
    int fd = sif_open_key(AT_FDCWD, ks->path);

    if (fd == -ENOENT)
        return sif_reject(v, -ENOKEY, "key.missing", "no key file %s", ks->path);
    if (fd < 0)
        return sif_open_failed(v, fd, ks->path);
    out->source = "keyfile";
    return sif_load_fd(fd, ks->path, ks->format, out, v);
}

static int sif_load_dir(const struct sif_keysrc *ks, const char *name, const char *key_id,
                        struct sif_keyset *out, struct sif_verdict *v)
{
    char keyname[NAME_MAX + 1], shown[PATH_MAX + NAME_MAX + 2];
    int fd;

    if (key_id[0]) {
        /* The declared id first; only a missing file falls back to the
         * name: a bad one is a configuration error to be seen. */
        snprintf(shown, sizeof(shown), "%s/%s", ks->path, key_id);
        fd = sif_open_key(ks->dirfd, key_id);
        if (fd >= 0) {
            out->source = "keydir:id";
            return sif_load_fd(fd, shown, ks->format, out, v);
        }
        if (fd != -ENOENT)
            return sif_open_failed(v, fd, shown);
    }
    if ((size_t)snprintf(keyname, sizeof(keyname), "%s.key", name) >= sizeof(keyname))
        return sif_reject(v, -ENAMETOOLONG, "key.missing", "the image name is too long for a key file name");
    snprintf(shown, sizeof(shown), "%s/%s", ks->path, keyname);
    fd = sif_open_key(ks->dirfd, keyname);
    if (fd == -ENOENT) {
        if (key_id[0])
            return sif_reject(v, -ENOKEY, "key.missing", "no key file %s/%s (key id) nor %s", ks->path, key_id,
                              shown);
        return sif_reject(v, -ENOKEY, "key.missing", "no key file %s", shown);
    }
    if (fd < 0)
        return sif_open_failed(v, fd, shown);
    out->source = "keydir:name";
    return sif_load_fd(fd, shown, ks->format, out, v);
}

/* ---------------------------------------------------------------- key programs */

static int64_t sif_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, as a poll() timeout (0 when past). */
static int sif_left_ms(int64_t deadline)
{
    int64_t left = deadline - sif_now_ms();

    if (left <= 0)
        return 0;
    return left > INT_MAX ? INT_MAX : (int)left;
}

/* Waits until process pid has exited, without reaping it (so that its pid,
 * which is also its process group's id, cannot be reused meanwhile).
 * 0, or -ETIMEDOUT at the deadline, or -errno. */
static int sif_wait_exit(pid_t pid, int64_t deadline)
{
    int pidfd = -1;

#ifdef SYS_pidfd_open
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
    for (;;) {
        siginfo_t si;

        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
            int e = errno;

            if (e == EINTR)
                continue;
            if (pidfd >= 0)
                close(pidfd);
            return -e;
        }
        if (si.si_pid == pid)
            break;
        if (sif_left_ms(deadline) == 0) {
            if (pidfd >= 0)
                close(pidfd);
            return -ETIMEDOUT;
        }
        if (pidfd >= 0) {
            struct pollfd pf = { .fd = pidfd, .events = POLLIN };

            (void)poll(&pf, 1, sif_left_ms(deadline));
        } else {
            int ms = sif_left_ms(deadline);
            struct timespec ts = { 0, (long)(ms < SIF_KEYCMD_POLL_MS ? ms : SIF_KEYCMD_POLL_MS) * 1000000L };

            nanosleep(&ts, NULL);
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    return 0;
}

/* Reaps pid, retrying on EINTR; its wait status, or -1. */
static int sif_reap(pid_t pid)
{
    int st;

    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return st;
}

/* Moves a descriptor of ours to 3 or above, so that the child's dup2() onto
 * 0 or 1 never meets it (only when the daemon runs with 0..2 closed). */
static int sif_fd_high(int fd)
{
    int nfd;

    if (fd >= 3)
        return fd;
    nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return nfd;
}

/* Starts the key program with stdout on out_fd; *pid on success.  0 or a
 * positive errno (posix_spawn's convention). */
static int sif_spawn(const struct sif_keysrc *ks, char *const argv[], int out_fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    int r;

    if ((r = posix_spawn_file_actions_init(&fa)) != 0)
        return r;
    if ((r = posix_spawnattr_init(&at)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return r;
    }
    sigemptyset(&none);
    sigfillset(&all);
    /* A session (and process group) of its own so that a timeout kills
     * everything it started; default signal dispositions and an empty mask
     * whatever this thread had, so that SIGKILL is not its only ending. */
    if ((r = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) != 0 ||
        (r = posix_spawn_file_actions_adddup2(&fa, out_fd, 1)) != 0 ||
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
        /* Nothing else of ours: not the FUSE device, not an image. */
        (r = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0 ||
#endif
        (r = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) != 0 ||
        (r = posix_spawnattr_setsigmask(&at, &none)) != 0 || (r = posix_spawnattr_setsigdefault(&at, &all)) != 0)
        goto out;
    r = posix_spawn(pid, ks->path, &fa, &at, argv, environ);
out:
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return r;
}

/* Runs the key program for (name, key_id); its whole output goes to new
 * secure memory (*bufp, *lenp).  0, or -errno with key.command or
 * key.timeout recorded. */
static int sif_run_program(const struct sif_keysrc *ks, const char *name, const char *key_id, size_t max,
                           uint8_t **bufp, size_t *lenp, struct sif_verdict *v)
{
    uint32_t timeout_s = ks->timeout_s ? ks->timeout_s : SIF_KEY_COMMAND_TIMEOUT_DEFAULT;
    int64_t deadline = sif_now_ms() + (int64_t)timeout_s * 1000;
    char *name_arg = strdup(name), *id_arg = strdup(key_id);
    char *argv[] = { ks->path, name_arg, id_arg, NULL };
    char err[160];
    bool timed_out = false, too_long = false;
    struct sigaction chld;
    uint8_t *buf = NULL;
    size_t n = 0;
    int p[2] = { -1, -1 }, st, r;
    pid_t pid;

    *bufp = NULL;
    *lenp = 0;
    if (!name_arg || !id_arg) {
        r = sif_reject(v, -ENOMEM, "key.command", "out of memory running key_command %s", ks->path);
        goto out_args;
    }
    /* With SIGCHLD ignored the kernel reaps the program by itself, and its
     * process group id could be reused before we kill the group. */
    if (sigaction(SIGCHLD, NULL, &chld) != 0 || chld.sa_handler == SIG_IGN || (chld.sa_flags & SA_NOCLDWAIT)) {
        r = sif_reject(v, -ECHILD, "key.command", "cannot supervise key_command %s: SIGCHLD is ignored", ks->path);
        goto out_args;
    }
    /* The program may have been replaced since the source was opened. */
    r = sif_check_program(ks->path, err, sizeof(err));
    if (r) {
        r = sif_reject(v, r, "key.command", "key_command: %s", err);
        goto out_args;
    }
    buf = sif_secure_alloc(max + 1);
    if (!buf) {
        r = sif_reject(v, -ENOMEM, "key.command", "cannot allocate locked memory for the output of key_command %s",
                       ks->path);
        goto out_args;
    }
    /* O_CLOEXEC at creation: another thread's program must not inherit
     * our write end (its EOF would never come). */
    if (pipe2(p, O_CLOEXEC) != 0 || (p[0] = sif_fd_high(p[0])) < 0 || (p[1] = sif_fd_high(p[1])) < 0) {
        int e = errno;

        r = sif_reject(v, -e, "key.command", "cannot make a pipe for key_command %s (%s)", ks->path, strerror(e));
        goto out_pipe;
    }
    r = sif_spawn(ks, argv, p[1], &pid);
    if (r) {
        r = sif_reject(v, -r, "key.command", "cannot run key_command %s (%s)", ks->path, strerror(r));
        goto out_pipe;
    }
    close(p[1]);
    p[1] = -1;

    /* Its output, until end of file (every process holding the pipe is
     * done with it), the cap or the deadline. */
    for (;;) {
        struct pollfd pf = { .fd = p[0], .events = POLLIN };
        ssize_t got;
        int pr;

        if (sif_left_ms(deadline) == 0) {
            timed_out = true;
            break;
        }
        pr = poll(&pf, 1, sif_left_ms(deadline));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            continue;   /* the deadline check above ends it */
        if (pr < 0)
            break;      /* cannot happen with one valid fd; the exit status decides */
        got = read(p[0], buf + n, max + 1 - n);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0)
            break;
        n += (size_t)got;
        if (n > max) {
            too_long = true;
            break;
        }
    }
    if (!timed_out && !too_long && sif_wait_exit(pid, deadline) == -ETIMEDOUT)
        timed_out = true;
    /* The whole group, on every path: what it left running must not
     * outlive it.  The leader is not reaped yet, so its pid (the group's
     * id) cannot belong to anyone else. */
    kill(-pid, SIGKILL);
    st = sif_reap(pid);
    close(p[0]);
    p[0] = -1;

    if (timed_out)
        r = sif_reject(v, -ETIMEDOUT, "key.timeout", "key_command %s did not finish within %u s and was killed",
                       ks->path, (unsigned)timeout_s);
    else if (too_long)
        r = sif_reject(v, -EFBIG, "key.command", "key_command %s printed more than %zu bytes", ks->path, max);
    else if (st == -1)
        r = sif_reject(v, -ECHILD, "key.command", "cannot get the exit status of key_command %s", ks->path);
    else if (WIFSIGNALED(st))
        r = sif_reject(v, -EIO, "key.command", "key_command %s was killed by signal %d (%s)", ks->path,
                       WTERMSIG(st), strsignal(WTERMSIG(st)));
    else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        r = sif_reject(v, -EIO, "key.command", "key_command %s exited with status %d", ks->path,
                       WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    else
        r = 0;
    if (r == 0) {
        *bufp = buf;
        *lenp = n;
        buf = NULL;
    }
out_pipe:
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    sif_secure_free(buf);
out_args:
    free(name_arg);
    free(id_arg);
    return r;
}

static int sif_load_command(const struct sif_keysrc *ks, const char *name, const char *key_id,
                            struct sif_keyset *out, struct sif_verdict *v)
{
    size_t max = sif_secret_max(ks->format), n = 0;
    uint8_t *buf = NULL;
    int r;

    r = sif_run_program(ks, name, key_id, max, &buf, &n, v);
    if (r)
        return r;
    out->source = "command";
    r = sif_keyset_fill(ks->format, buf, n, out);
    if (r == -ENODATA)
        return sif_reject(v, -EINVAL, "key.command", "key_command %s printed nothing", ks->path);
    if (r)
        return sif_reject(v, r, "key.command", "cannot allocate locked memory for the key from key_command %s",
                          ks->path);
    return 0;
}

/* ---------------------------------------------------------------- loading */

int sif_keyset_load(const struct sif_keysrc *ks, const char *name, const char *key_id,
                    struct sif_keyset *out, struct sif_verdict *v)
{
    int r;

    memset(out, 0, sizeof(*out));
    if (!key_id)
        key_id = "";
    if (key_id[0] && (ks->kind == SIF_KEYSRC_DIR || ks->kind == SIF_KEYSRC_COMMAND) && !sif_key_id_valid(key_id)) {
        /* Never quoted: it could be anything, control characters too. */
        return sif_reject(v, -EINVAL, "key.id",
                          "the declared os_encrypt_key_id is not 1..%d characters of A-Z a-z 0-9 . _ - "
                          "not starting with '.'", SIF_KEY_ID_MAX);
    }
    switch (ks->kind) {
    case SIF_KEYSRC_FILE:
        r = sif_load_file(ks, out, v);
        break;
    case SIF_KEYSRC_DIR:
        r = sif_load_dir(ks, name, key_id, out, v);
        break;
    case SIF_KEYSRC_COMMAND:
        r = sif_load_command(ks, name, key_id, out, v);
        break;
    default:
        return sif_reject(v, -ENOKEY, "key.missing",
                          "no key source configured (keyfile, keydir or key_command): the header passed inspection, "
                          "the content was not inspected");
    }
    if (r)
        sif_keyset_free(out);
    return r;
}

int sif_key_load(const struct sif_keysrc *ks, const char *name, uint8_t **pass, size_t *len,
                 struct sif_verdict *v)
{
    struct sif_keyset set;
    int r;

    *pass = NULL;
    *len = 0;
    r = sif_keyset_load(ks, name, NULL, &set, v);
    if (r)
        return r;
    *pass = set.c[0].pass;
    *len = set.c[0].len;
    set.c[0].pass = NULL;
    sif_keyset_free(&set);
    return 0;
}
