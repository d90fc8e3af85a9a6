/* policy.c: the default policy, the policy file parser and its printer.
 *
 * A policy file is JSON with comments (safeimgfs.conf(5)).  The comments
 * are blanked out of a private copy byte for byte, newlines kept, and
 * json-c then parses the copy in strict mode (no single quotes, trailing
 * commas, upper-case literals or trailing garbage), so every offset json-c
 * reports is still the file's and gives an exact line and column.  json-c
 * keeps only the last of two equal keys in an object; a scan of the text
 * counts every object's keys against what json-c kept, so a key given
 * twice is an error too.  The tree is then walked against the schema:
 * unknown keys, wrong types, out-of-range numbers, unknown or repeated
 * names in arrays are errors naming the dotted key path.
 */
#include "config.h"

#include "policy.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sector.h"

/* The unlock child's address space beyond the Argon2 memory: the program,
 * libcryptsetup, OpenSSL and a stack per Argon2 lane.  The default leaves
 * this much; a policy file may not leave less than the floor, below which
 * an Argon2 unlock at the memory cap could never succeed. */
#define SIF_POLICY_MEM_SLACK (512ULL << 20)
#define SIF_POLICY_MEM_SLACK_MIN (64ULL << 20)

/* LUKS2 sector sizes the parser in src/luks.c supports: 512 << 0..3. */
#define SIF_POLICY_SECTORS_SUPPORTED 0xfu
/* Key sizes a policy can name: SIF_POLICY_KEY_BIT() covers 64..2048 bits. */
#define SIF_POLICY_KEY_BITS_MAX 2048u

/* Objects whose keys the duplicate scan counts: the schema has 6 (top,
 * ciphers, pbkdf, unlock, keys, inner).  A duplicate in an object beyond
 * these is missed by the scan, but such a document has more objects than
 * the schema allows and is refused anyway. */
#define SIF_POLICY_SCAN_OBJECTS 32
/* Keys of one object whose spellings the scan compares (the largest schema
 * object has 9); a duplicate beyond is still found by counting. */
#define SIF_POLICY_SCAN_KEYS 32

static const struct {
    const char *name; /* as "ciphers" spells it */
    const char *cipher;
    const char *mode;
} sif_policy_ciphers[SIF_POLICY_CIPHERS] = {
    [SIF_POLICY_AES_XTS_PLAIN64] = { "aes-xts-plain64", "aes", "xts-plain64" },
    [SIF_POLICY_AES_CBC_ESSIV_SHA256] = { "aes-cbc-essiv:sha256", "aes", "cbc-essiv:sha256" },
};

/* Bit i of a name set stands for names[i]. */
static const char *const sif_policy_outer_names[] = { "luks1", "luks2", "qcow2-luks" };
static const char *const sif_policy_layout_names[] = { "mbr", "gpt", "iso", "udf" };
static const char *const sif_policy_unencrypted_names[] = { [SIF_UNENCRYPTED_HIDE] = "hide",
                                                            [SIF_UNENCRYPTED_SERVE] = "serve" };
#define SIF_NAMES(a) (a), (sizeof(a) / sizeof((a)[0]))
_Static_assert(sizeof(sif_policy_outer_names) / sizeof(sif_policy_outer_names[0]) == 3, "SIF_OUTER_* bits");
_Static_assert(sizeof(sif_policy_layout_names) / sizeof(sif_policy_layout_names[0]) == 4, "SIF_LAYOUT_* bits");

/* A number of the schema: where it lives in struct sif_policy and its
 * range.  The ranges are documented in safeimgfs.conf(5). */
struct sif_policy_num {
    const char *key;
    size_t off;
    bool wide; /* uint64_t, else uint32_t */
    uint64_t min, max;
};

#define SIF_NUM32(k, f, lo, hi) { k, offsetof(struct sif_policy, f), false, lo, hi }
#define SIF_NUM64(k, f, lo, hi) { k, offsetof(struct sif_policy, f), true, lo, hi }

static const struct sif_policy_num sif_policy_pbkdf[] = {
    /* cryptsetup never writes fewer than 1000 PBKDF2 iterations; 10^9 is
     * minutes of CPU, beyond any unlock timeout. */
    SIF_NUM64("pbkdf2_max_iterations", pbkdf2_max_iterations, 1000, 1000000000),
    SIF_NUM64("digest_max_iterations", digest_max_iterations, 1000, 1000000000),
    /* Argon2 needs at least 8 KiB per lane and cryptsetup 32 KiB;
     * cryptsetup's own maximum is 4 GiB. */
    SIF_NUM32("argon2_max_memory_kib", argon2_max_memory_kib, 32, 4194304),
    SIF_NUM32("argon2_max_time", argon2_max_time, 1, 1000000),
    /* The unlock child's CPU limit is multiplied by this. */
    SIF_NUM32("argon2_max_parallel", argon2_max_parallel, 1, 64),
    /* 4 TiB-passes: 256 times the default. */
    SIF_NUM64("argon2_max_cost", argon2_max_cost, 1, 1ULL << 32),
};

enum { SIF_UNLOCK_TIMEOUT, SIF_UNLOCK_CPU, SIF_UNLOCK_MEM, SIF_UNLOCK_KEYS };
static const struct sif_policy_num sif_policy_unlock[SIF_UNLOCK_KEYS] = {
    /* The same range as -o unlock_timeout= and --unlock-timeout. */
    [SIF_UNLOCK_TIMEOUT] = SIF_NUM32("timeout_s", unlock_timeout_s, 1, 3600),
    /* The wall clock times the most Argon2 lanes. */
    [SIF_UNLOCK_CPU] = SIF_NUM32("cpu_s", unlock_cpu_s, 1, 3600 * 64),
    [SIF_UNLOCK_MEM] = SIF_NUM64("memory_bytes", unlock_mem_bytes, SIF_POLICY_MEM_SLACK_MIN, 64ULL << 30),
};

