/* test_policy.c: the policy file (safeimgfs.conf(5)) and its enforcement.
 *
 * sif_policy_parse() is pure, so most cases are strings: a valid file must
 * give exactly the expected struct, and every invalid one must fail with
 * -EINVAL, leave the policy alone and say where ("NAME:LINE:COL:" for
 * syntax, "NAME: key.path:" for the schema).  sif_policy_load() gets real
 * files, a directory and a FIFO in a temporary directory.  The last tests
 * run sif_luks_check() on in-memory headers (unit.h) under a narrowed
 * policy.
 */
#include "config.h"

#include "unit.h"

#include <signal.h>

#include "luks.h"
#include "policy.h"
#include "verdict.h"

#define NAME "t.json"

/* ------------------------------------------------------------ helpers */

/* Parses text; fails the test with the message when it does not parse. */
static void parse_ok(const char *text, struct sif_policy *p)
{
    char err[512] = "x";
    int r = sif_policy_parse(p, text, strlen(text), NAME, err, sizeof(err));

    if (r)
        fail_msg("parse failed (%d): %s\n--- input:\n%s", r, err, text);
    assert_string_equal(err, "");
}

/* The text is refused with -EINVAL, the policy is untouched, and the
 * message starts with `prefix` and contains `what`. */
static void parse_bad(const char *text, size_t len, const char *prefix, const char *what)
{
    struct sif_policy p, before;
    char err[512];
    int r;

    memset(&p, 0x5a, sizeof(p));
    before = p;
    err[0] = 0;
    r = sif_policy_parse(&p, text, len, NAME, err, sizeof(err));
    if (r != -EINVAL)
        fail_msg("expected -EINVAL, got %d (%s)\n--- input:\n%.*s", r, err, (int)len, text);
    assert_memory_equal(&p, &before, sizeof(p));
    if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, what))
        fail_msg("message \"%s\" does not start with \"%s\" and contain \"%s\"\n--- input:\n%.*s", err, prefix, what,
                 (int)len, text);
}

static void bad(const char *text, const char *prefix, const char *what)
{
    parse_bad(text, strlen(text), prefix, what);
}

/* A schema error: "t.json: PATH: ...WHAT..." */
static void bad_key(const char *text, const char *path, const char *what)
{
    char prefix[256];

    unit_fmt(prefix, sizeof(prefix), NAME ": %s: ", path);
    bad(text, prefix, what);
}

/* Round trip: to_json and back gives the same policy. */
static void round_trip(const struct sif_policy *p)
{
    struct sif_policy q;
    char *s = NULL;

    assert_int_equal(sif_policy_to_json(p, &s), 0);
    assert_non_null(s);
    assert_true(strlen(s) > 0 && s[strlen(s) - 1] == '\n');
    parse_ok(s, &q);
    if (!sif_policy_equal(p, &q))
        fail_msg("round trip changed the policy:\n%s", s);
    free(s);
}

static char *source_path(const char *rel)
{
    const char *top = getenv("top_srcdir");
    char *path = malloc(PATH_MAX);

    assert_non_null(path);
    unit_fmt(path, PATH_MAX, "%s/%s", top && *top ? top : "..", rel);
    return path;
}

/* ------------------------------------------------------------ defaults */

static void test_defaults(void **state)
{
    struct sif_policy p;

    (void)state;
    sif_policy_default(&p);
    assert_int_equal(p.pbkdf2_max_iterations, 10000000);
    assert_int_equal(p.digest_max_iterations, 10000000);
    assert_int_equal(p.argon2_max_memory_kib, 1048576);
    assert_int_equal(p.argon2_max_time, 1000);
    assert_int_equal(p.argon2_max_parallel, 4);
    assert_int_equal(p.argon2_max_cost, 16777216);
    assert_int_equal(p.unlock_timeout_s, 60);
    assert_int_equal(p.unlock_cpu_s, 240);
    assert_int_equal(p.unlock_mem_bytes, 1610612736);
    assert_int_equal(p.outer_allowed, SIF_OUTER_LUKS1 | SIF_OUTER_LUKS2 | SIF_OUTER_QCOW2_LUKS);
    /* Exactly what src/sector.c implements. */
    assert_int_equal(p.cipher_key_bits[SIF_POLICY_AES_XTS_PLAIN64], SIF_POLICY_KEY_BIT(256) | SIF_POLICY_KEY_BIT(512));
    assert_int_equal(p.cipher_key_bits[SIF_POLICY_AES_CBC_ESSIV_SHA256],
                     SIF_POLICY_KEY_BIT(128) | SIF_POLICY_KEY_BIT(192) | SIF_POLICY_KEY_BIT(256));
    assert_int_equal(p.sector_sizes, 0xf);
    assert_int_equal(p.key_command_timeout_s, 30);
    assert_int_equal(p.inner_layouts, SIF_LAYOUT_MBR | SIF_LAYOUT_GPT | SIF_LAYOUT_ISO | SIF_LAYOUT_UDF);
    assert_true(p.iso_hybrid);
    assert_int_equal(p.max_virtual_size, 64ULL << 40);
    assert_int_equal(p.unencrypted, SIF_UNENCRYPTED_HIDE);

    assert_true(sif_policy_cipher_allowed(&p, "aes", "xts-plain64", 32));
    assert_true(sif_policy_cipher_allowed(&p, "aes", "xts-plain64", 64));
    assert_false(sif_policy_cipher_allowed(&p, "aes", "xts-plain64", 48));
    assert_false(sif_policy_cipher_allowed(&p, "aes", "xts-plain64", 16));
    assert_true(sif_policy_cipher_allowed(&p, "aes", "cbc-essiv:sha256", 16));
    assert_true(sif_policy_cipher_allowed(&p, "aes", "cbc-essiv:sha256", 24));
    assert_true(sif_policy_cipher_allowed(&p, "aes", "cbc-essiv:sha256", 32));
    assert_false(sif_policy_cipher_allowed(&p, "aes", "cbc-plain", 32));
    assert_false(sif_policy_cipher_allowed(&p, "serpent", "xts-plain64", 64));
    assert_false(sif_policy_cipher_allowed(&p, "aes", "xts-plain64", 0));
    assert_false(sif_policy_cipher_allowed(&p, "aes", "xts-plain64", 4096));
    for (uint32_t s = 256; s <= 8192; s *= 2)
        assert_int_equal(sif_policy_sector_size_allowed(&p, s), s >= 512 && s <= 4096);
    assert_false(sif_policy_sector_size_allowed(&p, 0));
    assert_false(sif_policy_sector_size_allowed(&p, 1536));
    assert_true(sif_policy_outer_allowed(&p, "luks1"));
    assert_true(sif_policy_outer_allowed(&p, "luks2"));
    assert_true(sif_policy_outer_allowed(&p, "qcow2+luks"));
    assert_true(sif_policy_outer_allowed(&p, "qcow2-luks"));
    assert_false(sif_policy_outer_allowed(&p, "qcow2"));
    assert_false(sif_policy_outer_allowed(&p, "raw"));
    for (int i = 0; i < 4; i++)
        assert_true(sif_policy_layout_allowed(&p, (const char *[]){ "mbr", "gpt", "iso", "udf" }[i]));
    assert_false(sif_policy_layout_allowed(&p, "vmdk"));
    assert_false(sif_policy_layout_allowed(&p, ""));
}

