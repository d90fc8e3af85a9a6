/* test_keys.c: key files, key directories, key ids, hex formats and key
 * programs.
 *
 * Each test gets a fresh temporary key directory (cmocka setup/teardown).
 * A key file is accepted only when it is a regular file, not reached
 * through a symbolic link, with no group or other permission bits, owned by
 * root or the current user, not empty and at most SIF_KEYFILE_MAX bytes
 * (SIF_KEY_HEX_SECRET_MAX in hex format).  Key programs are shell scripts
 * the tests write into that directory; the hanging ones run with a 1 s
 * timeout, and every test of a killed program checks that its whole process
 * group is gone.
 */
#include "config.h"

#include "unit.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "keys.h"
#include "secmem.h"
#include "verdict.h"

/* Writes dir/NAME.key with these bytes and mode. */
static void put_key(const char *dir, const char *name, const void *data, size_t len, mode_t mode)
{
    char path[PATH_MAX + 64];

    unit_fmt(path, sizeof(path), "%s/%s.key", dir, name);
    unit_write_file(path, data, len, mode);
}

/* Loads the key of image `name` from the key directory dir. */
static int load_dir(const char *dir, const char *name, uint8_t **pass, size_t *len, struct sif_verdict *v)
{
    struct sif_keysrc ks;
    char err[256] = "";
    int r;

    assert_int_equal(sif_keysrc_open(&ks, SIF_KEYSRC_DIR, dir, err, sizeof(err)), 0);
    assert_true(ks.dirfd >= 0);
    sif_verdict_init(v);
    r = sif_key_load(&ks, name, pass, len, v);
    sif_keysrc_close(&ks);
    return r;
}

/* The key loads and equals want[0..want_len). */
static void expect_pass(const char *dir, const char *name, const void *want, size_t want_len)
{
    struct sif_verdict v;
    uint8_t *pass = NULL;
    size_t len = 0;
    int r = load_dir(dir, name, &pass, &len, &v);

    if (r)
        fail_msg("%s: [%s] %s", name, v.check, v.reason);
    assert_int_equal(v.state, SIF_PENDING);
    assert_non_null(pass);
    assert_int_equal(len, want_len);
    assert_memory_equal(pass, want, want_len);
    sif_secure_free(pass);
}

/* The key is refused with this check id, and nothing is returned. */
static void expect_refused(const char *dir, const char *name, const char *check)
{
    struct sif_verdict v;
    uint8_t *pass = (uint8_t *)&pass;
    size_t len = 99;
    int r = load_dir(dir, name, &pass, &len, &v);

    assert_true(r < 0);
    assert_int_equal(v.state, SIF_REJECTED);
    assert_string_equal(v.check, check);
    assert_true(v.reason[0] != 0);
    assert_null(pass);
    assert_int_equal(len, 0);
}

static void test_mode_0600(void **state)
{
    const char *dir = *state;
    static const uint8_t bin[] = { 'a', 0, 'b', 0xff, '\n' };

    put_key(dir, "plain", "s3cr3t pass", 11, 0600);
    expect_pass(dir, "plain", "s3cr3t pass", 11);
    /* exactly one trailing newline is stripped */
    put_key(dir, "nl", "pw\n", 3, 0600);
    expect_pass(dir, "nl", "pw", 2);
    put_key(dir, "nlnl", "pw\n\n", 4, 0600);
    expect_pass(dir, "nlnl", "pw\n", 3);
    /* a carriage return is data, leading newlines too */
    put_key(dir, "crlf", "pw\r\n", 4, 0600);
    expect_pass(dir, "crlf", "pw\r", 3);
    put_key(dir, "lead", "\npw", 3, 0600);
    expect_pass(dir, "lead", "\npw", 3);
    /* binary bytes, NUL included, are kept as they are */
    put_key(dir, "bin", bin, sizeof(bin), 0600);
    expect_pass(dir, "bin", bin, sizeof(bin) - 1);
    /* read-only for the owner is fine too */
    put_key(dir, "ro", "pw", 2, 0400);
    expect_pass(dir, "ro", "pw", 2);
    /* the image name is used verbatim: disk.img -> disk.img.key */
    put_key(dir, "disk.img", "hexkey", 6, 0600);
    expect_pass(dir, "disk.img", "hexkey", 6);
}

static void test_group_other_bits(void **state)
{
    static const mode_t modes[] = { 0644, 0640, 0604, 0610, 0601, 0620, 0602, 0660, 0666, 0700 | 0040 };
    const char *dir = *state;

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        put_key(dir, "img", "pw", 2, modes[i]);
        print_message("mode %04o\n", (unsigned)modes[i]);
        expect_refused(dir, "img", "key.perms");
    }
}

static void test_symlink(void **state)
{
    const char *dir = *state;
    char target[PATH_MAX + 64], link[PATH_MAX + 64];

    put_key(dir, "real", "pw", 2, 0600);
    unit_fmt(target, sizeof(target), "%s/real.key", dir);
    unit_fmt(link, sizeof(link), "%s/img.key", dir);
    assert_int_equal(symlink(target, link), 0);
    expect_refused(dir, "img", "key.perms");
    /* relative target too */
    unlink(link);
    assert_int_equal(symlink("real.key", link), 0);
    expect_refused(dir, "img", "key.perms");
    /* and a dangling one */
    unlink(link);
    assert_int_equal(symlink("nowhere.key", link), 0);
    expect_refused(dir, "img", "key.perms");
}

static void test_missing(void **state)
{
    const char *dir = *state;

    expect_refused(dir, "img", "key.missing");
    /* a key for another image does not count */
    put_key(dir, "other", "pw", 2, 0600);
    expect_refused(dir, "img", "key.missing");
}

static void test_empty(void **state)
{
    const char *dir = *state;

    put_key(dir, "img", "", 0, 0600);
    expect_refused(dir, "img", "key.read");
    /* a single newline is empty once stripped */
    put_key(dir, "nl", "\n", 1, 0600);
    expect_refused(dir, "nl", "key.read");
}