static const struct sif_policy_num sif_policy_keys[] = {
    SIF_NUM32("command_timeout_s", key_command_timeout_s, 1, 3600),
};

/* One 512-byte sector up to 1 EiB, far beyond any image qemu creates. */
static const struct sif_policy_num sif_policy_max_size = SIF_NUM64("max_virtual_size", max_virtual_size, 512, 1ULL << 60);

/* ------------------------------------------------------------ defaults */

/* The key sizes src/sector.c implements for cipher spec c. */
static uint32_t sif_policy_supported_keys(enum sif_policy_cipher c)
{
    uint32_t bits = 0;

    for (uint32_t b = 64; b <= SIF_POLICY_KEY_BITS_MAX; b += 64)
        if (sif_cipher_lookup(sif_policy_ciphers[c].cipher, sif_policy_ciphers[c].mode, b / 8))
            bits |= SIF_POLICY_KEY_BIT(b);
    return bits;
}

void sif_policy_default(struct sif_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->pbkdf2_max_iterations = 10000000;
    p->digest_max_iterations = 10000000;
    p->argon2_max_memory_kib = 1048576;
    p->argon2_max_time = 1000;
    p->argon2_max_parallel = 4;
    p->argon2_max_cost = 16ULL * 1048576;
    sif_policy_set_unlock_timeout(p, 60);
    p->unlock_mem_bytes = (uint64_t)p->argon2_max_memory_kib * 1024 + SIF_POLICY_MEM_SLACK;
    p->outer_allowed = SIF_OUTER_ALL;
    for (int c = 0; c < SIF_POLICY_CIPHERS; c++)
        p->cipher_key_bits[c] = sif_policy_supported_keys((enum sif_policy_cipher)c);
    p->sector_sizes = SIF_POLICY_SECTORS_SUPPORTED;
    p->key_command_timeout_s = 30;
    p->inner_layouts = SIF_LAYOUT_ALL;
    p->iso_hybrid = true;
    p->max_virtual_size = 64ULL << 40;
    p->unencrypted = SIF_UNENCRYPTED_HIDE;
}

void sif_policy_set_unlock_timeout(struct sif_policy *p, uint32_t seconds)
{
    uint64_t cpu = (uint64_t)seconds * (p->argon2_max_parallel ? p->argon2_max_parallel : 1);

    p->unlock_timeout_s = seconds;
    p->unlock_cpu_s = cpu > UINT32_MAX ? UINT32_MAX : (uint32_t)cpu;
}

bool sif_policy_equal(const struct sif_policy *a, const struct sif_policy *b)
{
    for (int c = 0; c < SIF_POLICY_CIPHERS; c++)
        if (a->cipher_key_bits[c] != b->cipher_key_bits[c])
            return false;
    return a->pbkdf2_max_iterations == b->pbkdf2_max_iterations &&
           a->digest_max_iterations == b->digest_max_iterations &&
           a->argon2_max_memory_kib == b->argon2_max_memory_kib && a->argon2_max_time == b->argon2_max_time &&
           a->argon2_max_parallel == b->argon2_max_parallel && a->argon2_max_cost == b->argon2_max_cost &&
           a->unlock_timeout_s == b->unlock_timeout_s && a->unlock_cpu_s == b->unlock_cpu_s &&
           a->unlock_mem_bytes == b->unlock_mem_bytes && a->outer_allowed == b->outer_allowed &&
           a->sector_sizes == b->sector_sizes && a->key_command_timeout_s == b->key_command_timeout_s &&
           a->inner_layouts == b->inner_layouts && a->iso_hybrid == b->iso_hybrid &&
           a->max_virtual_size == b->max_virtual_size && a->unencrypted == b->unencrypted;
}

/* ------------------------------------------------------------ queries */

static int sif_policy_name_index(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], s))
            return (int)i;
    return -1;
}

bool sif_policy_cipher_allowed(const struct sif_policy *p, const char *cipher, const char *mode, uint32_t key_bytes)
{
    if (key_bytes == 0 || key_bytes > SIF_POLICY_KEY_BITS_MAX / 8 || key_bytes % 8)
        return false;
    for (int c = 0; c < SIF_POLICY_CIPHERS; c++)
        if (!strcmp(sif_policy_ciphers[c].cipher, cipher) && !strcmp(sif_policy_ciphers[c].mode, mode))
            return (p->cipher_key_bits[c] & SIF_POLICY_KEY_BIT(key_bytes * 8)) != 0;
    return false;
}

bool sif_policy_sector_size_allowed(const struct sif_policy *p, uint32_t sector_size)
{
    for (unsigned k = 0; k < 32 && (512ULL << k) <= sector_size; k++)
        if ((512ULL << k) == sector_size)
            return (p->sector_sizes >> k) & 1;
    return false;
}

bool sif_policy_outer_allowed(const struct sif_policy *p, const char *outer)
{
    int i = sif_policy_name_index(SIF_NAMES(sif_policy_outer_names), outer);

    /* Verdicts call it qcow2+luks; a JSON name is easier to type as -. */
    if (i < 0 && !strcmp(outer, "qcow2+luks"))
        i = 2;
    return i >= 0 && ((p->outer_allowed >> i) & 1);
}