/* An empty object is the defaults; so is examples/policy-default.json. */
static void test_empty_object_and_example_default(void **state)
{
    struct sif_policy def, p;
    char err[512];
    char *path = source_path("examples/policy-default.json");

    (void)state;
    sif_policy_default(&def);
    parse_ok("{}", &p);
    assert_true(sif_policy_equal(&p, &def));
    parse_ok("  // nothing\n{ /* at all */ }\n", &p);
    assert_true(sif_policy_equal(&p, &def));
    memset(&p, 0, sizeof(p));
    if (sif_policy_load(&p, path, err, sizeof(err)))
        fail_msg("%s", err);
    assert_true(sif_policy_equal(&p, &def));
    free(path);
}

static void test_example_strict(void **state)
{
    struct sif_policy p;
    char err[512];
    char *path = source_path("examples/policy-strict.json");

    (void)state;
    if (sif_policy_load(&p, path, err, sizeof(err)))
        fail_msg("%s", err);
    assert_int_equal(p.outer_allowed, SIF_OUTER_LUKS1);
    assert_int_equal(p.cipher_key_bits[SIF_POLICY_AES_XTS_PLAIN64], SIF_POLICY_KEY_BIT(256));
    assert_int_equal(p.cipher_key_bits[SIF_POLICY_AES_CBC_ESSIV_SHA256], 0);
    assert_true(sif_policy_cipher_allowed(&p, "aes", "xts-plain64", 32));
    assert_false(sif_policy_cipher_allowed(&p, "aes", "xts-plain64", 64));
    assert_false(sif_policy_outer_allowed(&p, "qcow2+luks"));
    assert_false(sif_policy_layout_allowed(&p, "iso"));
    assert_false(p.iso_hybrid);
    round_trip(&p);
    free(path);
}

/* ------------------------------------------------------------ valid files */

static const char full_policy[] =
    "{\n"
    "  \"outer_formats\": [\"qcow2-luks\", \"luks2\"],\n"
    "  \"ciphers\": { \"aes-cbc-essiv:sha256\": [192] },\n"
    "  \"sector_sizes\": [4096, 512],\n"
    "  \"pbkdf\": { \"pbkdf2_max_iterations\": 2000000, \"digest_max_iterations\": 3000,\n"
    "             \"argon2_max_memory_kib\": 65536, \"argon2_max_time\": 8, \"argon2_max_parallel\": 2,\n"
    "             \"argon2_max_cost\": 524288 },\n"
    "  \"unlock\": { \"timeout_s\": 10, \"cpu_s\": 15, \"memory_bytes\": 268435456 },\n"
    "  \"keys\": { \"command_timeout_s\": 2 },\n"
    "  \"inner\": { \"layouts\": [\"gpt\"], \"iso_hybrid\": false },\n"
    "  \"max_virtual_size\": 1099511627776,\n"
    "  \"unencrypted\": \"serve\"\n"
    "}\n";