static void test_size_limit(void **state)
{
    const char *dir = *state;
    uint8_t *big = malloc(SIF_KEYFILE_MAX + 2);

    assert_non_null(big);
    unit_fill_prng(big, SIF_KEYFILE_MAX + 2, 5);
    for (size_t i = 0; i < SIF_KEYFILE_MAX + 2; i++)
        if (big[i] == '\n')
            big[i] = 'n';
    /* exactly the maximum is accepted */
    put_key(dir, "max", big, SIF_KEYFILE_MAX, 0600);
    expect_pass(dir, "max", big, SIF_KEYFILE_MAX);
    /* one byte more is not */
    put_key(dir, "over", big, SIF_KEYFILE_MAX + 1, 0600);
    expect_refused(dir, "over", "key.read");
    put_key(dir, "over2", big, SIF_KEYFILE_MAX + 2, 0600);
    expect_refused(dir, "over2", "key.read");
    free(big);
}

static void test_other_owner(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX + 64];

    if (geteuid() != 0)
        skip();
    put_key(dir, "img", "pw", 2, 0600);
    unit_fmt(path, sizeof(path), "%s/img.key", dir);
    assert_int_equal(chown(path, 12345, 12345), 0);
    expect_refused(dir, "img", "key.perms");
    /* owned by root (the current user here), group elsewhere: fine */
    assert_int_equal(chown(path, 0, 12345), 0);
    expect_pass(dir, "img", "pw", 2);
}

static void test_not_regular(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX + 64];
    struct sif_verdict v;
    uint8_t *pass = NULL;
    size_t len = 0;
    int r;

    /* a directory called img.key */
    unit_fmt(path, sizeof(path), "%s/img.key", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    r = load_dir(dir, "img", &pass, &len, &v);
    assert_true(r < 0);
    assert_int_equal(v.state, SIF_REJECTED);
    assert_true(!strcmp(v.check, "key.read") || !strcmp(v.check, "key.perms"));
    assert_null(pass);
}

/* A FIFO called img.key must be refused without waiting for a writer.
 * Run in a child with an alarm, so a blocking open() fails the test
 * instead of hanging it.
 *
 * Key files are opened with O_NONBLOCK so that a FIFO planted as a key file
 * is refused by the regular-file check instead of blocking a worker (or
 * start-up, for keyfile=). */
static void test_fifo(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX + 64];
    int st;
    pid_t pid;

    unit_fmt(path, sizeof(path), "%s/img.key", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sif_keysrc ks;
        struct sif_verdict v;
        uint8_t *pass = NULL;
        size_t len = 0;
        char err[256];
        int r;

        alarm(2);
        if (sif_keysrc_open(&ks, SIF_KEYSRC_DIR, dir, err, sizeof(err)) != 0)
            _exit(10);
        sif_verdict_init(&v);
        r = sif_key_load(&ks, "img", &pass, &len, &v);
        if (r >= 0 || v.state != SIF_REJECTED || pass)
            _exit(11);
        if (strcmp(v.check, "key.read") != 0 && strcmp(v.check, "key.perms") != 0)
            _exit(12);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
        fail_msg("sif_key_load() blocked for 2 s opening a FIFO key file");
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_no_source(void **state)
{
    struct sif_keysrc ks;
    struct sif_verdict v;
    uint8_t *pass = NULL;
    size_t len = 0;
    char err[128];

    (void)state;
    assert_int_equal(sif_keysrc_open(&ks, SIF_KEYSRC_NONE, NULL, err, sizeof(err)), 0);
    sif_verdict_init(&v);
    assert_true(sif_key_load(&ks, "img", &pass, &len, &v) < 0);
    assert_string_equal(v.check, "key.missing");
    assert_null(pass);
    sif_keysrc_close(&ks);
}

static void test_keysrc_dir(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX + 64], err[256] = "";
    struct sif_keysrc ks;

    unit_fmt(path, sizeof(path), "%s/does-not-exist", dir);
    assert_int_equal(sif_keysrc_open(&ks, SIF_KEYSRC_DIR, path, err, sizeof(err)), -ENOENT);
    assert_true(err[0] != 0);
    sif_keysrc_close(&ks);
    /* a regular file is not a key directory */
    unit_fmt(path, sizeof(path), "%s/file", dir);
    unit_write_file(path, "x", 1, 0600);
    err[0] = 0;
    assert_int_equal(sif_keysrc_open(&ks, SIF_KEYSRC_DIR, path, err, sizeof(err)), -ENOTDIR);
    assert_true(err[0] != 0);
    sif_keysrc_close(&ks);
}

/* keyfile=: one file for every image, checked when the source is opened. */
static void test_keysrc_file(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX + 64], link[PATH_MAX + 64], err[256] = "";
    struct sif_keysrc ks;
    struct sif_verdict v;
    uint8_t *pass = NULL;
    size_t len = 0;

    unit_fmt(path, sizeof(path), "%s/all.pw", dir);
    unit_write_file(path, "pw\n", 3, 0644);
    assert_int_equal(sif_keysrc_open(&ks, SIF_KEYSRC_FILE, path, err, sizeof(err)), -EPERM);
    assert_true(err[0] != 0);
    sif_keysrc_close(&ks);

    unit_write_file(path, "pw\n", 3, 0640);
    assert_int_equal(sif_keysrc_open(&ks, SIF_KEYSRC_FILE, path, err, sizeof(err)), -EPERM);
    sif_keysrc_close(&ks);

    /* missing */
    unit_fmt(link, sizeof(link), "%s/none.pw", dir);
    assert_int_equal(sif_keysrc_open(&ks, SIF_KEYSRC_FILE, link, err, sizeof(err)), -ENOENT);
    sif_keysrc_close(&ks);

    /* through a symbolic link */
    unit_write_file(path, "pw\n", 3, 0600);
    unit_fmt(link, sizeof(link), "%s/link.pw", dir);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(sif_keysrc_open(&ks, SIF_KEYSRC_FILE, link, err, sizeof(err)), -ELOOP);
    sif_keysrc_close(&ks);

    /* a good one: every image gets its bytes */
    assert_int_equal(sif_keysrc_open(&ks, SIF_KEYSRC_FILE, path, err, sizeof(err)), 0);
    sif_verdict_init(&v);
    assert_int_equal(sif_key_load(&ks, "any.img", &pass, &len, &v), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(pass, "pw", 2);
    sif_secure_free(pass);
    /* modes are checked again at load time */
    assert_int_equal(chmod(path, 0604), 0);
    sif_verdict_init(&v);
    pass = NULL;
    assert_true(sif_key_load(&ks, "any.img", &pass, &len, &v) < 0);
    assert_string_equal(v.check, "key.perms");
    assert_null(pass);
    sif_keysrc_close(&ks);
}