bool sif_policy_layout_allowed(const struct sif_policy *p, const char *format)
{
    int i = sif_policy_name_index(SIF_NAMES(sif_policy_layout_names), format);

    return i >= 0 && ((p->inner_layouts >> i) & 1);
}

/* ------------------------------------------------------------ errors */

struct sif_pctx {
    const char *name;   /* the file, for messages */
    const char *text;   /* the file's bytes, for line numbers */
    size_t len;
    char *err;
    size_t errlen;
};

/* Writes "NAME: " and the message; returns -EINVAL. */
static __attribute__((format(printf, 2, 3))) int sif_pfail(struct sif_pctx *c, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!c->err || c->errlen == 0)
        return -EINVAL;
    n = snprintf(c->err, c->errlen, "%s: ", c->name);
    if (n < 0 || (size_t)n >= c->errlen)
        return -EINVAL;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Writes "NAME:LINE:COL: " for byte offset off and the message; returns
 * -EINVAL.  Lines count from 1; columns are bytes, from 1. */
static __attribute__((format(printf, 3, 4))) int sif_pfail_at(struct sif_pctx *c, size_t off, const char *fmt, ...)
{
    size_t line = 1, col = 1;
    va_list ap;
    int n;

    if (off > c->len)
        off = c->len;
    for (size_t i = 0; i < off; i++) {
        if (c->text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    if (!c->err || c->errlen == 0)
        return -EINVAL;
    n = snprintf(c->err, c->errlen, "%s:%zu:%zu: ", c->name, line, col);
    if (n < 0 || (size_t)n >= c->errlen)
        return -EINVAL;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* A name from the file, made safe and short for a message: printable
 * ASCII as is, anything else (and \ and ") as \xNN, cut after 48 bytes. */
static void sif_pshow(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 8 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (i == 48) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '"')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
    }
    out[o] = 0;
}

/* "a string", "an array", ...: what a value is, for a type error. */
static const char *sif_ptype(struct json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "a boolean";
    case json_type_double:
        return "a number with a fraction or exponent";
    case json_type_int:
        return "an integer";
    case json_type_object:
        return "an object";
    case json_type_array:
        return "an array";
    case json_type_string:
        return "a string";
    }
    return "a value";
}

/* ------------------------------------------------------------ text */

/* Replaces every comment in t with spaces (newlines kept, so offsets and
 * line numbers stay the file's).  Strings are JSON's, in double quotes; a
 * single quote outside one is refused here because json-c accepts it even
 * in strict mode, and it would confuse the key scan.  0, or -EINVAL with
 * the offending offset in *bad and the reason in *why. */
static int sif_pblank(char *t, size_t len, size_t *bad, const char **why)
{
    size_t i = 0;

    while (i < len) {
        if (t[i] == '"') {
            for (i++; i < len && t[i] != '"'; i++)
                if (t[i] == '\\' && i + 1 < len)
                    i++;
            i++;
        } else if (t[i] == '\'') {
            *bad = i;
            *why = "single quotes are not JSON: quote with \"";
            return -EINVAL;
        } else if (t[i] == '/' && i + 1 < len && t[i + 1] == '*') {
            size_t start = i;

            for (i += 2; i + 1 < len && !(t[i] == '*' && t[i + 1] == '/'); i++)
                ;
            if (i + 1 >= len) {
                *bad = start;
                *why = "unterminated /* comment";
                return -EINVAL;
            }
            for (size_t j = start; j < i + 2; j++)
                if (t[j] != '\n')
                    t[j] = ' ';
            i += 2;
        } else if (t[i] == '/' && i + 1 < len && t[i + 1] == '/') {
            for (; i < len && t[i] != '\n'; i++)
                t[i] = ' ';
        } else {
            i++;
        }
    }
    return 0;
}

/* One object of the text, in document order of its opening brace. */
struct sif_pobj {
    size_t off;   /* its { */
    size_t nkeys; /* keys it gives, duplicates included */
    size_t nspans;
    struct {
        size_t off, len; /* a key's spelling, between its quotes */
    } spans[SIF_POLICY_SCAN_KEYS];
};

struct sif_pscan {
    size_t nobj; /* objects in the text (may exceed the array) */
    struct sif_pobj obj[SIF_POLICY_SCAN_OBJECTS];
    bool dup;          /* a key spelled the same twice in one object */
    size_t dup_off;    /* the second one's opening quote */
    size_t dup_len;
};

/* Counts the keys of every object of the blanked text t (which json-c has
 * parsed, so strings are terminated and nesting is within the cap), and
 * finds the first key spelled exactly like an earlier one of its object. */
static void sif_pscan_keys(const char *t, size_t len, struct sif_pscan *s)
{
    long stack[SIF_POLICY_DEPTH + 2];
    int depth = 0;

    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < len; i++) {
        char ch = t[i];

        if (ch == '{' || ch == '[') {
            long idx = -1;

            if (ch == '{') {
                idx = (long)s->nobj++;
                if (idx < SIF_POLICY_SCAN_OBJECTS)
                    s->obj[idx].off = i;
            }
            if (depth < (int)(sizeof(stack) / sizeof(stack[0])))
                stack[depth] = idx;
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (depth > 0)
                depth--;
        } else if (ch == '"') {
            size_t start = i + 1, j;
            long top;
            struct sif_pobj *o;

            for (i = start; i < len && t[i] != '"'; i++)
                if (t[i] == '\\' && i + 1 < len)
                    i++;
            for (j = i + 1; j < len && isspace((unsigned char)t[j]); j++)
                ;
            if (j >= len || t[j] != ':' || depth < 1 || depth > (int)(sizeof(stack) / sizeof(stack[0])))
                continue;
            top = stack[depth - 1];
            if (top < 0 || top >= SIF_POLICY_SCAN_OBJECTS)
                continue;
            o = &s->obj[top];
            o->nkeys++;
            for (size_t k = 0; k < o->nspans && !s->dup; k++) {
                if (o->spans[k].len == i - start && !memcmp(t + o->spans[k].off, t + start, i - start)) {
                    s->dup = true;
                    s->dup_off = start - 1;
                    s->dup_len = i - start;
                }
            }
            if (o->nspans < SIF_POLICY_SCAN_KEYS) {
                o->spans[o->nspans].off = start;
                o->spans[o->nspans].len = i - start;
                o->nspans++;
            }
        }
    }
}