static void test_full_file(void **state)
{
    struct sif_policy p;

    (void)state;
    parse_ok(full_policy, &p);
    assert_int_equal(p.outer_allowed, SIF_OUTER_LUKS2 | SIF_OUTER_QCOW2_LUKS);
    assert_int_equal(p.cipher_key_bits[SIF_POLICY_AES_XTS_PLAIN64], 0);
    assert_int_equal(p.cipher_key_bits[SIF_POLICY_AES_CBC_ESSIV_SHA256], SIF_POLICY_KEY_BIT(192));
    assert_int_equal(p.sector_sizes, 1u | 8u);
    assert_int_equal(p.pbkdf2_max_iterations, 2000000);
    assert_int_equal(p.digest_max_iterations, 3000);
    assert_int_equal(p.argon2_max_memory_kib, 65536);
    assert_int_equal(p.argon2_max_time, 8);
    assert_int_equal(p.argon2_max_parallel, 2);
    assert_int_equal(p.argon2_max_cost, 524288);
    assert_int_equal(p.unlock_timeout_s, 10);
    assert_int_equal(p.unlock_cpu_s, 15);
    assert_int_equal(p.unlock_mem_bytes, 268435456);
    assert_int_equal(p.key_command_timeout_s, 2);
    assert_int_equal(p.inner_layouts, SIF_LAYOUT_GPT);
    assert_false(p.iso_hybrid);
    assert_int_equal(p.max_virtual_size, 1ULL << 40);
    assert_int_equal(p.unencrypted, SIF_UNENCRYPTED_SERVE);

    assert_false(sif_policy_outer_allowed(&p, "luks1"));
    assert_true(sif_policy_outer_allowed(&p, "luks2"));
    assert_true(sif_policy_outer_allowed(&p, "qcow2+luks"));
    assert_false(sif_policy_cipher_allowed(&p, "aes", "xts-plain64", 64));
    assert_false(sif_policy_cipher_allowed(&p, "aes", "cbc-essiv:sha256", 32));
    assert_true(sif_policy_cipher_allowed(&p, "aes", "cbc-essiv:sha256", 24));
    assert_true(sif_policy_sector_size_allowed(&p, 512));
    assert_false(sif_policy_sector_size_allowed(&p, 1024));
    assert_true(sif_policy_sector_size_allowed(&p, 4096));
    assert_true(sif_policy_layout_allowed(&p, "gpt"));
    assert_false(sif_policy_layout_allowed(&p, "mbr"));
    round_trip(&p);
}

/* Keys left out keep their defaults, one object member at a time. */
static void test_partial(void **state)
{
    struct sif_policy p, def;

    (void)state;
    sif_policy_default(&def);
    parse_ok("{\"pbkdf\": {\"argon2_max_time\": 7}}", &p);
    def.argon2_max_time = 7;
    assert_true(sif_policy_equal(&p, &def));
    sif_policy_default(&def);
    parse_ok("{\"inner\": {\"iso_hybrid\": false}}", &p);
    def.iso_hybrid = false;
    assert_true(sif_policy_equal(&p, &def));
    parse_ok("{\"inner\": {\"layouts\": []}}", &p);
    assert_int_equal(p.inner_layouts, 0);
    assert_false(sif_policy_layout_allowed(&p, "mbr"));
    round_trip(&p);
}

/* unlock.cpu_s and memory_bytes follow the values they derive from when
 * left out, in whatever order the keys come; the -o unlock_timeout=
 * override still works after a file. */
static void test_unlock_derived(void **state)
{
    struct sif_policy p;

    (void)state;
    parse_ok("{\"unlock\": {\"timeout_s\": 100}}", &p);
    assert_int_equal(p.unlock_timeout_s, 100);
    assert_int_equal(p.unlock_cpu_s, 400);
    parse_ok("{\"unlock\": {\"timeout_s\": 100}, \"pbkdf\": {\"argon2_max_parallel\": 8}}", &p);
    assert_int_equal(p.unlock_cpu_s, 800);
    parse_ok("{\"pbkdf\": {\"argon2_max_parallel\": 1}}", &p);
    assert_int_equal(p.unlock_timeout_s, 60);
    assert_int_equal(p.unlock_cpu_s, 60);
    parse_ok("{\"unlock\": {\"timeout_s\": 100, \"cpu_s\": 7}}", &p);
    assert_int_equal(p.unlock_cpu_s, 7);
    parse_ok("{\"pbkdf\": {\"argon2_max_memory_kib\": 262144}}", &p);
    assert_int_equal(p.unlock_mem_bytes, (256ULL << 20) + (512ULL << 20));
    parse_ok("{\"unlock\": {\"memory_bytes\": 2147483648}, \"pbkdf\": {\"argon2_max_memory_kib\": 262144}}", &p);
    assert_int_equal(p.unlock_mem_bytes, 2147483648ULL);
    /* The floor: the Argon2 cap plus 64 MiB. */
    parse_ok("{\"unlock\": {\"memory_bytes\": 335544320}, \"pbkdf\": {\"argon2_max_memory_kib\": 262144}}", &p);
    bad_key("{\"unlock\": {\"memory_bytes\": 335544319}, \"pbkdf\": {\"argon2_max_memory_kib\": 262144}}",
            "unlock.memory_bytes", "335544320");
    bad_key("{\"unlock\": {\"memory_bytes\": 1073741824}}", "unlock.memory_bytes", "at least");

    parse_ok("{\"unlock\": {\"timeout_s\": 100, \"cpu_s\": 7}}", &p);
    sif_policy_set_unlock_timeout(&p, 30);
    assert_int_equal(p.unlock_timeout_s, 30);
    assert_int_equal(p.unlock_cpu_s, 120);
}

/* Comments of both kinds wherever whitespace may be; a comment opener
 * inside a string is not a comment. */
static void test_comments(void **state)
{
    struct sif_policy p;

    (void)state;
    parse_ok("/* head */ {/**/\"outer_formats\"/* a */:/* b */[/* c */\"luks1\" // d\n"
             ",\"luks2\"]// e\n"
             "/* multi\n   line */ , \"max_virtual_size\" : 1048576 } // tail without a newline",
             &p);
    assert_int_equal(p.outer_allowed, SIF_OUTER_LUKS1 | SIF_OUTER_LUKS2);
    assert_int_equal(p.max_virtual_size, 1048576);
    parse_ok("{\"unencrypted\": \"serve\"}\n/* a trailing comment */\n", &p);
    assert_int_equal(p.unencrypted, SIF_UNENCRYPTED_SERVE);
    /* A comment opener inside a string stays part of the string. */
    bad_key("{\"a//b\": 1}", "a//b", "unknown key");
    bad_key("{\"unencrypted\": \"/*serve*/\"}", "unencrypted", "/*serve*/");
}