static void test_check_fd(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX + 64], err[256];
    int fd, p[2];

    unit_fmt(path, sizeof(path), "%s/k", dir);
    unit_write_file(path, "pw", 2, 0600);
    fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    err[0] = 0;
    assert_int_equal(sif_key_check_fd(fd, err, sizeof(err)), 0);
    assert_int_equal(fchmod(fd, 0644), 0);
    assert_int_equal(sif_key_check_fd(fd, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "0644"));
    assert_int_equal(fchmod(fd, 0600), 0);
    assert_int_equal(sif_key_check_fd(fd, err, sizeof(err)), 0);
    close(fd);

    fd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    assert_int_equal(sif_key_check_fd(fd, err, sizeof(err)), -EINVAL);
    close(fd);

    assert_int_equal(pipe(p), 0);
    assert_int_equal(sif_key_check_fd(p[0], err, sizeof(err)), -EINVAL);
    close(p[0]);
    close(p[1]);

    assert_true(sif_key_check_fd(-1, err, sizeof(err)) < 0);
}

/* ---------------------------------------------------------------- key sets */

/* Opens a source of this kind on path, with this format and timeout. */
static void open_src(struct sif_keysrc *ks, enum sif_keysrc_kind kind, const char *path, enum sif_key_format fmt,
                     uint32_t timeout_s)
{
    char err[512] = "";

    if (sif_keysrc_open(ks, kind, path, err, sizeof(err)) != 0)
        fail_msg("sif_keysrc_open(%s): %s", path, err);
    ks->format = fmt;
    ks->timeout_s = timeout_s;
}

/* The set loads; its candidate i is want (a NUL-terminated string here),
 * of this form, and the set came from this source. */
static void expect_set(const struct sif_keysrc *ks, const char *name, const char *key_id, const char *source,
                       int n, const char *want0, const char *form0, const char *want1)
{
    struct sif_keyset set;
    struct sif_verdict v;

    sif_verdict_init(&v);
    if (sif_keyset_load(ks, name, key_id, &set, &v) != 0)
        fail_msg("%s (id '%s'): [%s] %s", name, key_id ? key_id : "(null)", v.check, v.reason);
    assert_int_equal(v.state, SIF_PENDING);
    assert_string_equal(set.source, source);
    assert_int_equal(set.n, n);
    assert_int_equal(set.c[0].len, strlen(want0));
    assert_memory_equal(set.c[0].pass, want0, strlen(want0));
    assert_string_equal(set.c[0].form, form0);
    if (n > 1) {
        assert_int_equal(set.c[1].len, strlen(want1));
        assert_memory_equal(set.c[1].pass, want1, strlen(want1));
        assert_string_equal(set.c[1].form, "hex-legacy");
    } else {
        assert_null(set.c[1].pass);
    }
    sif_keyset_free(&set);
    assert_int_equal(set.n, 0);
    assert_null(set.c[0].pass);
    sif_keyset_free(&set);   /* twice is harmless */
}

/* The set is refused with this check id, nothing is returned, and the
 * reason contains `needle` (when not NULL). */
static void expect_set_refused(const struct sif_keysrc *ks, const char *name, const char *key_id, const char *check,
                               const char *needle)
{
    struct sif_keyset set;
    struct sif_verdict v;

    memset(&set, 0x5a, sizeof(set));
    sif_verdict_init(&v);
    assert_true(sif_keyset_load(ks, name, key_id, &set, &v) < 0);
    assert_int_equal(v.state, SIF_REJECTED);
    if (strcmp(v.check, check) != 0)
        fail_msg("%s (id '%s'): expected %s, got [%s] %s", name, key_id ? key_id : "(null)", check, v.check, v.reason);
    assert_true(v.reason[0] != 0);
    if (needle && !strstr(v.reason, needle))
        fail_msg("reason '%s' does not contain '%s'", v.reason, needle);
    assert_int_equal(set.n, 0);
    assert_null(set.c[0].pass);
    assert_null(set.c[1].pass);
    assert_null(set.source);
}

static void put_file(const char *dir, const char *name, const void *data, size_t len, mode_t mode)
{
    char path[PATH_MAX + 300];

    unit_fmt(path, sizeof(path), "%s/%s", dir, name);
    unit_write_file(path, data, len, mode);
}

static void test_keydir_id_first(void **state)
{
    const char *dir = *state;
    static const char *uuid = "0f2a7e9c-5b1d-4c3e-8a6f-1d2e3f4a5b6c";
    struct sif_keysrc ks;

    put_file(dir, uuid, "pw-by-id\n", 9, 0600);
    put_key(dir, "img", "pw-by-name\n", 11, 0600);
    open_src(&ks, SIF_KEYSRC_DIR, dir, SIF_KEY_FORMAT_RAW, 0);
    expect_set(&ks, "img", uuid, "keydir:id", 1, "pw-by-id", "raw", NULL);
    /* no id: the name */
    expect_set(&ks, "img", NULL, "keydir:name", 1, "pw-by-name", "raw", NULL);
    expect_set(&ks, "img", "", "keydir:name", 1, "pw-by-name", "raw", NULL);
    /* the id file serves any image that declares it, even one without NAME.key */
    expect_set(&ks, "other.img", uuid, "keydir:id", 1, "pw-by-id", "raw", NULL);
    /* the id is a file name as is: no ".key" appended */
    put_file(dir, "k1.key", "pw-k1-dot-key", 13, 0600);
    expect_set(&ks, "img", "k1", "keydir:name", 1, "pw-by-name", "raw", NULL);
    expect_set(&ks, "img", "k1.key", "keydir:id", 1, "pw-k1-dot-key", "raw", NULL);
    sif_keysrc_close(&ks);
}