/* Walks json-c's tree in the same order as the scan numbered the objects;
 * the first object with fewer members than keys in the text lost one to a
 * duplicate (*bad is its number). */
static void sif_ptree_keys(struct json_object *v, const struct sif_pscan *s, size_t *idx, size_t *bad)
{
    if (json_object_is_type(v, json_type_object)) {
        size_t me = (*idx)++;

        if (*bad == SIZE_MAX && (me >= s->nobj ||
                                 (me < SIF_POLICY_SCAN_OBJECTS && s->obj[me].nkeys != (size_t)json_object_object_length(v))))
            *bad = me;
        json_object_object_foreach(v, key, m) {
            (void)key;
            sif_ptree_keys(m, s, idx, bad);
        }
    } else if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++)
            sif_ptree_keys(json_object_array_get_idx(v, i), s, idx, bad);
    }
}

/* The text's blanked copy t against json-c's tree: 0, or -EINVAL when an
 * object gives a key twice. */
static int sif_pcheck_dups(struct sif_pctx *c, const char *t, struct json_object *root)
{
    struct sif_pscan *s = malloc(sizeof(*s));
    size_t idx = 0, bad = SIZE_MAX;
    int r = 0;

    if (!s) {
        sif_pfail(c, "out of memory");
        return -ENOMEM;
    }
    sif_pscan_keys(t, c->len, s);
    if (s->dup) {
        char shown[256];

        sif_pshow(t + s->dup_off + 1, s->dup_len, shown, sizeof(shown));
        r = sif_pfail_at(c, s->dup_off, "key \"%s\" given twice in one object", shown);
        goto out;
    }
    sif_ptree_keys(root, s, &idx, &bad);
    if (bad == SIZE_MAX && idx != s->nobj)
        bad = idx < s->nobj ? idx : s->nobj;
    if (bad != SIZE_MAX) {
        /* Spelled differently (escapes), the same key after decoding. */
        if (bad < SIF_POLICY_SCAN_OBJECTS && bad < s->nobj)
            r = sif_pfail_at(c, s->obj[bad].off, "this object gives a key twice");
        else
            r = sif_pfail(c, "an object gives a key twice");
    }
out:
    free(s);
    return r;
}

/* ------------------------------------------------------------ schema */

/* An integer in [min, max]. */
static int sif_pint(struct sif_pctx *c, const char *path, struct json_object *v, uint64_t min, uint64_t max,
                    uint64_t *out)
{
    int64_t n;

    if (!json_object_is_type(v, json_type_int))
        return sif_pfail(c, "%s: must be an integer in %" PRIu64 "..%" PRIu64 ", not %s", path, min, max,
                         sif_ptype(v));
    n = json_object_get_int64(v);
    if (n < 0)
        return sif_pfail(c, "%s: %" PRId64 " is out of range %" PRIu64 "..%" PRIu64, path, n, min, max);
    /* json-c keeps values above INT64_MAX as unsigned (saturated). */
    *out = n == INT64_MAX ? json_object_get_uint64(v) : (uint64_t)n;
    if (*out < min || *out > max)
        return sif_pfail(c, "%s: %" PRIu64 " is out of range %" PRIu64 "..%" PRIu64, path, *out, min, max);
    return 0;
}

static int sif_pnum(struct sif_pctx *c, const char *prefix, const struct sif_policy_num *f, struct json_object *v,
                    struct sif_policy *q)
{
    char path[96];
    uint64_t n;
    int r;

    snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", f->key);
    if ((r = sif_pint(c, path, v, f->min, f->max, &n)))
        return r;
    if (f->wide)
        *(uint64_t *)(void *)((char *)q + f->off) = n;
    else
        *(uint32_t *)(void *)((char *)q + f->off) = (uint32_t)n;
    return 0;
}