/* ------------------------------------------------------------ syntax errors */

static void test_syntax_line(void **state)
{
    (void)state;
    /* The second comma sits on line 7, column 31. */
    bad("// policy\n"
        "{\n"
        "    /* outer formats\n"
        "       we serve */\n"
        "    \"outer_formats\": [\"luks1\"],\n"
        "    \"pbkdf\": {\n"
        "        \"argon2_max_time\": 10,,\n"
        "        \"argon2_max_parallel\": 2\n"
        "    }\n"
        "}\n",
        NAME ":7:31: ", "quoted object property name expected");
    /* A missing closing brace: the end of the file, after the last line. */
    bad("{\n  \"outer_formats\": [\"luks1\"]\n", NAME ":3:1: ", "unexpected end of file");
    bad("", NAME ":1:1: ", "unexpected end of file");
    bad("   \n  ", NAME ":2:3: ", "unexpected end of file");
    bad("{\n  /* never closed\n}\n", NAME ":2:3: ", "unterminated /* comment");
    bad("{\n 'outer_formats': []}", NAME ":2:2: ", "single quotes");
    bad("{}\n{}", NAME ":2:1: ", "");
    bad("{} x", NAME ":1:4: ", "");
    bad("{\"outer_formats\": [\"luks1\",]}", NAME ":1:", "");
    bad("{\"inner\": {\"iso_hybrid\": TRUE}}", NAME ":1:", "");
    bad("{\"max_virtual_size\": 0x100000}", NAME ":1:", "");
    bad("{\"max_virtual_size\": 01048576}", NAME ":1:", "");
    bad("{\"max_virtual_size\": +1048576}", NAME ":1:", "");
    bad("{\"outer_formats\" [\"luks1\"]}", NAME ":1:18: ", "");
    bad("{\"unencrypted\": \"hi\xff\"}", NAME ":1:", "");
    bad("{\"a\": [[[[[[[[[1]]]]]]]]]}", NAME ":1:", "nested deeper than 8");
    parse_bad("{\"unencrypted\": \"hide\"}\0", 24, NAME ":1:24: ", "NUL byte");
    parse_bad("{\n\"unencrypted\": \"h\0de\"}", 24, NAME ":2:18: ", "NUL byte");
    /* The top level must be an object. */
    bad("[]", NAME ":1:1: ", "must be a JSON object");
    bad("null", NAME ":1:1: ", "must be a JSON object");
    bad("\"hide\"", NAME ":1:1: ", "must be a JSON object");
    bad("/* c */\n  42", NAME ":2:3: ", "must be a JSON object");
}

/* Without a name, messages still say what they are about. */
static void test_no_name_no_err(void **state)
{
    struct sif_policy p;
    char err[128];

    (void)state;
    assert_int_equal(sif_policy_parse(&p, "{", 1, NULL, err, sizeof(err)), -EINVAL);
    assert_true(strncmp(err, "policy:1:2: ", 12) == 0);
    assert_int_equal(sif_policy_parse(&p, "{", 1, NAME, NULL, 0), -EINVAL);
    /* A short buffer is still terminated. */
    assert_int_equal(sif_policy_parse(&p, "{\"x\":1}", 7, NAME, err, 10), -EINVAL);
    assert_int_equal(strlen(err), 9);
}

/* ------------------------------------------------------------ schema errors */

static void test_unknown_keys(void **state)
{
    (void)state;
    bad_key("{\"outer_format\": [\"luks1\"]}", "outer_format", "unknown key (known: outer_formats, ciphers,");
    bad_key("{\"pbkdf\": {\"argon2_max_memory\": 1024}}", "pbkdf.argon2_max_memory", "unknown key");
    bad_key("{\"unlock\": {\"timeout\": 10}}", "unlock.timeout", "unknown key (known: timeout_s, cpu_s, memory_bytes)");
    bad_key("{\"keys\": {\"timeout_s\": 10}}", "keys.timeout_s", "unknown key (known: command_timeout_s)");
    bad_key("{\"inner\": {\"layout\": []}}", "inner.layout", "unknown key (known: layouts, iso_hybrid)");
    bad_key("{\"ciphers\": {\"aes-xts-plain\": [256]}}", "ciphers.aes-xts-plain", "not supported by safeimgfs");
    /* Unknown keys are reported even when their value is fine JSON of any
     * kind, and names are shown escaped. */
    bad_key("{\"x\\u0001y\": {}}", "x\\x01y", "unknown key");
    bad_key("{\"\": null}", "", "unknown key");
}

