/* test_store.c: store candidates and listing, and a live store.
 *
 * sif_store_open() must list exactly the regular files with candidate
 * names, sorted, all pending; symbolic links (even to regular files),
 * directories, FIFOs and excluded names are never entries.  A started,
 * watched store follows additions, rewrites, removals, sidecars and
 * renames (with junk files: every verdict is outer.format, so no key is
 * involved).
 */
#include "config.h"

#include "unit.h"

#include <json-c/json.h>

#include "image.h"
#include "keys.h"
#include "policy.h"
#include "store.h"
#include "verdict.h"

static void test_candidate(void **state)
{
    static const char *const yes[] = {
        "disk.img", "a", "vm-01.raw", "disk.qcow2", "x.keys", "x.key.img", "x.part.img", "x.jsonl", "part",
        "tmp", "key", "-x", "disk img", "x.img~",
    };
    static const char *const no[] = {
        ".hidden", "x.part", "x.tmp", "x.json", "x.key", "", ".", "..", ".x.img", "disk.img.part",
        "disk.img.tmp", "disk.img.json", "disk.img.key", ".part", ".key",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!sif_store_candidate(yes[i]))
            fail_msg("\"%s\" should be a candidate", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (sif_store_candidate(no[i]))
            fail_msg("\"%s\" should not be a candidate", no[i]);
}

/* An inspection environment that is never used (no workers start). */
struct env {
    struct sif_policy policy;
    struct sif_keysrc keys;
    struct sif_inspect_env env;
};

static void env_init(struct env *e)
{
    char err[64];

    sif_policy_default(&e->policy);
    assert_int_equal(sif_keysrc_open(&e->keys, SIF_KEYSRC_NONE, NULL, err, sizeof(err)), 0);
    e->env.policy = &e->policy;
    e->env.keys = &e->keys;
}

static void touch(const char *dir, const char *name, size_t len)
{
    char path[PATH_MAX + 64];
    uint8_t buf[4096];

    assert_true(len <= sizeof(buf));
    memset(buf, 0, len);
    unit_path(path, sizeof(path), dir, name);
    unit_write_file(path, buf, len, 0644);
}

static void test_listing(void **state)
{
    static const char *const want[] = { "-dash", "alpha.raw", "disk.img", "empty", "zeta" };
    static const char *const not_listed[] = {
        ".hidden", "x.part", "x.tmp", "x.json", "x.key", "link.img", "dangling.img", "sub", "sub.img", "fifo.img",
        "disk.img.json", "disk.img.key", "nosuch",
    };
    const char *dir = *state;
    char path[PATH_MAX + 64], target[PATH_MAX + 64];
    struct sif_store *s = NULL;
    struct env e;

    /* candidates: regular files (even an empty one) */
    touch(dir, "disk.img", 4096);
    touch(dir, "zeta", 512);
    touch(dir, "alpha.raw", 1024);
    touch(dir, "empty", 0);
    touch(dir, "-dash", 1);
    /* never entries */
    touch(dir, ".hidden", 4096);
    touch(dir, "x.part", 4096);
    touch(dir, "x.tmp", 4096);
    touch(dir, "x.json", 16);
    touch(dir, "x.key", 16);
    touch(dir, "disk.img.json", 16);
    touch(dir, "disk.img.key", 16);
    unit_path(target, sizeof(target), dir, "disk.img");
    unit_path(path, sizeof(path), dir, "link.img");
    assert_int_equal(symlink(target, path), 0);
    unit_path(path, sizeof(path), dir, "dangling.img");
    assert_int_equal(symlink("nowhere", path), 0);
    unit_path(path, sizeof(path), dir, "sub");
    assert_int_equal(mkdir(path, 0755), 0);
    unit_path(path, sizeof(path), dir, "sub.img");
    assert_int_equal(mkdir(path, 0755), 0);
    touch(path, "inner.img", 4096);     /* not in the store: one level only */
    unit_path(path, sizeof(path), dir, "fifo.img");
    assert_int_equal(mkfifo(path, 0644), 0);

    env_init(&e);
    assert_int_equal(sif_store_open(dir, &e.env, &s), 0);
    assert_non_null(s);
    assert_int_equal(sif_store_count(s), sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        struct sif_entry *en = sif_store_entry(s, i), *f;

        assert_non_null(en);
        assert_string_equal(en->name, want[i]);
        assert_int_equal(en->verdict.state, SIF_PENDING);
        assert_string_equal(en->verdict.check, "");
        assert_int_equal(en->generation, 1);
        assert_true(en->ino >= SIF_STORE_INO_FIRST);
        assert_null(en->img);
        assert_int_equal(sif_store_state(s, en), SIF_PENDING);
        f = sif_store_find(s, want[i], false);
        assert_ptr_equal(f, en);
        sif_entry_put(f);
        f = sif_store_get(s, en->ino);
        assert_ptr_equal(f, en);
        sif_entry_put(f);
        sif_entry_put(en);
    }
    assert_null(sif_store_get(s, 0));
    assert_null(sif_store_get(s, SIF_STORE_INO_FIRST + 1000));
    assert_null(sif_store_entry(s, sizeof(want) / sizeof(want[0])));
    assert_null(sif_store_entry(s, (size_t)-1));
    for (size_t i = 0; i < sizeof(not_listed) / sizeof(not_listed[0]); i++)
        if (sif_store_find(s, not_listed[i], false))
            fail_msg("\"%s\" is listed", not_listed[i]);
    assert_null(sif_store_find(s, "", false));
    sif_store_free(s);
    sif_keysrc_close(&e.keys);
}

/* status.json before any inspection: everything pending. */
static void test_status_pending(void **state)
{
    const char *dir = *state;
    struct sif_store *s = NULL;
    struct json_object *root, *m, *arr;
    struct env e;
    size_t len = 0;
    char *js;

    touch(dir, "b.img", 512);
    touch(dir, "a.img", 512);
    env_init(&e);
    assert_int_equal(sif_store_open(dir, &e.env, &s), 0);
    js = sif_store_status_json(s, &len);
    assert_non_null(js);
    assert_int_equal(len, strlen(js));
    root = json_tokener_parse(js);
    assert_non_null(root);
    assert_true(json_object_object_get_ex(root, "pending", &m));
    assert_int_equal(json_object_get_int64(m), 2);
    assert_true(json_object_object_get_ex(root, "accepted", &m));
    assert_int_equal(json_object_get_int64(m), 0);
    assert_true(json_object_object_get_ex(root, "rejected", &m));
    assert_int_equal(json_object_get_int64(m), 0);
    assert_true(json_object_object_get_ex(root, "images", &arr));
    assert_int_equal(json_object_array_length(arr), 2);
    assert_true(json_object_object_get_ex(json_object_array_get_idx(arr, 0), "name", &m));
    assert_string_equal(json_object_get_string(m), "a.img");
    assert_true(json_object_object_get_ex(json_object_array_get_idx(arr, 0), "state", &m));
    assert_string_equal(json_object_get_string(m), "pending");
    json_object_put(root);
    free(js);
    sif_store_free(s);
    sif_keysrc_close(&e.keys);
}

static void test_empty_store(void **state)
{
    const char *dir = *state;
    struct sif_store *s = NULL;
    struct env e;

    /* only excluded things */
    touch(dir, ".x", 1);
    touch(dir, "a.json", 1);
    env_init(&e);
    assert_int_equal(sif_store_open(dir, &e.env, &s), 0);
    assert_non_null(s);
    assert_int_equal(sif_store_count(s), 0);
    assert_null(sif_store_entry(s, 0));
    assert_null(sif_store_find(s, "a.json", false));
    assert_null(sif_store_find(s, "a.json", true));  /* never blocks on a missing name */
    sif_store_wait_all(s);                              /* nothing pending: returns */
    sif_store_free(s);
    sif_keysrc_close(&e.keys);
}

static void test_open_errors(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX + 64];
    struct sif_store *s = (struct sif_store *)&s;
    struct env e;

    env_init(&e);
    unit_path(path, sizeof(path), dir, "nosuch");
    assert_int_equal(sif_store_open(path, &e.env, &s), -ENOENT);
    assert_null(s);
    touch(dir, "file", 1);
    unit_path(path, sizeof(path), dir, "file");
    s = (struct sif_store *)&s;
    assert_int_equal(sif_store_open(path, &e.env, &s), -ENOTDIR);
    assert_null(s);
    sif_store_free(NULL);
    sif_keysrc_close(&e.keys);
}