static void test_keydir_id_fallback(void **state)
{
    const char *dir = *state;
    struct sif_keysrc ks;

    put_key(dir, "img", "pw-by-name", 10, 0600);
    open_src(&ks, SIF_KEYSRC_DIR, dir, SIF_KEY_FORMAT_RAW, 0);
    expect_set(&ks, "img", "no-such-id", "keydir:name", 1, "pw-by-name", "raw", NULL);
    /* neither: key.missing, naming both places */
    expect_set_refused(&ks, "nokey.img", "no-such-id", "key.missing", "no-such-id");
    expect_set_refused(&ks, "nokey.img", "no-such-id", "key.missing", "nokey.img.key");
    expect_set_refused(&ks, "nokey.img", NULL, "key.missing", "nokey.img.key");
    sif_keysrc_close(&ks);
}

static void test_key_id_invalid(void **state)
{
    const char *dir = *state;
    char longid[SIF_KEY_ID_MAX + 2], sub[PATH_MAX + 64];
    static const char *bad[] = { "a/b", "..", ".", ".hidden", "/abs", "../img.key", "a b", "a\nb", "a\001b",
                                 "a\177b", "tab\there", "\xc3\xa9t\xc3\xa9", "a:b", "a\\b", "*", "img.key/" };
    struct sif_keysrc ks;

    /* NAME.key exists and is fine: an invalid id must not fall back to it */
    put_key(dir, "img", "pw-by-name", 10, 0600);
    put_file(dir, ".hidden", "pw-hidden", 9, 0600);
    unit_fmt(sub, sizeof(sub), "%s/a", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    put_file(sub, "b", "pw-a-b", 6, 0600);
    open_src(&ks, SIF_KEYSRC_DIR, dir, SIF_KEY_FORMAT_RAW, 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(sif_key_id_valid(bad[i]));
        expect_set_refused(&ks, "img", bad[i], "key.id", NULL);
    }
    /* 255 characters are fine, 256 are not */
    memset(longid, 'k', sizeof(longid));
    longid[SIF_KEY_ID_MAX] = 0;
    assert_true(sif_key_id_valid(longid));
    put_file(dir, longid, "pw-long", 7, 0600);
    expect_set(&ks, "img", longid, "keydir:id", 1, "pw-long", "raw", NULL);
    longid[SIF_KEY_ID_MAX] = 'k';
    longid[SIF_KEY_ID_MAX + 1] = 0;
    assert_false(sif_key_id_valid(longid));
    expect_set_refused(&ks, "img", longid, "key.id", NULL);
    /* the allowed alphabet, a dot inside */
    assert_true(sif_key_id_valid("A-Z_a-z.0-9"));
    assert_true(sif_key_id_valid("-leading-dash"));
    assert_false(sif_key_id_valid(""));
    assert_false(sif_key_id_valid(NULL));
    sif_keysrc_close(&ks);

    /* keyfile= ignores the key id, whatever it is */
    put_file(dir, "all.pw", "pw-all", 6, 0600);
    unit_fmt(sub, sizeof(sub), "%s/all.pw", dir);
    open_src(&ks, SIF_KEYSRC_FILE, sub, SIF_KEY_FORMAT_RAW, 0);
    expect_set(&ks, "img", "../bad/id", "keyfile", 1, "pw-all", "raw", NULL);
    sif_keysrc_close(&ks);
}

static void test_keydir_id_bad_file(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX + 64];
    struct sif_keysrc ks;

    put_key(dir, "img", "pw-by-name", 10, 0600);
    open_src(&ks, SIF_KEYSRC_DIR, dir, SIF_KEY_FORMAT_RAW, 0);
    /* readable by others: refused, no fallback to img.key */
    put_file(dir, "kid", "pw-by-id", 8, 0644);
    expect_set_refused(&ks, "img", "kid", "key.perms", "kid");
    put_file(dir, "kid", "pw-by-id", 8, 0640);
    expect_set_refused(&ks, "img", "kid", "key.perms", "0640");
    /* a symbolic link (even to a good key file) */
    unit_fmt(path, sizeof(path), "%s/kid", dir);
    unlink(path);
    assert_int_equal(symlink("img.key", path), 0);
    expect_set_refused(&ks, "img", "kid", "key.perms", "kid");
    unlink(path);
    assert_int_equal(symlink("nowhere", path), 0);
    expect_set_refused(&ks, "img", "kid", "key.perms", "kid");
    unlink(path);
    /* a directory, an empty file, a FIFO */
    assert_int_equal(mkdir(path, 0700), 0);
    expect_set_refused(&ks, "img", "kid", "key.read", "kid");
    rmdir(path);
    put_file(dir, "kid", "", 0, 0600);
    expect_set_refused(&ks, "img", "kid", "key.read", "empty");
    unlink(path);
    assert_int_equal(mkfifo(path, 0600), 0);
    expect_set_refused(&ks, "img", "kid", "key.read", "kid");
    unlink(path);
    /* gone again: the fallback works */
    expect_set(&ks, "img", "kid", "keydir:name", 1, "pw-by-name", "raw", NULL);
    sif_keysrc_close(&ks);
}

/* Independent hex of bytes: "%02x" per byte, and the legacy "%x". */
static void hex_ref(const uint8_t *b, size_t n, char *hex, char *legacy)
{
    size_t h = 0, l = 0;

    for (size_t i = 0; i < n; i++) {
        h += (size_t)sprintf(hex + h, "%02x", b[i]);
        l += (size_t)sprintf(legacy + l, "%x", b[i]);
    }
}