/* Each number: below, above, the bounds themselves, and other types. */
static void test_number_ranges(void **state)
{
    static const struct {
        const char *pre, *post; /* the text around the value */
        const char *path;
        const char *min, *max, *below, *above;
    } nums[] = {
        { "{\"pbkdf\": {\"pbkdf2_max_iterations\": ", "}}", "pbkdf.pbkdf2_max_iterations", "1000", "1000000000", "999",
          "1000000001" },
        { "{\"pbkdf\": {\"digest_max_iterations\": ", "}}", "pbkdf.digest_max_iterations", "1000", "1000000000", "0",
          "18446744073709551615" },
        { "{\"pbkdf\": {\"argon2_max_memory_kib\": ", "}}", "pbkdf.argon2_max_memory_kib", "32", "4194304", "31",
          "4194305" },
        { "{\"pbkdf\": {\"argon2_max_time\": ", "}}", "pbkdf.argon2_max_time", "1", "1000000", "0", "1000001" },
        { "{\"pbkdf\": {\"argon2_max_parallel\": ", "}}", "pbkdf.argon2_max_parallel", "1", "64", "0", "65" },
        { "{\"pbkdf\": {\"argon2_max_cost\": ", "}}", "pbkdf.argon2_max_cost", "1", "4294967296", "-1", "4294967297" },
        { "{\"unlock\": {\"timeout_s\": ", "}}", "unlock.timeout_s", "1", "3600", "0", "3601" },
        { "{\"unlock\": {\"cpu_s\": ", "}}", "unlock.cpu_s", "1", "230400", "0", "230401" },
        { "{\"unlock\": {\"memory_bytes\": ", "}, \"pbkdf\": {\"argon2_max_memory_kib\": 32}}", "unlock.memory_bytes",
          "67141632", "68719476736", "67108863", "68719476737" },
        { "{\"keys\": {\"command_timeout_s\": ", "}}", "keys.command_timeout_s", "1", "3600", "0", "4294967297" },
        { "{\"max_virtual_size\": ", "}", "max_virtual_size", "512", "1152921504606846976", "511",
          "99999999999999999999999" },
    };
    static const char *const wrong[] = { "\"10\"", "1.0", "1e3", "true", "null", "[1]", "{}", "-0.5" };
    char text[512];

    (void)state;
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        struct sif_policy p;

        unit_fmt(text, sizeof(text), "%s%s%s", nums[i].pre, nums[i].min, nums[i].post);
        parse_ok(text, &p);
        round_trip(&p);
        unit_fmt(text, sizeof(text), "%s%s%s", nums[i].pre, nums[i].max, nums[i].post);
        parse_ok(text, &p);
        round_trip(&p);
        unit_fmt(text, sizeof(text), "%s%s%s", nums[i].pre, nums[i].below, nums[i].post);
        bad_key(text, nums[i].path, "out of range");
        unit_fmt(text, sizeof(text), "%s%s%s", nums[i].pre, nums[i].above, nums[i].post);
        bad_key(text, nums[i].path, "out of range");
        for (size_t w = 0; w < sizeof(wrong) / sizeof(wrong[0]); w++) {
            unit_fmt(text, sizeof(text), "%s%s%s", nums[i].pre, wrong[w], nums[i].post);
            bad_key(text, nums[i].path, "must be an integer");
        }
    }
    /* The value in the message is the one in the file. */
    bad_key("{\"pbkdf\": {\"argon2_max_time\": 0}}", "pbkdf.argon2_max_time", "0 is out of range 1..1000000");
    bad_key("{\"max_virtual_size\": 9223372036854775808}", "max_virtual_size", "9223372036854775808 is out of range");
}

static void test_types(void **state)
{
    (void)state;
    bad_key("{\"outer_formats\": \"luks1\"}", "outer_formats", "must be an array");
    bad_key("{\"outer_formats\": [1]}", "outer_formats[0]", "must be a string, not an integer");
    bad_key("{\"ciphers\": [\"aes-xts-plain64\"]}", "ciphers", "must be an object");
    bad_key("{\"ciphers\": {\"aes-xts-plain64\": 256}}", "ciphers.aes-xts-plain64", "must be an array");
    bad_key("{\"ciphers\": {\"aes-xts-plain64\": [\"256\"]}}", "ciphers.aes-xts-plain64[0]", "must be a key size");
    bad_key("{\"ciphers\": {\"aes-xts-plain64\": [256.0]}}", "ciphers.aes-xts-plain64[0]", "must be a key size");
    bad_key("{\"sector_sizes\": 512}", "sector_sizes", "must be an array");
    bad_key("{\"sector_sizes\": [512, \"4096\"]}", "sector_sizes[1]", "must be a sector size");
    bad_key("{\"pbkdf\": []}", "pbkdf", "must be an object");
    bad_key("{\"unlock\": 60}", "unlock", "must be an object");
    bad_key("{\"keys\": null}", "keys", "must be an object");
    bad_key("{\"inner\": \"gpt\"}", "inner", "must be an object");
    bad_key("{\"inner\": {\"layouts\": \"gpt\"}}", "inner.layouts", "must be an array");
    bad_key("{\"inner\": {\"layouts\": [null]}}", "inner.layouts[0]", "not null");
    bad_key("{\"inner\": {\"iso_hybrid\": 1}}", "inner.iso_hybrid", "must be true or false");
    bad_key("{\"inner\": {\"iso_hybrid\": \"true\"}}", "inner.iso_hybrid", "must be true or false");
    bad_key("{\"unencrypted\": true}", "unencrypted", "must be \"hide\" or \"serve\"");
    bad_key("{\"unencrypted\": \"Hide\"}", "unencrypted", "unknown value \"Hide\"");
    bad_key("{\"unencrypted\": \"\"}", "unencrypted", "unknown value");
}