/* "one of: a, b, c" into buf. */
static const char *sif_plist(const char *const *names, size_t n, char *buf, size_t cap)
{
    size_t o = 0;

    buf[0] = 0;
    for (size_t i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", names[i]);
    return buf;
}

/* An object whose members are all numbers of the table f; seen[i] is set
 * for each f[i] given. */
static int sif_pnum_object(struct sif_pctx *c, const char *prefix, const struct sif_policy_num *f, size_t nf,
                           struct json_object *v, struct sif_policy *q, bool *seen)
{
    char list[256], shown[256];
    int r;

    if (!json_object_is_type(v, json_type_object))
        return sif_pfail(c, "%s: must be an object, not %s", prefix, sif_ptype(v));
    json_object_object_foreach(v, key, m) {
        size_t i;

        for (i = 0; i < nf && strcmp(f[i].key, key); i++)
            ;
        if (i == nf) {
            size_t o = 0;

            for (size_t k = 0; k < nf && o < sizeof(list); k++)
                o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", k ? ", " : "", f[k].key);
            sif_pshow(key, strlen(key), shown, sizeof(shown));
            return sif_pfail(c, "%s.%s: unknown key (known: %s)", prefix, shown, list);
        }
        if ((r = sif_pnum(c, prefix, &f[i], m, q)))
            return r;
        if (seen)
            seen[i] = true;
    }
    return 0;
}

/* An array of distinct names from names[] (bit i = names[i]); at least one
 * unless allow_empty. */
static int sif_pname_set(struct sif_pctx *c, const char *path, struct json_object *v, const char *const *names,
                         size_t n, const char *what, bool allow_empty, unsigned *out)
{
    unsigned bits = 0;
    char list[256], shown[256];

    if (!json_object_is_type(v, json_type_array))
        return sif_pfail(c, "%s: must be an array of %s names, not %s", path, what, sif_ptype(v));
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        struct json_object *e = json_object_array_get_idx(v, i);
        int k;

        if (!json_object_is_type(e, json_type_string))
            return sif_pfail(c, "%s[%zu]: must be a string, not %s", path, i, sif_ptype(e));
        k = sif_policy_name_index(names, n, json_object_get_string(e));
        if (k < 0) {
            sif_pshow(json_object_get_string(e), (size_t)json_object_get_string_len(e), shown, sizeof(shown));
            return sif_pfail(c, "%s[%zu]: unknown %s \"%s\" (known: %s)", path, i, what, shown,
                             sif_plist(names, n, list, sizeof(list)));
        }
        if (bits & (1u << k))
            return sif_pfail(c, "%s[%zu]: \"%s\" is listed twice", path, i, names[k]);
        bits |= 1u << k;
    }
    if (!bits && !allow_empty)
        return sif_pfail(c, "%s: must list at least one %s", path, what);
    *out = bits;
    return 0;
}

/* "256, 512" (the sizes in a SIF_POLICY_KEY_BIT set) into buf. */
static const char *sif_pkey_list(uint32_t bits, char *buf, size_t cap)
{
    size_t o = 0;

    buf[0] = 0;
    for (uint32_t b = 64; b <= SIF_POLICY_KEY_BITS_MAX && o < cap; b += 64)
        if (bits & SIF_POLICY_KEY_BIT(b))
            o += (size_t)snprintf(buf + o, cap - o, "%s%" PRIu32, o ? ", " : "", b);
    return buf;
}

static int sif_pciphers(struct sif_pctx *c, struct json_object *v, struct sif_policy *q)
{
    const char *names[SIF_POLICY_CIPHERS];
    uint32_t bits[SIF_POLICY_CIPHERS] = { 0 };
    char list[256], shown[256], path[96];
    bool any = false;

    if (!json_object_is_type(v, json_type_object))
        return sif_pfail(c, "ciphers: must be an object, not %s", sif_ptype(v));
    for (int i = 0; i < SIF_POLICY_CIPHERS; i++)
        names[i] = sif_policy_ciphers[i].name;
    json_object_object_foreach(v, key, sizes) {
        int ci = sif_policy_name_index(names, SIF_POLICY_CIPHERS, key);
        uint32_t supported;

        if (ci < 0) {
            sif_pshow(key, strlen(key), shown, sizeof(shown));
            return sif_pfail(c, "ciphers.%s: cipher not supported by safeimgfs (supported: %s)", shown,
                             sif_plist(names, SIF_POLICY_CIPHERS, list, sizeof(list)));
        }
        supported = sif_policy_supported_keys((enum sif_policy_cipher)ci);
        snprintf(path, sizeof(path), "ciphers.%s", names[ci]);
        if (!json_object_is_type(sizes, json_type_array))
            return sif_pfail(c, "%s: must be an array of key sizes in bits, not %s", path, sif_ptype(sizes));
        if (json_object_array_length(sizes) == 0)
            return sif_pfail(c, "%s: must list at least one key size (leave the cipher out to forbid it)", path);
        for (size_t i = 0; i < json_object_array_length(sizes); i++) {
            struct json_object *e = json_object_array_get_idx(sizes, i);
            uint64_t kb;
            char ipath[128];
            int r;

            snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
            if (!json_object_is_type(e, json_type_int))
                return sif_pfail(c, "%s: must be a key size in bits, not %s", ipath, sif_ptype(e));
            if ((r = sif_pint(c, ipath, e, 1, UINT32_MAX, &kb)))
                return r;
            if (kb % 64 || kb > SIF_POLICY_KEY_BITS_MAX || !(supported & SIF_POLICY_KEY_BIT(kb)))
                return sif_pfail(c, "%s: a %" PRIu64 "-bit key is not supported by safeimgfs (supported: %s)", ipath,
                                 kb, sif_pkey_list(supported, list, sizeof(list)));
            if (bits[ci] & SIF_POLICY_KEY_BIT(kb))
                return sif_pfail(c, "%s: %" PRIu64 " is listed twice", ipath, kb);
            bits[ci] |= SIF_POLICY_KEY_BIT(kb);
        }
        any = true;
    }
    if (!any)
        return sif_pfail(c, "ciphers: must allow at least one cipher");
    memcpy(q->cipher_key_bits, bits, sizeof(bits));
    return 0;
}