static void test_hex_forms(void **state)
{
    const char *dir = *state;
    static const uint8_t known[] = { 0x00, 0x05, 0x0a, 0xab, 0xff };
    static const uint8_t high[] = { 0xab, 0xff, 0x10, 0x9c };
    static const uint8_t nl_end[] = { 0x12, 0x34, 0x0a };
    uint8_t secret[32];
    char hex[2 * sizeof(secret) + 1], legacy[2 * sizeof(secret) + 1], path[PATH_MAX + 64];
    struct sif_keysrc ks;

    open_src(&ks, SIF_KEYSRC_DIR, dir, SIF_KEY_FORMAT_HEX, 0);
    put_key(dir, "known", known, sizeof(known), 0600);
    expect_set(&ks, "known", NULL, "keydir:name", 2, "00050aabff", "hex", "05aabff");
    /* no byte below 0x10: both forms are equal, one candidate */
    put_key(dir, "high", high, sizeof(high), 0600);
    expect_set(&ks, "high", NULL, "keydir:name", 1, "abff109c", "hex", NULL);
    /* a binary secret ending in 0x0a keeps it */
    put_key(dir, "nl", nl_end, sizeof(nl_end), 0600);
    expect_set(&ks, "nl", NULL, "keydir:name", 2, "12340a", "hex", "1234a");
    put_key(dir, "justnl", "\n", 1, 0600);
    expect_set(&ks, "justnl", NULL, "keydir:name", 2, "0a", "hex", "a");
    put_key(dir, "zero", "\0", 1, 0600);
    expect_set(&ks, "zero", NULL, "keydir:name", 2, "00", "hex", "0");
    /* a Barbican-like 32-byte key, checked against printf */
    unit_fill_prng(secret, sizeof(secret), 77);
    secret[3] = 0x07;
    hex_ref(secret, sizeof(secret), hex, legacy);
    put_key(dir, "b32", secret, sizeof(secret), 0600);
    expect_set(&ks, "b32", NULL, "keydir:name", 2, hex, "hex", legacy);
    /* an empty file is still empty */
    put_key(dir, "empty", "", 0, 0600);
    expect_set_refused(&ks, "empty", NULL, "key.read", "empty");
    /* by id, too */
    put_file(dir, "kid", known, sizeof(known), 0600);
    expect_set(&ks, "img", "kid", "keydir:id", 2, "00050aabff", "hex", "05aabff");
    sif_keysrc_close(&ks);

    /* keyfile= in hex */
    unit_fmt(path, sizeof(path), "%s/all.bin", dir);
    unit_write_file(path, known, sizeof(known), 0600);
    open_src(&ks, SIF_KEYSRC_FILE, path, SIF_KEY_FORMAT_HEX, 0);
    expect_set(&ks, "x", NULL, "keyfile", 2, "00050aabff", "hex", "05aabff");
    sif_keysrc_close(&ks);
}

static void test_hex_caps(void **state)
{
    const char *dir = *state;
    size_t max = SIF_KEY_HEX_SECRET_MAX;
    uint8_t *secret = malloc(max + 1);
    char *hex = malloc(2 * max + 3), *legacy = malloc(2 * max + 3);
    struct sif_keysrc ks;

    assert_non_null(secret);
    assert_non_null(hex);
    assert_non_null(legacy);
    /* the hex of the longest secret is exactly the longest passphrase */
    assert_int_equal(2 * SIF_KEY_HEX_SECRET_MAX, SIF_KEYFILE_MAX);
    unit_fill_prng(secret, max + 1, 9);
    hex_ref(secret, max, hex, legacy);
    open_src(&ks, SIF_KEYSRC_DIR, dir, SIF_KEY_FORMAT_HEX, 0);
    put_key(dir, "max", secret, max, 0600);
    expect_set(&ks, "max", NULL, "keydir:name", 2, hex, "hex", legacy);
    put_key(dir, "over", secret, max + 1, 0600);
    expect_set_refused(&ks, "over", NULL, "key.read", "larger than 4096");
    sif_keysrc_close(&ks);
    /* the same file is a fine raw key */
    open_src(&ks, SIF_KEYSRC_DIR, dir, SIF_KEY_FORMAT_RAW, 0);
    {
        struct sif_keyset set;
        struct sif_verdict v;

        sif_verdict_init(&v);
        assert_int_equal(sif_keyset_load(&ks, "over", NULL, &set, &v), 0);
        assert_int_equal(set.c[0].len, secret[max] == '\n' ? max : max + 1);
        sif_keyset_free(&set);
    }
    sif_keysrc_close(&ks);
    free(secret);
    free(hex);
    free(legacy);
}

/* ---------------------------------------------------------------- key_command */

/* Writes dir/name as a shell script with this body and mode; path to buf. */
static void put_script(char *buf, size_t cap, const char *dir, const char *name, mode_t mode, const char *body)
{
    char text[4096];

    unit_fmt(buf, cap, "%s/%s", dir, name);
    unit_fmt(text, sizeof(text), "#!/bin/sh\n%s\n", body);
    unit_write_file(buf, text, strlen(text), mode);
}

/* The first line of dir/name as a number (a pid a script wrote), or 0. */
static long read_num(const char *dir, const char *name)
{
    char path[PATH_MAX + 64], line[64] = "";
    FILE *f;

    unit_fmt(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "r");
    if (!f)
        return 0;
    if (!fgets(line, sizeof(line), f))
        line[0] = 0;
    fclose(f);
    return strtol(line, NULL, 10);
}

/* How many live (not zombie) processes are in process group pgid, or are
 * process pid. */
static int live_in_group(pid_t pgid, pid_t pid)
{
    char path[64], buf[512];
    int count = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;

    assert_non_null(d);
    while ((e = readdir(d))) {
        char state, *rp;
        long p = strtol(e->d_name, &rp, 10), ppid, pgrp;
        FILE *f;

        if (*rp || p <= 0)
            continue;
        unit_fmt(path, sizeof(path), "/proc/%ld/stat", p);
        f = fopen(path, "r");
        if (!f)
            continue;
        if (!fgets(buf, sizeof(buf), f)) {
            fclose(f);
            continue;
        }
        fclose(f);
        rp = strrchr(buf, ')');
        if (!rp || sscanf(rp + 1, " %c %ld %ld", &state, &ppid, &pgrp) != 3)
            continue;
        if (state != 'Z' && state != 'X' && (pgrp == pgid || p == pid))
            count++;
    }
    closedir(d);
    return count;
}

