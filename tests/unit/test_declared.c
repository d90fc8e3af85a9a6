/* test_declared.c: sidecar parsing and the agreement rules. */
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
#include <unistd.h>

#include <cmocka.h>

#include "declared.h"

static int parse(const char *json, struct sif_declared *d, struct sif_verdict *v)
{
    sif_verdict_init(v);
    return sif_declared_parse(json, strlen(json), d, v);
}

static void test_top_level_and_nested(void **state)
{
    struct sif_declared d;
    struct sif_verdict v;

    assert_int_equal(parse("{\"disk_format\":\"luks\",\"os_encrypt_format\":\"LUKSv2\",\"os_decrypt_size\":4096}", &d, &v), 0);
    assert_true(d.present);
    assert_string_equal(d.disk_format, "luks");
    assert_string_equal(d.encrypt_format, "LUKSv2");
    assert_true(d.has_decrypt_size);
    assert_int_equal(d.decrypt_size, 4096);
    /* Glance keeps properties as strings, under "properties" */
    assert_int_equal(parse("{\"disk_format\":\"qcow2\",\"properties\":{\"os_decrypt_size\":\"1048576\","
                           "\"os_encrypt_key_id\":\"5e1a\"}}", &d, &v), 0);
    assert_string_equal(d.disk_format, "qcow2");
    assert_int_equal(d.decrypt_size, 1048576);
    assert_string_equal(d.key_id, "5e1a");
    /* the same value in both places is fine */
    assert_int_equal(parse("{\"disk_format\":\"luks\",\"properties\":{\"disk_format\":\"luks\"}}", &d, &v), 0);
    assert_string_equal(d.disk_format, "luks");
    assert_int_equal(parse("{}", &d, &v), 0);
    assert_true(d.present);
    assert_false(d.has_decrypt_size);
    assert_string_equal(d.disk_format, "");
}

static void test_malformed(void **state)
{
    static const char *bad[] = {
        "", "[]", "{\"disk_format\":1}", "{\"disk_format\":\"luks\"", "{} {}", "{\"properties\":[]}",
        "{\"os_decrypt_size\":-1}", "{\"os_decrypt_size\":\"12x\"}", "{\"os_decrypt_size\":\"-5\"}",
        "{\"os_decrypt_size\":true}", "{\"disk_format\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
        "{\"a\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}",
        "{\"disk_format\":\"luks\",\"properties\":{\"disk_format\":\"qcow2\"}}",
        "{\"os_decrypt_size\":\"1\",\"properties\":{\"os_decrypt_size\":\"2\"}}",
    };
    struct sif_declared d;
    struct sif_verdict v;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i], &d, &v), -EINVAL);
        assert_string_equal(v.check, "declared.invalid");
    }
}

static void test_agreement(void **state)
{
    struct sif_declared d;
    struct sif_verdict v;

    assert_int_equal(parse("{\"disk_format\":\"luks\",\"os_encrypt_format\":\"LUKSv1\",\"os_decrypt_size\":\"8192\"}", &d, &v), 0);
    sif_verdict_init(&v);
    assert_int_equal(sif_declared_check_format(&d, "luks1", &v), 0);
    assert_int_equal(sif_declared_check_size(&d, "luks1", 8192, &v), 0);
    assert_int_equal(sif_declared_check_format(&d, "luks2", &v), -EPERM);
    assert_string_equal(v.check, "declared.mismatch");
    sif_verdict_init(&v);
    assert_int_equal(sif_declared_check_format(&d, "qcow2+luks", &v), -EPERM);
    assert_string_equal(v.check, "declared.mismatch");
    sif_verdict_init(&v);
    assert_int_equal(sif_declared_check_size(&d, "luks1", 8704, &v), -EPERM);
    assert_string_equal(v.check, "declared.mismatch");
    /* for qcow2 the size describes the decrypted qcow2 file: not checked */
    assert_int_equal(parse("{\"disk_format\":\"qcow2\",\"os_decrypt_size\":\"1\"}", &d, &v), 0);
    sif_verdict_init(&v);
    assert_int_equal(sif_declared_check_format(&d, "qcow2+luks", &v), 0);
    assert_int_equal(sif_declared_check_size(&d, "qcow2+luks", 1 << 20, &v), 0);
    /* os_encrypt_format is compared without regard to case */
    assert_int_equal(parse("{\"os_encrypt_format\":\"luksv2\"}", &d, &v), 0);
    sif_verdict_init(&v);
    assert_int_equal(sif_declared_check_format(&d, "luks2", &v), 0);
    /* no sidecar: the bytes alone decide */
    memset(&d, 0, sizeof(d));
    assert_int_equal(sif_declared_check_format(&d, "luks2", &v), 0);
    assert_int_equal(sif_declared_check_size(&d, "luks2", 1, &v), 0);
}

static void test_load(void **state)
{
    char dir[] = "/tmp/sif-declared-XXXXXX", path[256], cmd[320];
    struct sif_declared d;
    struct sif_verdict v;
    int dfd, fd;

    assert_non_null(mkdtemp(dir));
    dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    sif_verdict_init(&v);
    assert_int_equal(sif_declared_load(dfd, "none.img", &d, &v), 0);
    assert_false(d.present);
    snprintf(path, sizeof(path), "%s/a.img.json", dir);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_int_equal(write(fd, "{\"disk_format\":\"luks\"}", 22), 22);
    close(fd);
    assert_int_equal(sif_declared_load(dfd, "a.img", &d, &v), 0);
    assert_true(d.present);
    assert_string_equal(d.disk_format, "luks");
    /* a symlinked or non-regular sidecar is refused */
    snprintf(path, sizeof(path), "%s/b.img.json", dir);
    assert_int_equal(symlink("a.img.json", path), 0);
    sif_verdict_init(&v);
    assert_true(sif_declared_load(dfd, "b.img", &d, &v) < 0);
    assert_string_equal(v.check, "declared.invalid");
    snprintf(path, sizeof(path), "%s/c.img.json", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    sif_verdict_init(&v);
    assert_true(sif_declared_load(dfd, "c.img", &d, &v) < 0);
    assert_string_equal(v.check, "declared.invalid");
    snprintf(path, sizeof(path), "%s/d.img.json", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    sif_verdict_init(&v);
    assert_true(sif_declared_load(dfd, "d.img", &d, &v) < 0);
    assert_string_equal(v.check, "declared.invalid");
    close(dfd);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_level_and_nested),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_agreement),
        cmocka_unit_test(test_load),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