static int sif_psectors(struct sif_pctx *c, struct json_object *v, struct sif_policy *q)
{
    uint32_t bits = 0;

    if (!json_object_is_type(v, json_type_array))
        return sif_pfail(c, "sector_sizes: must be an array of sizes in bytes, not %s", sif_ptype(v));
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        char path[48];
        uint64_t s;
        unsigned k;
        int r;

        snprintf(path, sizeof(path), "sector_sizes[%zu]", i);
        if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_int))
            return sif_pfail(c, "%s: must be a sector size in bytes, not %s", path,
                             sif_ptype(json_object_array_get_idx(v, i)));
        if ((r = sif_pint(c, path, json_object_array_get_idx(v, i), 1, UINT32_MAX, &s)))
            return r;
        for (k = 0; k < 32 && (512ULL << k) != s; k++)
            ;
        if (k == 32 || !((SIF_POLICY_SECTORS_SUPPORTED >> k) & 1))
            return sif_pfail(c, "%s: sector size %" PRIu64 " is not supported by safeimgfs (supported: 512, 1024, 2048, 4096)",
                             path, s);
        if (bits & (1u << k))
            return sif_pfail(c, "%s: %" PRIu64 " is listed twice", path, s);
        bits |= 1u << k;
    }
    if (!bits)
        return sif_pfail(c, "sector_sizes: must list at least one sector size");
    q->sector_sizes = bits;
    return 0;
}

static int sif_pinner(struct sif_pctx *c, struct json_object *v, struct sif_policy *q)
{
    static const char *const keys[] = { "layouts", "iso_hybrid" };
    char list[64], shown[256];
    int r;

    if (!json_object_is_type(v, json_type_object))
        return sif_pfail(c, "inner: must be an object, not %s", sif_ptype(v));
    json_object_object_foreach(v, key, m) {
        switch (sif_policy_name_index(SIF_NAMES(keys), key)) {
        case 0:
            if ((r = sif_pname_set(c, "inner.layouts", m, SIF_NAMES(sif_policy_layout_names), "layout", true,
                                   &q->inner_layouts)))
                return r;
            break;
        case 1:
            if (!json_object_is_type(m, json_type_boolean))
                return sif_pfail(c, "inner.iso_hybrid: must be true or false, not %s", sif_ptype(m));
            q->iso_hybrid = json_object_get_boolean(m);
            break;
        default:
            sif_pshow(key, strlen(key), shown, sizeof(shown));
            return sif_pfail(c, "inner.%s: unknown key (known: %s)", shown, sif_plist(SIF_NAMES(keys), list, sizeof(list)));
        }
    }
    return 0;
}

static int sif_punencrypted(struct sif_pctx *c, struct json_object *v, struct sif_policy *q)
{
    char list[64], shown[256];
    int i;

    if (!json_object_is_type(v, json_type_string))
        return sif_pfail(c, "unencrypted: must be \"hide\" or \"serve\", not %s", sif_ptype(v));
    i = sif_policy_name_index(SIF_NAMES(sif_policy_unencrypted_names), json_object_get_string(v));
    if (i < 0) {
        sif_pshow(json_object_get_string(v), (size_t)json_object_get_string_len(v), shown, sizeof(shown));
        return sif_pfail(c, "unencrypted: unknown value \"%s\" (known: %s)", shown,
                         sif_plist(SIF_NAMES(sif_policy_unencrypted_names), list, sizeof(list)));
    }
    q->unencrypted = (enum sif_unencrypted)i;
    return 0;
}

/* The top-level keys. */
enum sif_ptop { SIF_P_OUTER, SIF_P_CIPHERS, SIF_P_SECTORS, SIF_P_PBKDF, SIF_P_UNLOCK, SIF_P_KEYS, SIF_P_INNER,
                SIF_P_MAX_SIZE, SIF_P_UNENCRYPTED, SIF_P_TOP };
static const char *const sif_policy_top_keys[SIF_P_TOP] = {
    [SIF_P_OUTER] = "outer_formats", [SIF_P_CIPHERS] = "ciphers", [SIF_P_SECTORS] = "sector_sizes",
    [SIF_P_PBKDF] = "pbkdf", [SIF_P_UNLOCK] = "unlock", [SIF_P_KEYS] = "keys", [SIF_P_INNER] = "inner",
    [SIF_P_MAX_SIZE] = "max_virtual_size", [SIF_P_UNENCRYPTED] = "unencrypted",
};

