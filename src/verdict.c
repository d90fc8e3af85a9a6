/* verdict.c: recording and rendering verdicts. */
#include "config.h"

#include "verdict.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void sif_verdict_init(struct sif_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->state = SIF_PENDING;
}

static void sif_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

int sif_reject(struct sif_verdict *v, int err, const char *check, const char *fmt, ...)
{
    va_list ap;

    if (v->state == SIF_REJECTED)
        return err;
    v->state = SIF_REJECTED;
    sif_copy(v->check, sizeof(v->check), check);
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
    va_end(ap);
    return err;
}

void sif_accept(struct sif_verdict *v, const char *check, const char *fmt, ...)
{
    va_list ap;

    if (v->state == SIF_REJECTED)
        return;
    v->state = SIF_ACCEPTED;
    sif_copy(v->check, sizeof(v->check), check);
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
    va_end(ap);
}

void sif_verdict_ran(struct sif_verdict *v, const char *stage)
{
    if (v->n_ran < SIF_VERDICT_RAN)
        sif_copy(v->ran[v->n_ran++], SIF_CHECK_LEN, stage);
}

const char *sif_state_name(enum sif_state s)
{
    switch (s) {
    case SIF_ACCEPTED:
        return "accepted";
    case SIF_REJECTED:
        return "rejected";
    default:
        return "pending";
    }
}

static struct json_object *sif_json_str_or_null(const char *s)
{
    return s[0] ? json_object_new_string(s) : NULL;
}

static struct json_object *sif_matches_json(const struct sif_verdict_match *m, int n)
{
    struct json_object *arr = json_object_new_array();

    for (int i = 0; i < n && i < SIF_VERDICT_MATCHES; i++) {
        struct json_object *o = json_object_new_object();

        json_object_object_add(o, "format", json_object_new_string(m[i].format));
        json_object_object_add(o, "offset", json_object_new_int64((int64_t)m[i].where));
        json_object_object_add(o, "detail", m[i].detail[0] ? json_object_new_string(m[i].detail) : NULL);
        json_object_object_add(o, "safe", json_object_new_boolean(!m[i].unsafe));
        json_object_array_add(arr, o);
    }
    return arr;
}

struct json_object *sif_verdict_json(const char *name, const struct sif_verdict *v)
{
    struct json_object *o = json_object_new_object();

    json_object_object_add(o, "name", json_object_new_string(name));
    json_object_object_add(o, "state", json_object_new_string(sif_state_name(v->state)));
    json_object_object_add(o, "check", sif_json_str_or_null(v->check));
    json_object_object_add(o, "reason", sif_json_str_or_null(v->reason));
    json_object_object_add(o, "outer_format", sif_json_str_or_null(v->outer));
    json_object_object_add(o, "inner_format", sif_json_str_or_null(v->inner));
    json_object_object_add(o, "size", v->has_size ? json_object_new_int64((int64_t)v->size) : NULL);
    if (v->cipher[0]) {
        struct json_object *e = json_object_new_object(), *slots = json_object_new_array();

        json_object_object_add(e, "cipher", json_object_new_string(v->cipher));
        json_object_object_add(e, "key_bits", json_object_new_int((int32_t)v->key_bits));
        json_object_object_add(e, "sector_size", json_object_new_int((int32_t)v->sector_size));
        json_object_object_add(e, "data_offset", json_object_new_int64((int64_t)v->data_offset));
        for (int i = 0; i < v->nslots; i++) {
            const struct sif_verdict_slot *s = &v->slots[i];
            struct json_object *js = json_object_new_object();
            bool argon = strncmp(s->kdf, "argon2", 6) == 0;

            json_object_object_add(js, "slot", json_object_new_int(s->id));
            json_object_object_add(js, "kdf", json_object_new_string(s->kdf));
            json_object_object_add(js, argon ? "time" : "iterations", json_object_new_int64((int64_t)s->cost));
            if (argon) {
                json_object_object_add(js, "memory_kib", json_object_new_int64(s->memory_kib));
                json_object_object_add(js, "parallel", json_object_new_int64(s->parallel));
            }
            json_object_object_add(js, "bound", json_object_new_boolean(s->bound));
            json_object_array_add(slots, js);
        }
        json_object_object_add(e, "keyslots", slots);
        json_object_object_add(o, "encryption", e);
    }
    struct json_object *probes = json_object_new_object();
    json_object_object_add(probes, "outer", sif_matches_json(v->outer_hits, v->n_outer));
    json_object_object_add(probes, "inner", v->inner_inspected ? sif_matches_json(v->inner_hits, v->n_inner) : NULL);
    json_object_object_add(o, "probes", probes);
    json_object_object_add(o, "inner_inspected", json_object_new_boolean(v->inner_inspected));
    json_object_object_add(o, "key_source", sif_json_str_or_null(v->key_source));
    json_object_object_add(o, "key_form", sif_json_str_or_null(v->key_form));
    {
        struct json_object *ran = json_object_new_array();

        for (int i = 0; i < v->n_ran; i++)
            json_object_array_add(ran, json_object_new_string(v->ran[i]));
        json_object_object_add(o, "stages", ran);
    }
    return o;
}

void sif_verdict_line(const char *name, const struct sif_verdict *v, char *buf, size_t len)
{
    snprintf(buf, len, "%s: %s [%s] %s", name, sif_state_name(v->state),
             v->check[0] ? v->check : "-", v->reason[0] ? v->reason : "");
}
