/* test_keys.c: key files and key directories.
 *
 * Each test gets a fresh temporary key directory (cmocka setup/teardown).
 * A key file is accepted only when it is a regular file, not reached
 * through a symbolic link, with no group or other permission bits, owned by
 * root or the current user, not empty and at most SIF_KEYFILE_MAX bytes.
 */
#include "config.h"

#include "unit.h"

#include <signal.h>

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
    };

    return cmocka_run_group_tests_name("keys", tests, NULL, NULL);
}
