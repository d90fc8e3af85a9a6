/* test_unlock.c: the unlock sandbox's limits, on volumes made by cryptsetup.
 *
 * Each case runs the whole inspection (sif_image_inspect) with a policy
 * that one limit should trip, and asserts the check id and how long it
 * took.  Needs cryptsetup; skips without it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "image.h"
#include "keys.h"
#include "policy.h"
#include "unlock.h"

static char tmpdir[] = "/tmp/sif-unlock-XXXXXX";
static bool have_images;

static int run(const char *cmd)
{
    int r = system(cmd);

    return r == 0 ? 0 : -1;
}

static void path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", tmpdir, name);
}

/* Patches LUKS1 key slot 0's PBKDF2 iteration count (byte 212). */
static int patch_luks1_iterations(const char *file, uint32_t iter)
{
    uint8_t be[4] = { (uint8_t)(iter >> 24), (uint8_t)(iter >> 16), (uint8_t)(iter >> 8), (uint8_t)iter };
    int fd = open(file, O_WRONLY);
    int ok = fd >= 0 && pwrite(fd, be, 4, 212) == 4;

    if (fd >= 0)
        close(fd);
    return ok ? 0 : -1;
}

static int setup_all(void **state)
{
    char cmd[1024], f[256];

    if (!mkdtemp(tmpdir))
        return -1;
    if (run("command -v cryptsetup >/dev/null 2>&1") != 0)
        return 0;
    snprintf(cmd, sizeof(cmd),
             "set -e; cd %s; printf pw > pw; chmod 600 pw; printf nope > bad; chmod 600 bad;"
             "truncate -s 24M a2.img; truncate -s 8M l1.img;"
             "cryptsetup luksFormat -q --type luks2 --key-file pw --pbkdf argon2id --pbkdf-memory 65536"
             " --pbkdf-force-iterations 4 --pbkdf-parallel 1 a2.img;"
             "cryptsetup luksFormat -q --type luks1 --key-file pw --pbkdf-force-iterations 1000 l1.img;"
             "cp l1.img slow.img",
             tmpdir);
    if (run(cmd) != 0)
        return -1;
    /* qemu's defaults: LUKS1, aes-xts-plain64, PBKDF2 calibrated to 2 s.
     * qemu's calibration can fail on VMs ("Unable to get accurate CPU
     * usage"): retry a few times. */
    snprintf(cmd, sizeof(cmd),
             "cd %s; command -v qemu-img >/dev/null || exit 0; for i in 1 2 3 4 5; do"
             " qemu-img create -q -f luks --object secret,id=s,file=pw -o key-secret=s qemu.img 4M"
             " 2>/dev/null && exit 0; done; exit 1",
             tmpdir);
    if (run(cmd) != 0)
        return -1;
    path(f, sizeof(f), "slow.img");
    /* Within the default cap (10M) but far more than one second of work. */
    if (patch_luks1_iterations(f, 9000000) != 0)
        return -1;
    have_images = true;
    return 0;
}

static int teardown_all(void **state)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    run(cmd);
    sif_unlock_shutdown();
    return 0;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Inspects tmpdir/image with key file tmpdir/key under policy p; returns the
 * verdict and the seconds it took. */
static struct sif_verdict inspect(const char *image, const char *key, const struct sif_policy *p, double *secs)
{
    struct sif_keysrc ks;
    struct sif_inspect_env env = { p, &ks };
    struct sif_image *img = NULL;
    struct sif_verdict v;
    char kf[256], f[256], err[160];
    double t0 = now_s();

    path(kf, sizeof(kf), key);
    path(f, sizeof(f), image);
    assert_int_equal(sif_keysrc_open(&ks, SIF_KEYSRC_FILE, kf, err, sizeof(err)), 0);
    assert_int_equal(sif_image_open(AT_FDCWD, f, image, &img), 0);
    sif_image_inspect(img, &env);
    v = img->verdict;
    sif_image_free(img);
    sif_keysrc_close(&ks);
    if (secs)
        *secs = now_s() - t0;
    return v;
}

#define NEED_IMAGES()                                                          \
    do {                                                                       \
        if (!have_images)                                                      \
            skip();                                                            \
    } while (0)

