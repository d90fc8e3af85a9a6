/* fuzz_declared.c: the sidecar parser (Glance properties next to an image)
 * and its agreement checks.  Contract: every input parses or is rejected
 * as declared.invalid; a parsed sidecar's strings are terminated and the
 * checks only ever pass or say declared.mismatch. */
#include "config.h"

#include "fuzz.h"

#include <errno.h>

#include "declared.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const outers[] = { "luks1", "luks2", "qcow2+luks" };
    struct sif_declared d;
    struct sif_verdict v;
    int r;

    sif_verdict_init(&v);
    r = sif_declared_parse((const char *)data, size, &d, &v);
    if (r) {
        FUZZ_CHECK(r == -EINVAL || r == -ENOMEM);
        FUZZ_CHECK(v.state == SIF_REJECTED && !strcmp(v.check, "declared.invalid"));
        return 0;
    }
    FUZZ_CHECK(d.present);
    FUZZ_CHECK(memchr(d.disk_format, 0, sizeof(d.disk_format)) && memchr(d.encrypt_format, 0, sizeof(d.encrypt_format)) &&
               memchr(d.key_id, 0, sizeof(d.key_id)));
    for (size_t i = 0; i < sizeof(outers) / sizeof(outers[0]); i++) {
        sif_verdict_init(&v);
        r = sif_declared_check_format(&d, outers[i], &v);
        FUZZ_CHECK(r == 0 || (r == -EPERM && !strcmp(v.check, "declared.mismatch")));
        sif_verdict_init(&v);
        r = sif_declared_check_size(&d, outers[i], d.decrypt_size, &v);
        FUZZ_CHECK(r == 0);
        r = sif_declared_check_size(&d, outers[i], d.decrypt_size + 512, &v);
        FUZZ_CHECK(r == 0 || (r == -EPERM && !strcmp(v.check, "declared.mismatch")));
    }
    return 0;
}