/* Polls (<= 2 s) until nothing of group pgid (and no process pid) lives. */
static void expect_group_gone(pid_t pgid, pid_t pid)
{
    for (int i = 0; i < 200 && live_in_group(pgid, pid); i++)
        usleep(10000);
    if (live_in_group(pgid, pid))
        fail_msg("processes of group %ld (or pid %ld) are still alive", (long)pgid, (long)pid);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void test_command_ok(void **state)
{
    const char *dir = *state;
    char prog[PATH_MAX + 64], body[2048], argsf[PATH_MAX + 64];
    struct sif_keysrc ks;
    FILE *f;
    char args[256] = "";
    int fds = count_fds(), stdin_copy, in[2];
    pid_t kid;

    /* It gets NAME and KEY_ID as $1 and $2 (exactly two arguments), stdin
     * is /dev/null (cat ends at once), and its stdout is the secret. */
    unit_fmt(body, sizeof(body),
             "printf '%%s|%%s|%%s|%%s' \"$#\" \"$1\" \"$2\" \"$(cat | wc -c)\" >'%s/args'\n"
             "echo 'the pass phrase'", dir);
    put_script(prog, sizeof(prog), dir, "kc-ok", 0700, body);
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_RAW, 5);
    assert_string_equal(ks.path, prog);
    /* our stdin a pipe nobody closes: the program must not get it */
    stdin_copy = dup(0);
    assert_true(stdin_copy >= 0);
    assert_int_equal(pipe(in), 0);
    assert_int_equal(dup2(in[0], 0), 0);
    expect_set(&ks, "disk 1.img", "0f2a7e9c-5b1d", "command", 1, "the pass phrase", "raw", NULL);
    assert_int_equal(dup2(stdin_copy, 0), 0);
    close(stdin_copy);
    close(in[0]);
    close(in[1]);
    unit_fmt(argsf, sizeof(argsf), "%s/args", dir);
    f = fopen(argsf, "r");
    assert_non_null(f);
    assert_non_null(fgets(args, sizeof(args), f));
    fclose(f);
    assert_string_equal(args, "2|disk 1.img|0f2a7e9c-5b1d|0");
    /* no key id: an empty second argument */
    expect_set(&ks, "img", NULL, "command", 1, "the pass phrase", "raw", NULL);
    f = fopen(argsf, "r");
    assert_non_null(f);
    assert_non_null(fgets(args, sizeof(args), f));
    fclose(f);
    assert_string_equal(args, "2|img||0");
    /* an invalid id never reaches the program */
    unlink(argsf);
    expect_set_refused(&ks, "img", "-rf /", "key.id", NULL);
    assert_int_equal(access(argsf, F_OK), -1);
    sif_keysrc_close(&ks);

    /* what it leaves running (stdout elsewhere) does not outlive it */
    put_script(prog, sizeof(prog), dir, "kc-leave", 0700,
               "sleep 1000 >/dev/null & echo $! >\"$(dirname \"$0\")/kid\"; echo pw");
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_RAW, 5);
    expect_set(&ks, "img", NULL, "command", 1, "pw", "raw", NULL);
    kid = (pid_t)read_num(dir, "kid");
    assert_true(kid > 0);
    expect_group_gone(kid, kid);
    sif_keysrc_close(&ks);

    /* hex: the output is the secret as is, a final newline included */
    put_script(prog, sizeof(prog), dir, "kc-hex", 0700, "printf '\\000\\005\\n'");
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_HEX, 5);
    expect_set(&ks, "img", "id", "command", 2, "00050a", "hex", "05a");
    sif_keysrc_close(&ks);

    /* exactly the maximum is fine; a binary program too */
    unit_fmt(body, sizeof(body), "head -c %d /dev/zero | tr '\\000' p", SIF_KEYFILE_MAX);
    put_script(prog, sizeof(prog), dir, "kc-max", 0500, body);
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_RAW, 5);
    {
        struct sif_keyset set;
        struct sif_verdict v;

        sif_verdict_init(&v);
        assert_int_equal(sif_keyset_load(&ks, "img", NULL, &set, &v), 0);
        assert_int_equal(set.c[0].len, SIF_KEYFILE_MAX);
        assert_int_equal(set.c[0].pass[0], 'p');
        assert_int_equal(set.c[0].pass[SIF_KEYFILE_MAX - 1], 'p');
        sif_keyset_free(&set);
    }
    sif_keysrc_close(&ks);
    assert_int_equal(count_fds(), fds);
}