static void test_names(void **state)
{
    (void)state;
    bad_key("{\"outer_formats\": []}", "outer_formats", "at least one");
    bad_key("{\"outer_formats\": [\"luks1\", \"qcow2\"]}", "outer_formats[1]",
            "unknown outer format \"qcow2\" (known: luks1, luks2, qcow2-luks)");
    bad_key("{\"outer_formats\": [\"qcow2+luks\"]}", "outer_formats[0]", "unknown outer format");
    bad_key("{\"outer_formats\": [\"LUKS1\"]}", "outer_formats[0]", "unknown outer format");
    bad_key("{\"outer_formats\": [\"luks2\", \"luks1\", \"luks2\"]}", "outer_formats[2]", "\"luks2\" is listed twice");
    bad_key("{\"inner\": {\"layouts\": [\"gpt\", \"vmdk\"]}}", "inner.layouts[1]", "unknown layout \"vmdk\"");
    bad_key("{\"inner\": {\"layouts\": [\"iso\", \"iso\"]}}", "inner.layouts[1]", "listed twice");
    bad_key("{\"sector_sizes\": []}", "sector_sizes", "at least one");
    bad_key("{\"sector_sizes\": [512, 512]}", "sector_sizes[1]", "512 is listed twice");
    bad_key("{\"sector_sizes\": [8192]}", "sector_sizes[0]", "not supported by safeimgfs");
    bad_key("{\"sector_sizes\": [256]}", "sector_sizes[0]", "not supported by safeimgfs");
    bad_key("{\"sector_sizes\": [3072]}", "sector_sizes[0]", "not supported by safeimgfs");
    bad_key("{\"sector_sizes\": [0]}", "sector_sizes[0]", "out of range");
}

static void test_ciphers(void **state)
{
    struct sif_policy p;

    (void)state;
    bad_key("{\"ciphers\": {}}", "ciphers", "at least one cipher");
    bad_key("{\"ciphers\": {\"aes-xts-plain64\": []}}", "ciphers.aes-xts-plain64", "at least one key size");
    bad_key("{\"ciphers\": {\"serpent-xts-plain64\": [512]}}", "ciphers.serpent-xts-plain64",
            "cipher not supported by safeimgfs (supported: aes-xts-plain64, aes-cbc-essiv:sha256)");
    bad_key("{\"ciphers\": {\"aes-cbc-plain\": [256]}}", "ciphers.aes-cbc-plain", "not supported by safeimgfs");
    bad_key("{\"ciphers\": {\"cipher_null-ecb\": [0]}}", "ciphers.cipher_null-ecb", "not supported by safeimgfs");
    bad_key("{\"ciphers\": {\"aes-xts-plain64\": [384]}}", "ciphers.aes-xts-plain64[0]",
            "a 384-bit key is not supported by safeimgfs (supported: 256, 512)");
    bad_key("{\"ciphers\": {\"aes-xts-plain64\": [256, 128]}}", "ciphers.aes-xts-plain64[1]", "not supported");
    bad_key("{\"ciphers\": {\"aes-cbc-essiv:sha256\": [512]}}", "ciphers.aes-cbc-essiv:sha256[0]",
            "not supported by safeimgfs (supported: 128, 192, 256)");
    bad_key("{\"ciphers\": {\"aes-xts-plain64\": [100]}}", "ciphers.aes-xts-plain64[0]", "not supported");
    bad_key("{\"ciphers\": {\"aes-xts-plain64\": [4096]}}", "ciphers.aes-xts-plain64[0]", "not supported");
    bad_key("{\"ciphers\": {\"aes-xts-plain64\": [0]}}", "ciphers.aes-xts-plain64[0]", "out of range");
    bad_key("{\"ciphers\": {\"aes-xts-plain64\": [-256]}}", "ciphers.aes-xts-plain64[0]", "out of range");
    bad_key("{\"ciphers\": {\"aes-xts-plain64\": [512, 512]}}", "ciphers.aes-xts-plain64[1]", "listed twice");

    /* Narrowing: only what is listed stays allowed. */
    parse_ok("{\"ciphers\": {\"aes-xts-plain64\": [512]}}", &p);
    assert_true(sif_policy_cipher_allowed(&p, "aes", "xts-plain64", 64));
    assert_false(sif_policy_cipher_allowed(&p, "aes", "xts-plain64", 32));
    assert_false(sif_policy_cipher_allowed(&p, "aes", "cbc-essiv:sha256", 32));
    round_trip(&p);
}

/* A key given twice in one object is an error, wherever the object is,
 * even when both values are valid or spelled differently. */
static void test_duplicate_keys(void **state)
{
    struct sif_policy p;

    (void)state;
    bad("{\"unencrypted\": \"hide\",\n \"unencrypted\": \"serve\"}", NAME ":2:2: ", "key \"unencrypted\" given twice");
    bad("{\"pbkdf\": {\"argon2_max_time\": 3,\n   \"argon2_max_time\": 3}}", NAME ":2:4: ", "given twice");
    bad("{\"ciphers\": {\"aes-xts-plain64\": [256], \"aes-xts-plain64\": [512]}}", NAME ":1:", "given twice");
    bad("{\"inner\": {\"layouts\": []}, \"inner\": {\"layouts\": [\"gpt\"]}}", NAME ":1:", "given twice");
    /* \u0070 is p: the same key after decoding. */
    bad("{\"keys\": {},\n \"outer_formats\": [\"luks1\"],\n \"pbkdf\": {\"argon2_max_time\": 3,\n"
        "  \"argon2_max_\\u0074ime\": 4}}",
        NAME ":3:11: ", "this object gives a key twice");
    bad("{\"\\u006beys\": {}, \"keys\": {}}", NAME ":1:1: ", "this object gives a key twice");
    /* Equal keys in different objects are fine. */
    parse_ok("{\"unlock\": {\"timeout_s\": 5}, \"keys\": {\"command_timeout_s\": 5}}", &p);
}

/* ------------------------------------------------------------ round trip */