/* The top-level object, applied over the defaults in q. */
static int sif_papply(struct sif_pctx *c, struct json_object *root, struct sif_policy *q)
{
    bool unlock_seen[SIF_UNLOCK_KEYS] = { false };
    char list[256], shown[256];
    uint64_t argon2_bytes;
    int r = 0;

    json_object_object_foreach(root, key, v) {
        switch (sif_policy_name_index(SIF_NAMES(sif_policy_top_keys), key)) {
        case SIF_P_OUTER:
            r = sif_pname_set(c, "outer_formats", v, SIF_NAMES(sif_policy_outer_names), "outer format", false,
                              &q->outer_allowed);
            break;
        case SIF_P_CIPHERS:
            r = sif_pciphers(c, v, q);
            break;
        case SIF_P_SECTORS:
            r = sif_psectors(c, v, q);
            break;
        case SIF_P_PBKDF:
            r = sif_pnum_object(c, "pbkdf", SIF_NAMES(sif_policy_pbkdf), v, q, NULL);
            break;
        case SIF_P_UNLOCK:
            r = sif_pnum_object(c, "unlock", SIF_NAMES(sif_policy_unlock), v, q, unlock_seen);
            break;
        case SIF_P_KEYS:
            r = sif_pnum_object(c, "keys", SIF_NAMES(sif_policy_keys), v, q, NULL);
            break;
        case SIF_P_INNER:
            r = sif_pinner(c, v, q);
            break;
        case SIF_P_MAX_SIZE:
            r = sif_pnum(c, "", &sif_policy_max_size, v, q);
            break;
        case SIF_P_UNENCRYPTED:
            r = sif_punencrypted(c, v, q);
            break;
        default:
            sif_pshow(key, strlen(key), shown, sizeof(shown));
            r = sif_pfail(c, "%s: unknown key (known: %s)", shown,
                          sif_plist(SIF_NAMES(sif_policy_top_keys), list, sizeof(list)));
        }
        if (r)
            return r;
    }
    /* Limits left out follow the ones given, as the defaults do. */
    if (!unlock_seen[SIF_UNLOCK_CPU])
        sif_policy_set_unlock_timeout(q, q->unlock_timeout_s);
    argon2_bytes = (uint64_t)q->argon2_max_memory_kib * 1024;
    if (!unlock_seen[SIF_UNLOCK_MEM])
        q->unlock_mem_bytes = argon2_bytes + SIF_POLICY_MEM_SLACK;
    else if (q->unlock_mem_bytes < argon2_bytes + SIF_POLICY_MEM_SLACK_MIN)
        return sif_pfail(c, "unlock.memory_bytes: %" PRIu64 " leaves no room for an Argon2 unlock at the memory cap: "
                         "must be at least %" PRIu64 " (pbkdf.argon2_max_memory_kib in bytes plus 64 MiB)",
                         q->unlock_mem_bytes, (uint64_t)(argon2_bytes + SIF_POLICY_MEM_SLACK_MIN));
    return 0;
}

_Static_assert(SIF_POLICY_FILE_MAX <= INT32_MAX, "json-c takes an int length");

int sif_policy_parse(struct sif_policy *p, const char *text, size_t len, const char *name, char *err, size_t errlen)
{
    struct sif_pctx c = { name ? name : "policy", text, len, err, errlen };
    struct json_tokener *tok = NULL;
    struct json_object *root = NULL;
    struct sif_policy q;
    const char *nul, *why = NULL;
    char *t = NULL;
    size_t bad = 0;
    int r;

    if (err && errlen)
        err[0] = 0;
    if (len > SIF_POLICY_FILE_MAX)
        return sif_pfail(&c, "larger than %u bytes", SIF_POLICY_FILE_MAX);
    if (len && (nul = memchr(text, 0, len)))
        return sif_pfail_at(&c, (size_t)(nul - text), "NUL byte");
    t = malloc(len ? len : 1);
    tok = json_tokener_new_ex(SIF_POLICY_DEPTH);
    if (!t || !tok) {
        r = -ENOMEM;
        sif_pfail(&c, "out of memory");
        goto out;
    }
    memcpy(t, text, len);
    if (sif_pblank(t, len, &bad, &why)) {
        r = sif_pfail_at(&c, bad, "%s", why);
        goto out;
    }
    /* json-c wants more input after a bare literal at the end of the
     * text; say what is wrong rather than "unexpected end of file". */
    for (bad = 0; bad < len && isspace((unsigned char)t[bad]); bad++)
        ;
    if (bad < len && t[bad] != '{') {
        r = sif_pfail_at(&c, bad, "the policy must be a JSON object {...}");
        goto out;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, t, (int)len);
    if (json_tokener_get_error(tok) == json_tokener_continue) {
        r = sif_pfail_at(&c, len, "unexpected end of file");
        goto out;
    }
    if (json_tokener_get_error(tok) == json_tokener_error_depth) {
        r = sif_pfail_at(&c, json_tokener_get_parse_end(tok), "nested deeper than %d levels", SIF_POLICY_DEPTH);
        goto out;
    }
    if (json_tokener_get_error(tok) != json_tokener_success) {
        r = sif_pfail_at(&c, json_tokener_get_parse_end(tok), "%s",
                         json_tokener_error_desc(json_tokener_get_error(tok)));
        goto out;
    }
    if (json_tokener_get_parse_end(tok) != len) {
        r = sif_pfail_at(&c, json_tokener_get_parse_end(tok), "unexpected text after the policy object");
        goto out;
    }
    if (!root || !json_object_is_type(root, json_type_object)) {
        r = sif_pfail(&c, "the policy must be a JSON object {...}, not %s", root ? sif_ptype(root) : "null");
        goto out;
    }
    /* Duplicates first: the schema would only see the last of two. */
    if ((r = sif_pcheck_dups(&c, t, root)))
        goto out;
    sif_policy_default(&q);
    if ((r = sif_papply(&c, root, &q)))
        goto out;
    *p = q;
out:
    json_object_put(root);
    if (tok)
        json_tokener_free(tok);
    free(t);
    return r;
}