static void test_command_fails(void **state)
{
    const char *dir = *state;
    char prog[PATH_MAX + 64], body[PATH_MAX + 64];
    struct sif_keysrc ks;
    int fds = count_fds();

    put_script(prog, sizeof(prog), dir, "kc-exit3", 0700, "echo right-pass-but; exit 3");
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_RAW, 5);
    expect_set_refused(&ks, "img", "id", "key.command", "status 3");
    expect_set_refused(&ks, "img", "id", "key.command", prog);
    sif_keysrc_close(&ks);

    put_script(prog, sizeof(prog), dir, "kc-signal", 0700, "echo pw; kill -KILL $$");
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_RAW, 5);
    expect_set_refused(&ks, "img", "id", "key.command", "signal 9");
    sif_keysrc_close(&ks);

    put_script(prog, sizeof(prog), dir, "kc-empty", 0700, "exit 0");
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_RAW, 5);
    expect_set_refused(&ks, "img", "id", "key.command", "nothing");
    sif_keysrc_close(&ks);
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_HEX, 5);
    expect_set_refused(&ks, "img", "id", "key.command", "nothing");
    sif_keysrc_close(&ks);

    /* a lone newline is empty in raw format */
    put_script(prog, sizeof(prog), dir, "kc-nl", 0700, "echo");
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_RAW, 5);
    expect_set_refused(&ks, "img", "id", "key.command", "nothing");
    sif_keysrc_close(&ks);

    /* one byte over the cap (the final newline counts, as in a key file);
     * and a program that never stops writing */
    unit_fmt(body, sizeof(body), "head -c %d /dev/zero | tr '\\000' p; echo", SIF_KEYFILE_MAX);
    put_script(prog, sizeof(prog), dir, "kc-over", 0700, body);
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_RAW, 5);
    expect_set_refused(&ks, "img", "id", "key.command", "more than 8192");
    sif_keysrc_close(&ks);
    unit_fmt(body, sizeof(body), "head -c %d /dev/zero", SIF_KEY_HEX_SECRET_MAX + 1);
    put_script(prog, sizeof(prog), dir, "kc-overhex", 0700, body);
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_HEX, 5);
    expect_set_refused(&ks, "img", "id", "key.command", "more than 4096");
    sif_keysrc_close(&ks);
    put_script(prog, sizeof(prog), dir, "kc-yes", 0700, "echo $$ >\"$(dirname \"$0\")/pid\"; exec yes");
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_RAW, 5);
    expect_set_refused(&ks, "img", "id", "key.command", "more than");
    expect_group_gone((pid_t)read_num(dir, "pid"), (pid_t)read_num(dir, "pid"));
    sif_keysrc_close(&ks);

    /* it cannot even be started (its interpreter does not exist) */
    unit_fmt(body, sizeof(body), "%s/kc-badinterp", dir);
    unit_write_file(body, "#!/nonexistent/sh\necho pw\n", strlen("#!/nonexistent/sh\necho pw\n"), 0700);
    open_src(&ks, SIF_KEYSRC_COMMAND, body, SIF_KEY_FORMAT_RAW, 5);
    expect_set_refused(&ks, "img", "id", "key.command", "cannot run");
    sif_keysrc_close(&ks);

    /* replaced after the source was opened: checked again at each run */
    put_script(prog, sizeof(prog), dir, "kc-later", 0700, "echo pw");
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_RAW, 5);
    expect_set(&ks, "img", NULL, "command", 1, "pw", "raw", NULL);
    assert_int_equal(chmod(prog, 0720), 0);
    expect_set_refused(&ks, "img", "id", "key.command", "0720");
    assert_int_equal(unlink(prog), 0);
    expect_set_refused(&ks, "img", "id", "key.command", prog);
    sif_keysrc_close(&ks);
    assert_int_equal(count_fds(), fds);
}

/* A program that hangs: killed at the deadline with everything it started. */
static void expect_timeout(const char *dir, const char *prog)
{
    struct sif_keysrc ks;
    double t0, dt;
    pid_t pid, kid;
    char path[PATH_MAX + 64];

    unit_fmt(path, sizeof(path), "%s/pid", dir);
    unlink(path);
    unit_fmt(path, sizeof(path), "%s/kid", dir);
    unlink(path);
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_RAW, 1);
    t0 = now_s();
    expect_set_refused(&ks, "img", "id", "key.timeout", "1 s");
    dt = now_s() - t0;
    print_message("%s: refused after %.3f s\n", prog, dt);
    assert_true(dt >= 0.9 && dt < 2.0);
    pid = (pid_t)read_num(dir, "pid");
    kid = (pid_t)read_num(dir, "kid");
    assert_true(pid > 0);
    /* reaped: no zombie of ours either */
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    expect_group_gone(pid, kid > 0 ? kid : pid);
    sif_keysrc_close(&ks);
}

static void test_command_timeout(void **state)
{
    const char *dir = *state;
    char prog[PATH_MAX + 64];
    int fds = count_fds();

    /* sleeps in a child process of the script */
    put_script(prog, sizeof(prog), dir, "kc-sleep", 0700,
               "echo $$ >\"$(dirname \"$0\")/pid\"; sleep 1000");
    expect_timeout(dir, prog);
    /* prints the passphrase and exits, but leaves a child holding stdout */
    put_script(prog, sizeof(prog), dir, "kc-bg", 0700,
               "echo $$ >\"$(dirname \"$0\")/pid\"; sleep 1000 & echo $! >\"$(dirname \"$0\")/kid\"; echo pw; exit 0");
    expect_timeout(dir, prog);
    /* ignores SIGTERM and closes stdout, then lingers */
    put_script(prog, sizeof(prog), dir, "kc-linger", 0700,
               "trap '' TERM; echo $$ >\"$(dirname \"$0\")/pid\"; echo pw; exec >&-; while :; do sleep 1; done");
    expect_timeout(dir, prog);
    assert_int_equal(count_fds(), fds);
}

/* The program gets default signal handling and an empty signal mask,
 * whatever the calling thread has. */
static void test_command_signals(void **state)
{
    const char *dir = *state;
    char prog[PATH_MAX + 64];
    struct sif_keysrc ks;
    sigset_t set, old;

    put_script(prog, sizeof(prog), dir, "kc-term", 0700, "kill -TERM $$; sleep 3; echo pw");
    signal(SIGTERM, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_RAW, 10);
    expect_set_refused(&ks, "img", "id", "key.command", "signal 15");
    sif_keysrc_close(&ks);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
    signal(SIGTERM, SIG_DFL);

    /* With SIGCHLD ignored the program cannot be supervised: refused */
    put_script(prog, sizeof(prog), dir, "kc-pw", 0700, "echo pw");
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_RAW, 10);
    signal(SIGCHLD, SIG_IGN);
    expect_set_refused(&ks, "img", "id", "key.command", "SIGCHLD");
    signal(SIGCHLD, SIG_DFL);
    expect_set(&ks, "img", NULL, "command", 1, "pw", "raw", NULL);
    sif_keysrc_close(&ks);
}

struct cmd_job {
    const struct sif_keysrc *ks;
    char name[32];
    int ok;
};

static void *cmd_thread(void *arg)
{
    struct cmd_job *j = arg;
    struct sif_keyset set;
    struct sif_verdict v;

    sif_verdict_init(&v);
    if (sif_keyset_load(j->ks, j->name, "", &set, &v) == 0) {
        j->ok = set.c[0].len == strlen(j->name) + 3 && !memcmp(set.c[0].pass, "pw-", 3) &&
                !memcmp(set.c[0].pass + 3, j->name, strlen(j->name));
        sif_keyset_free(&set);
    }
    return NULL;
}