static void test_round_trip(void **state)
{
    struct sif_policy p;

    (void)state;
    sif_policy_default(&p);
    round_trip(&p);
    parse_ok(full_policy, &p);
    round_trip(&p);
    parse_ok("{\"outer_formats\": [\"luks1\"], \"unlock\": {\"timeout_s\": 3600, \"cpu_s\": 1}}", &p);
    round_trip(&p);
    /* The CLI override keeps the policy printable and re-readable. */
    sif_policy_set_unlock_timeout(&p, 1);
    round_trip(&p);
}

/* The output is the documented schema, every key present. */
static void test_to_json_shape(void **state)
{
    struct sif_policy p;
    char *s = NULL;

    (void)state;
    parse_ok(full_policy, &p);
    assert_int_equal(sif_policy_to_json(&p, &s), 0);
    for (const char *const *k = (const char *const[]){ "\"outer_formats\"", "\"qcow2-luks\"", "\"ciphers\"",
                                                        "\"aes-cbc-essiv:sha256\"", "\"sector_sizes\"", "\"pbkdf\"",
                                                        "\"argon2_max_cost\"", "\"unlock\"", "\"memory_bytes\"",
                                                        "\"keys\"", "\"command_timeout_s\"", "\"inner\"",
                                                        "\"iso_hybrid\"", "\"max_virtual_size\"", "\"serve\"",
                                                        "1099511627776", NULL };
         *k; k++)
        if (!strstr(s, *k))
            fail_msg("%s missing from:\n%s", *k, s);
    assert_null(strstr(s, "aes-xts-plain64"));
    free(s);
}

/* ------------------------------------------------------------ loading */

static void put(const char *path, const char *text)
{
    unit_write_file(path, text, strlen(text), 0644);
}

static void on_alarm(int sig)
{
    (void)sig;
    /* A blocked open() of the FIFO would never return. */
    fail_msg("sif_policy_load() blocked");
}

static void test_load(void **state)
{
    const char *dir = *state;
    struct sif_policy p, before;
    char path[PATH_MAX + 64], err[PATH_MAX + 256];
    char *big;
    int r;

    unit_path(path, sizeof(path), dir, "ok.json");
    put(path, "{\"outer_formats\": [\"luks2\"]}\n");
    assert_int_equal(sif_policy_load(&p, path, err, sizeof(err)), 0);
    assert_int_equal(p.outer_allowed, SIF_OUTER_LUKS2);

    memset(&p, 0x33, sizeof(p));
    before = p;
    /* Errors name the path. */
    unit_path(path, sizeof(path), dir, "syntax.json");
    put(path, "{\n\n  \"outer_formats\": [\"luks2\"\n}\n");
    assert_int_equal(sif_policy_load(&p, path, err, sizeof(err)), -EINVAL);
    assert_true(strncmp(err, path, strlen(path)) == 0);
    assert_true(strncmp(err + strlen(path), ":4:1: ", 6) == 0);
    unit_path(path, sizeof(path), dir, "schema.json");
    put(path, "{\"outer_formats\": []}");
    assert_int_equal(sif_policy_load(&p, path, err, sizeof(err)), -EINVAL);
    assert_true(strncmp(err, path, strlen(path)) == 0);
    assert_non_null(strstr(err, ": outer_formats: must list at least one"));

    /* Missing. */
    unit_path(path, sizeof(path), dir, "missing.json");
    assert_int_equal(sif_policy_load(&p, path, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, path));

    /* A directory. */
    assert_int_equal(sif_policy_load(&p, dir, err, sizeof(err)), -EISDIR);
    assert_non_null(strstr(err, "not a regular file"));

    /* A FIFO with no writer: refused at once, never read. */
    unit_path(path, sizeof(path), dir, "fifo.json");
    assert_int_equal(mkfifo(path, 0600), 0);
    signal(SIGALRM, on_alarm);
    alarm(10);
    r = sif_policy_load(&p, path, err, sizeof(err));
    alarm(0);
    assert_int_equal(r, -EINVAL);
    assert_non_null(strstr(err, "not a regular file"));

    /* A device. */
    r = sif_policy_load(&p, "/dev/null", err, sizeof(err));
    assert_int_equal(r, -EINVAL);

    /* One byte over the cap, even though it is otherwise valid; at the cap
     * it loads. */
    big = malloc(SIF_POLICY_FILE_MAX + 1);
    assert_non_null(big);
    memset(big, ' ', SIF_POLICY_FILE_MAX + 1);
    big[0] = '{';
    big[SIF_POLICY_FILE_MAX - 1] = '}';
    unit_path(path, sizeof(path), dir, "big.json");
    unit_write_file(path, big, SIF_POLICY_FILE_MAX + 1, 0644);
    assert_int_equal(sif_policy_load(&p, path, err, sizeof(err)), -EFBIG);
    assert_non_null(strstr(err, "larger than 1048576 bytes"));
    assert_int_equal(sif_policy_parse(&p, big, SIF_POLICY_FILE_MAX + 1, NAME, err, sizeof(err)), -EINVAL);
    assert_memory_equal(&p, &before, sizeof(p));
    unit_write_file(path, big, SIF_POLICY_FILE_MAX, 0644);
    assert_int_equal(sif_policy_load(&p, path, err, sizeof(err)), 0);
    free(big);
}

/* ------------------------------------------------------------ enforcement */

/* LUKS1: payload at 4096 sectors (2 MiB), plus 1 MiB of data. */
#define L1_FILE_SIZE (3u << 20)

static void luks1_info(const struct unit_luks1 *h, struct sif_luks_info *info)
{
    uint8_t *buf = calloc(1, L1_FILE_SIZE);
    struct sif_verdict v;

    assert_non_null(buf);
    unit_luks1_write(h, buf);
    sif_verdict_init(&v);
    if (sif_luks_parse(buf, L1_FILE_SIZE, L1_FILE_SIZE, info, &v))
        fail_msg("parse failed: [%s] %s", v.check, v.reason);
    free(buf);
}