int sif_policy_load(struct sif_policy *p, const char *path, char *err, size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int fd, r;

    if (err && errlen)
        err[0] = 0;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused
     * below, and nothing is read before that. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        r = -errno;
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open (%s)", path, strerror(-r));
        return r;
    }
    if (fstat(fd, &st) != 0) {
        r = -errno;
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot stat (%s)", path, strerror(-r));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        if (err && errlen)
            snprintf(err, errlen, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > SIF_POLICY_FILE_MAX) {
        r = -EFBIG;
        if (err && errlen)
            snprintf(err, errlen, "%s: larger than %u bytes", path, SIF_POLICY_FILE_MAX);
        goto out;
    }
    /* Read to the end rather than trusting st_size, which may have changed
     * (or be 0, for files in /proc). */
    buf = malloc(SIF_POLICY_FILE_MAX + 1);
    if (!buf) {
        r = -ENOMEM;
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        ssize_t got = read(fd, buf + n, SIF_POLICY_FILE_MAX + 1 - n);

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            r = -errno;
            if (err && errlen)
                snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(-r));
            goto out;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n > SIF_POLICY_FILE_MAX) {
            r = -EFBIG;
            if (err && errlen)
                snprintf(err, errlen, "%s: larger than %u bytes", path, SIF_POLICY_FILE_MAX);
            goto out;
        }
    }
    r = sif_policy_parse(p, buf, n, path, err, errlen);
out:
    free(buf);
    close(fd);
    return r;
}

/* ------------------------------------------------------------ printing */

/* Adds v to object o as k, or to array o when k is NULL; takes v. */
static int sif_jadd(struct json_object *o, const char *k, struct json_object *v)
{
    int r;

    if (!v)
        return -ENOMEM;
    r = k ? json_object_object_add(o, k, v) : json_object_array_add(o, v);
    if (r) {
        json_object_put(v);
        return -ENOMEM;
    }
    return 0;
}

static struct json_object *sif_jnames(unsigned bits, const char *const *names, size_t n)
{
    struct json_object *a = json_object_new_array();

    for (size_t i = 0; a && i < n; i++) {
        if (((bits >> i) & 1) && sif_jadd(a, NULL, json_object_new_string(names[i]))) {
            json_object_put(a);
            return NULL;
        }
    }
    return a;
}

static struct json_object *sif_jnums(const struct sif_policy *p, const struct sif_policy_num *f, size_t n)
{
    struct json_object *o = json_object_new_object();

    for (size_t i = 0; o && i < n; i++) {
        const char *at = (const char *)p + f[i].off;
        uint64_t v = f[i].wide ? *(const uint64_t *)(const void *)at : *(const uint32_t *)(const void *)at;

        if (sif_jadd(o, f[i].key, json_object_new_uint64(v))) {
            json_object_put(o);
            return NULL;
        }
    }
    return o;
}

static struct json_object *sif_jciphers(const struct sif_policy *p)
{
    struct json_object *o = json_object_new_object();

    for (int c = 0; o && c < SIF_POLICY_CIPHERS; c++) {
        struct json_object *a;

        if (!p->cipher_key_bits[c])
            continue;
        a = json_object_new_array();
        for (uint32_t b = 64; a && b <= SIF_POLICY_KEY_BITS_MAX; b += 64) {
            if ((p->cipher_key_bits[c] & SIF_POLICY_KEY_BIT(b)) && sif_jadd(a, NULL, json_object_new_int64(b))) {
                json_object_put(a);
                a = NULL;
            }
        }
        if (sif_jadd(o, sif_policy_ciphers[c].name, a)) {
            json_object_put(o);
            return NULL;
        }
    }
    return o;
}

static struct json_object *sif_jsectors(const struct sif_policy *p)
{
    struct json_object *a = json_object_new_array();

    for (unsigned k = 0; a && k < 32; k++) {
        if (((p->sector_sizes >> k) & 1) && sif_jadd(a, NULL, json_object_new_uint64(512ULL << k))) {
            json_object_put(a);
            return NULL;
        }
    }
    return a;
}

static struct json_object *sif_jinner(const struct sif_policy *p)
{
    struct json_object *o = json_object_new_object();

    if (o && (sif_jadd(o, "layouts", sif_jnames(p->inner_layouts, SIF_NAMES(sif_policy_layout_names))) ||
              sif_jadd(o, "iso_hybrid", json_object_new_boolean(p->iso_hybrid)))) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

int sif_policy_to_json(const struct sif_policy *p, char **out)
{
    struct json_object *root = json_object_new_object();
    const char *s;
    int r = -ENOMEM;

    *out = NULL;
    if (!root)
        return -ENOMEM;
    if (sif_jadd(root, "outer_formats", sif_jnames(p->outer_allowed, SIF_NAMES(sif_policy_outer_names))) ||
        sif_jadd(root, "ciphers", sif_jciphers(p)) || sif_jadd(root, "sector_sizes", sif_jsectors(p)) ||
        sif_jadd(root, "pbkdf", sif_jnums(p, SIF_NAMES(sif_policy_pbkdf))) ||
        sif_jadd(root, "unlock", sif_jnums(p, SIF_NAMES(sif_policy_unlock))) ||
        sif_jadd(root, "keys", sif_jnums(p, SIF_NAMES(sif_policy_keys))) ||
        sif_jadd(root, "inner", sif_jinner(p)) ||
        sif_jadd(root, "max_virtual_size", json_object_new_uint64(p->max_virtual_size)) ||
        sif_jadd(root, "unencrypted",
                 json_object_new_string(p->unencrypted == SIF_UNENCRYPTED_SERVE ? "serve" : "hide")))
        goto out;
    s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s)
        goto out;
    *out = malloc(strlen(s) + 2);
    if (!*out)
        goto out;
    memcpy(*out, s, strlen(s));
    memcpy(*out + strlen(s), "\n", 2);
    r = 0;
out:
    json_object_put(root);
    return r;
}