#define T(f) cmocka_unit_test_setup_teardown(f, unit_tmpdir_setup, unit_tmpdir_teardown)

/* The entry for name once decided, within 10 s (a reference), or NULL. */
static struct sif_entry *decided(struct sif_store *s, const char *name, uint32_t min_gen)
{
    for (int i = 0; i < 1000; i++) {
        struct sif_entry *e = sif_store_find(s, name, false);

        if (e && e->generation >= min_gen && sif_store_state(s, e) != SIF_PENDING)
            return e;
        sif_entry_put(e);
        usleep(10000);
    }
    return NULL;
}

static bool gone(struct sif_store *s, const char *name)
{
    for (int i = 0; i < 1000; i++) {
        struct sif_entry *e = sif_store_find(s, name, false);

        if (!e)
            return true;
        sif_entry_put(e);
        usleep(10000);
    }
    return false;
}

static void test_live_store(void **state)
{
    const char *dir = *state;
    char from[PATH_MAX + 64], to[PATH_MAX + 64];
    struct sif_store *s = NULL;
    struct sif_entry *e, *old;
    struct json_object *doc;
    size_t len;
    char *js;
    struct env en;

    touch(dir, "a.img", 4096);
    env_init(&en);
    assert_int_equal(sif_store_open(dir, &en.env, &s), 0);
    assert_int_equal(sif_store_start(s, 1, true), 0);
    sif_store_wait_all(s);
    old = decided(s, "a.img", 1);
    assert_non_null(old);
    assert_int_equal(old->generation, 1);
    assert_string_equal(old->verdict.check, "outer.format");

    /* added */
    touch(dir, "b.img", 512);
    e = decided(s, "b.img", 1);
    assert_non_null(e);
    assert_int_equal(e->generation, 1);
    assert_true(e->ino > old->ino);
    sif_entry_put(e);

    /* rewritten: the old entry is retired (stale), a new generation */
    touch(dir, "a.img", 1024);
    e = decided(s, "a.img", 2);
    assert_non_null(e);
    assert_int_equal(e->generation, 2);
    assert_true(atomic_load(&old->stale));
    assert_true(e != old && e->ino != old->ino);
    assert_null(sif_store_get(s, old->ino));
    sif_entry_put(old);
    old = e;

    /* a sidecar appears: the image is judged again */
    touch(dir, "a.img.json", 16);
    e = decided(s, "a.img", 3);
    assert_non_null(e);
    assert_int_equal(e->generation, 3);
    assert_true(atomic_load(&old->stale));
    sif_entry_put(e);
    sif_entry_put(old);

    /* removed */
    unit_path(from, sizeof(from), dir, "b.img");
    assert_int_equal(unlink(from), 0);
    assert_true(gone(s, "b.img"));

    /* renamed in: a waiting lookup right after the rename finds it */
    touch(dir, "c.img.part", 2048);
    unit_path(from, sizeof(from), dir, "c.img.part");
    unit_path(to, sizeof(to), dir, "c.img");
    assert_null(sif_store_find(s, "c.img.part", true));
    assert_int_equal(rename(from, to), 0);
    e = sif_store_find(s, "c.img", true);
    assert_non_null(e);
    assert_int_not_equal(sif_store_state(s, e), SIF_PENDING);
    assert_int_equal(e->st.st_size, 2048);
    sif_entry_put(e);
    assert_null(sif_store_find(s, "c.img.part", true));
    assert_null(sif_store_find(s, "nosuch.img", true));

    sif_store_wait_all(s);
    js = sif_store_status_json(s, &len);
    assert_non_null(js);
    doc = json_tokener_parse(js);
    assert_non_null(doc);
    {
        struct json_object *m;

        assert_true(json_object_object_get_ex(doc, "changes", &m));
        assert_true(json_object_get_int64(m) >= 5);
        assert_true(json_object_object_get_ex(doc, "inspections", &m));
        assert_true(json_object_get_int64(m) >= 5);
        assert_true(json_object_object_get_ex(doc, "watching", &m));
        assert_true(json_object_get_boolean(m));
        assert_true(json_object_object_get_ex(doc, "images", &m));
        assert_int_equal(json_object_array_length(m), 2);   /* a.img, c.img */
    }
    json_object_put(doc);
    free(js);
    sif_store_free(s);
    sif_keysrc_close(&en.keys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_candidate),
        T(test_listing),
        T(test_status_pending),
        T(test_empty_store),
        T(test_open_errors),
        T(test_live_store),
    };

    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