static void test_defaults_accept(void **state)
{
    struct sif_policy p;
    struct sif_verdict v;

    NEED_IMAGES();
    sif_policy_default(&p);
    v = inspect("a2.img", "pw", &p, NULL);
    assert_int_equal(v.state, SIF_ACCEPTED);
    assert_string_equal(v.check, "inner.raw");
    v = inspect("l1.img", "pw", &p, NULL);
    assert_int_equal(v.state, SIF_ACCEPTED);
    assert_string_equal(v.outer, "luks1");
}

/* What qemu-img creates with its default settings is accepted. */
static void test_qemu_defaults_accept(void **state)
{
    struct sif_policy p;
    struct sif_verdict v;
    char f[256];

    NEED_IMAGES();
    path(f, sizeof(f), "qemu.img");
    if (access(f, F_OK) != 0)
        skip();
    sif_policy_default(&p);
    v = inspect("qemu.img", "pw", &p, NULL);
    assert_string_equal(v.check, "inner.raw");
    assert_string_equal(v.outer, "luks1");
    assert_string_equal(v.cipher, "aes-xts-plain64");
}

static void test_wrong_key(void **state)
{
    struct sif_policy p;
    struct sif_verdict v;

    NEED_IMAGES();
    sif_policy_default(&p);
    v = inspect("a2.img", "bad", &p, NULL);
    assert_int_equal(v.state, SIF_REJECTED);
    assert_string_equal(v.check, "key.wrong");
}

/* A key slot within the PBKDF caps but slower than the wall-clock limit is
 * killed at the limit. */
static void test_wall_clock_kill(void **state)
{
    struct sif_policy p;
    struct sif_verdict v;
    double secs;

    NEED_IMAGES();
    sif_policy_default(&p);
    p.unlock_timeout_s = 1;
    v = inspect("slow.img", "pw", &p, &secs);
    assert_int_equal(v.state, SIF_REJECTED);
    assert_string_equal(v.check, "unlock.timeout");
    assert_true(secs < 3.0);
}

/* RLIMIT_CPU kills the worker even when the wall clock would allow more. */
static void test_cpu_limit(void **state)
{
    struct sif_policy p;
    struct sif_verdict v;
    double secs;

    NEED_IMAGES();
    sif_policy_default(&p);
    p.unlock_cpu_s = 1;
    v = inspect("slow.img", "pw", &p, &secs);
    assert_int_equal(v.state, SIF_REJECTED);
    assert_string_equal(v.check, "unlock.limit");
    assert_true(secs < 5.0);
}

/* RLIMIT_AS below the Argon2 memory makes the key slot fail, not the
 * daemon.  (Skipped under AddressSanitizer, which cannot run with
 * RLIMIT_AS and so the sandbox does not set it there.) */
static void test_memory_limit(void **state)
{
    struct sif_policy p;
    struct sif_verdict v;

    NEED_IMAGES();
#if defined(__SANITIZE_ADDRESS__)
    skip();
#endif
    sif_policy_default(&p);
    p.unlock_mem_bytes = 48u << 20;
    v = inspect("a2.img", "pw", &p, NULL);
    assert_int_equal(v.state, SIF_REJECTED);
    assert_string_equal(v.check, "unlock.limit");
}

/* The PBKDF caps reject before any KDF runs: fast, and never key.wrong. */
static void test_pbkdf_cap_first(void **state)
{
    struct sif_policy p;
    struct sif_verdict v;
    double secs;

    NEED_IMAGES();
    sif_policy_default(&p);
    p.argon2_max_memory_kib = 32768;
    v = inspect("a2.img", "bad", &p, &secs);
    assert_string_equal(v.check, "luks.pbkdf");
    sif_policy_default(&p);
    p.pbkdf2_max_iterations = 1000000;
    v = inspect("slow.img", "pw", &p, &secs);
    assert_string_equal(v.check, "luks.pbkdf");
    assert_true(secs < 1.0);
}

/* The metadata copy handed to libcryptsetup cannot be changed. */
static void test_meta_memfd_sealed(void **state)
{
    static const uint8_t meta[4096] = { 1, 2, 3 };
    int fd = sif_unlock_make_meta(meta, sizeof(meta), 1 << 20);
    struct stat st;

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 1 << 20);
    assert_int_equal(write(fd, "x", 1), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(ftruncate(fd, 0), -1);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_memfd_sealed),
        cmocka_unit_test(test_defaults_accept),
        cmocka_unit_test(test_qemu_defaults_accept),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_wall_clock_kill),
        cmocka_unit_test(test_cpu_limit),
        cmocka_unit_test(test_memory_limit),
        cmocka_unit_test(test_pbkdf_cap_first),
    };

    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