/* Several threads at once, as the inspection workers do: each gets its own
 * program's output, and none waits for another's (O_CLOEXEC pipes). */
static void test_command_threads(void **state)
{
    const char *dir = *state;
    char prog[PATH_MAX + 64];
    struct sif_keysrc ks;
    struct cmd_job jobs[6];
    pthread_t th[6];
    double t0 = now_s();

    put_script(prog, sizeof(prog), dir, "kc-echo", 0700, "sleep 0.3; printf 'pw-%s' \"$1\"");
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_RAW, 10);
    for (int i = 0; i < 6; i++) {
        jobs[i].ks = &ks;
        jobs[i].ok = 0;
        unit_fmt(jobs[i].name, sizeof(jobs[i].name), "image-%d", i);
        assert_int_equal(pthread_create(&th[i], NULL, cmd_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_true(jobs[i].ok);
    }
    print_message("6 concurrent key programs in %.3f s\n", now_s() - t0);
    assert_true(now_s() - t0 < 3.0);
    sif_keysrc_close(&ks);
}

/* Expects sif_keysrc_open(COMMAND, path) to fail with r and a message
 * containing needle. */
static void expect_open_refused(const char *path, int r, const char *needle)
{
    struct sif_keysrc ks;
    char err[512] = "";

    assert_int_equal(sif_keysrc_open(&ks, SIF_KEYSRC_COMMAND, path, err, sizeof(err)), r);
    if (!strstr(err, needle))
        fail_msg("message '%s' does not contain '%s'", err, needle);
    sif_keysrc_close(&ks);
}

static void test_command_open_checks(void **state)
{
    const char *dir = *state;
    char prog[PATH_MAX + 64], link[PATH_MAX + 64], sub[PATH_MAX + 64], rel[64];
    struct sif_keysrc ks;

    put_script(prog, sizeof(prog), dir, "kc", 0700, "echo pw");
    /* relative paths */
    expect_open_refused("kc", -EINVAL, "absolute");
    expect_open_refused("./kc", -EINVAL, "absolute");
    unit_fmt(rel, sizeof(rel), "%s", "");
    expect_open_refused(rel, -EINVAL, "absolute");
    /* writable by group or others */
    assert_int_equal(chmod(prog, 0770), 0);
    expect_open_refused(prog, -EPERM, "0770");
    assert_int_equal(chmod(prog, 0702), 0);
    expect_open_refused(prog, -EPERM, prog);
    /* not executable */
    assert_int_equal(chmod(prog, 0600), 0);
    expect_open_refused(prog, -EACCES, "not executable");
    /* readable and executable by all is fine */
    assert_int_equal(chmod(prog, 0755), 0);
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_RAW, 0);
    assert_int_equal(ks.timeout_s, 0);   /* default: SIF_KEY_COMMAND_TIMEOUT_DEFAULT */
    expect_set(&ks, "img", NULL, "command", 1, "pw", "raw", NULL);
    sif_keysrc_close(&ks);
    /* missing, a directory, a symbolic link to a good program */
    unit_fmt(link, sizeof(link), "%s/none", dir);
    expect_open_refused(link, -ENOENT, "none");
    expect_open_refused(dir, -EINVAL, "not a regular file");
    unit_fmt(link, sizeof(link), "%s/kc-link", dir);
    assert_int_equal(symlink(prog, link), 0);
    expect_open_refused(link, -ELOOP, "symbolic link");
    /* in a directory others may write to (not sticky) */
    unit_fmt(sub, sizeof(sub), "%s/shared", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    put_script(prog, sizeof(prog), sub, "kc", 0700, "echo pw");
    assert_int_equal(chmod(sub, 0777), 0);
    expect_open_refused(prog, -EPERM, "0777");
    assert_int_equal(chmod(sub, 0775), 0);
    expect_open_refused(prog, -EPERM, sub);
    /* sticky, like /tmp: fine */
    assert_int_equal(chmod(sub, 01777), 0);
    open_src(&ks, SIF_KEYSRC_COMMAND, prog, SIF_KEY_FORMAT_RAW, 0);
    sif_keysrc_close(&ks);
    /* a path through a directory link is resolved once */
    unit_fmt(link, sizeof(link), "%s/dirlink", dir);
    assert_int_equal(symlink("shared", link), 0);
    unit_fmt(link, sizeof(link), "%s/dirlink/kc", dir);
    open_src(&ks, SIF_KEYSRC_COMMAND, link, SIF_KEY_FORMAT_RAW, 0);
    assert_string_equal(ks.path, prog);
    sif_keysrc_close(&ks);
    /* another owner (needs root) */
    if (geteuid() == 0) {
        assert_int_equal(chown(prog, 12345, 12345), 0);
        expect_open_refused(prog, -EPERM, "uid 12345");
        assert_int_equal(chown(prog, 0, 0), 0);
        assert_int_equal(chown(sub, 12345, 0), 0);
        expect_open_refused(prog, -EPERM, "uid 12345");
    }
}

#define T(f) cmocka_unit_test_setup_teardown(f, unit_tmpdir_setup, unit_tmpdir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_mode_0600),
        T(test_group_other_bits),
        T(test_symlink),
        T(test_missing),
        T(test_empty),
        T(test_size_limit),
        T(test_other_owner),
        T(test_not_regular),
        T(test_fifo),
        T(test_no_source),
        T(test_keysrc_dir),
        T(test_keysrc_file),
        T(test_check_fd),
        T(test_keydir_id_first),
        T(test_keydir_id_fallback),
        T(test_key_id_invalid),
        T(test_keydir_id_bad_file),
        T(test_hex_forms),
        T(test_hex_caps),
        T(test_command_ok),
        T(test_command_fails),
        T(test_command_timeout),
        T(test_command_signals),
        T(test_command_threads),
        T(test_command_open_checks),
    };

    return cmocka_run_group_tests_name("keys", tests, NULL, NULL);
}