/* The parser sees the first SIF_LUKS_PARSE_LEN bytes of the file. */
static void luks2_info(const char *json, struct sif_luks_info *info)
{
    uint8_t *buf = calloc(1, SIF_LUKS_PARSE_LEN);
    struct sif_verdict v;

    assert_non_null(buf);
    unit_luks2_write(buf, UNIT_LUKS2_HDR, json, NULL);
    sif_verdict_init(&v);
    if (sif_luks_parse(buf, SIF_LUKS_PARSE_LEN, UNIT_LUKS2_FILE_SIZE, info, &v))
        fail_msg("parse failed: [%s] %s", v.check, v.reason);
    free(buf);
}

/* sif_luks_check() under the policy text: 0, or the check id and a reason
 * containing `why`. */
static void check_under(const struct sif_luks_info *info, const char *policy, const char *check, const char *why)
{
    struct sif_policy p;
    struct sif_verdict v;
    int r;

    parse_ok(policy, &p);
    sif_verdict_init(&v);
    r = sif_luks_check(info, &p, &v);
    if (!check) {
        if (r)
            fail_msg("rejected under %s: [%s] %s", policy, v.check, v.reason);
        assert_int_equal(v.state, SIF_PENDING);
        return;
    }
    assert_int_equal(r, -EPERM);
    assert_int_equal(v.state, SIF_REJECTED);
    assert_string_equal(v.check, check);
    if (!strstr(v.reason, why))
        fail_msg("reason \"%s\" lacks \"%s\"", v.reason, why);
}

static void test_luks_check_cipher(void **state)
{
    struct unit_luks1 h;
    struct sif_luks_info info;

    (void)state;
    unit_luks1_default(&h); /* aes-xts-plain64, 512-bit key */
    luks1_info(&h, &info);
    check_under(&info, "{}", NULL, NULL);
    check_under(&info, "{\"ciphers\": {\"aes-xts-plain64\": [512]}}", NULL, NULL);
    check_under(&info, "{\"ciphers\": {\"aes-xts-plain64\": [256]}}", "luks.cipher",
                "aes-xts-plain64 with a 512-bit key is not allowed by policy");
    check_under(&info, "{\"ciphers\": {\"aes-cbc-essiv:sha256\": [256]}}", "luks.cipher", "not allowed by policy");

    h.key_bytes = 32; /* AES-128-XTS, as Cinder makes it */
    luks1_info(&h, &info);
    check_under(&info, "{\"ciphers\": {\"aes-xts-plain64\": [256]}}", NULL, NULL);
    check_under(&info, "{\"ciphers\": {\"aes-xts-plain64\": [512]}}", "luks.cipher", "256-bit key is not allowed by policy");

    /* What safeimgfs cannot decrypt says so, whatever the policy. */
    strcpy(h.cipher, "serpent");
    h.key_bytes = 64;
    luks1_info(&h, &info);
    check_under(&info, "{}", "luks.cipher", "serpent-xts-plain64 with a 512-bit key is not supported");
}

static void test_luks_check_sector_size(void **state)
{
    struct sif_luks_info info;
    struct unit_luks1 h;

    (void)state;
    luks2_info(UNIT_LUKS2_JSON, &info); /* 4096-byte sectors */
    assert_int_equal(info.sector_size, 4096);
    check_under(&info, "{}", NULL, NULL);
    check_under(&info, "{\"sector_sizes\": [4096]}", NULL, NULL);
    check_under(&info, "{\"sector_sizes\": [512, 1024, 2048]}", "luks.cipher",
                "encryption sector size 4096 is not allowed by policy");

    /* LUKS1 is always 512 and not governed by sector_sizes. */
    unit_luks1_default(&h);
    luks1_info(&h, &info);
    check_under(&info, "{\"sector_sizes\": [4096]}", NULL, NULL);
}

static void test_luks_check_pbkdf(void **state)
{
    struct unit_luks1 h;
    struct sif_luks_info info;

    (void)state;
    unit_luks1_default(&h); /* slot 0 and the digest: 1000 iterations */
    h.slots[0].iterations = 5000;
    luks1_info(&h, &info);
    check_under(&info, "{\"pbkdf\": {\"pbkdf2_max_iterations\": 5000}}", NULL, NULL);
    check_under(&info, "{\"pbkdf\": {\"pbkdf2_max_iterations\": 4999}}", "luks.pbkdf", "exceed the limit 4999");
    h.digest_iterations = 3000;
    luks1_info(&h, &info);
    check_under(&info, "{\"pbkdf\": {\"digest_max_iterations\": 2999}}", "luks.pbkdf", "exceed the limit 2999");
}

#define T(f) cmocka_unit_test(f)
#define TD(f) cmocka_unit_test_setup_teardown(f, unit_tmpdir_setup, unit_tmpdir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_empty_object_and_example_default),
        T(test_example_strict),
        T(test_full_file),
        T(test_partial),
        T(test_unlock_derived),
        T(test_comments),
        T(test_syntax_line),
        T(test_no_name_no_err),
        T(test_unknown_keys),
        T(test_number_ranges),
        T(test_types),
        T(test_names),
        T(test_ciphers),
        T(test_duplicate_keys),
        T(test_round_trip),
        T(test_to_json_shape),
        TD(test_load),
        T(test_luks_check_cipher),
        T(test_luks_check_sector_size),
        T(test_luks_check_pbkdf),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
