/* probe_formats.c: the match functions of the probe table (first set:
 * qemu's probe table plus the formats other tools find by footer). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "bytes.h"
#include "probe.h"
#include "probe_formats.h"

static bool sif_at(const struct sif_probe_input *in, size_t off, const void *magic, size_t len)
{
    return off <= in->head_len && len <= in->head_len - off && memcmp(in->head + off, magic, len) == 0;
}

/* The last 512-byte sector of the content, or NULL. */
static const uint8_t *sif_last_sector(const struct sif_probe_input *in)
{
    if (in->tail_len < 512 || in->size < 512)
        return NULL;
    return in->tail + in->tail_len - 512;
}

static bool sif_qcow_version(const struct sif_probe_input *in, bool v1)
{
    if (!sif_at(in, 0, "QFI\xfb", 4) || in->head_len < 8)
        return false;
    uint32_t ver = sif_be32(in->head + 4);
    return v1 ? ver == 1 : ver >= 2;
}

bool sif_m_qcow2(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    if (!sif_qcow_version(in, false))
        return false;
    if (in->head_len >= 20) {
        uint64_t bf = sif_be64(in->head + 8);
        snprintf(hit->detail, sizeof(hit->detail), "qcow2 version %u%s", (unsigned)sif_be32(in->head + 4),
                 bf ? " with a backing file" : "");
    }
    return true;
}

bool sif_m_qcow(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    return sif_qcow_version(in, true);
}

bool sif_m_qed(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    return sif_at(in, 0, "QED\0", 4);
}

/* qemu's vmdk probe also accepts a text descriptor: after comment lines and
 * blank lines, the first line must be version=1, 2 or 3. */
static bool sif_vmdk_text(const struct sif_probe_input *in)
{
    const char *p = (const char *)in->head, *end = p + in->head_len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *q = p;

        while (q < le && (*q == ' ' || *q == '\t' || *q == '\r'))
            q++;
        if (q == le || *q == '#') {
            if (!nl)
                return false;
            p = nl + 1;
            continue;
        }
        if (le - q >= 9 && !memcmp(q, "version=", 8) && q[8] >= '1' && q[8] <= '3') {
            q += 9;
            while (q < le && (*q == ' ' || *q == '\t' || *q == '\r'))
                q++;
            return q == le;
        }
        return false;
    }
    return false;
}

bool sif_m_vmdk(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    if (sif_at(in, 0, "KDMV", 4) || sif_at(in, 0, "COWD", 4))
        return true;
    if (sif_vmdk_text(in)) {
        snprintf(hit->detail, sizeof(hit->detail), "VMDK text descriptor");
        return true;
    }
    return false;
}

bool sif_m_vdi(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    return in->head_len >= 0x44 && sif_le32(in->head + 0x40) == 0xbeda107f;
}

bool sif_m_vpc(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    const uint8_t *last = sif_last_sector(in);

    if (sif_at(in, 0, "conectix", 8))
        return true;
    if (last && !memcmp(last, "conectix", 8)) {
        snprintf(hit->detail, sizeof(hit->detail), "VHD footer in the last sector");
        return true;
    }
    return false;
}

bool sif_m_vhdx(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    return sif_at(in, 0, "vhdxfile", 8);
}

bool sif_m_parallels(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    return (sif_at(in, 0, "WithoutFreeSpace", 16) || sif_at(in, 0, "WithouFreSpacExt", 16)) &&
           in->head_len >= 20 && sif_le32(in->head + 16) == 2;
}

bool sif_m_bochs(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    return sif_at(in, 0, "Bochs Virtual HD Image", 23);
}

bool sif_m_luks(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    if (!sif_at(in, 0, "LUKS\xba\xbe", 6) || in->head_len < 8)
        return false;
    snprintf(hit->detail, sizeof(hit->detail), "nested LUKS version %u", (unsigned)sif_be16(in->head + 6));
    return true;
}

bool sif_m_cloop(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    static const char magic[] = "#!/bin/sh\n#V2.0 Format\n";
    return sif_at(in, 0, magic, sizeof(magic) - 1);
}

/* Apple UDIF: a "koly" trailer in the last sector. */
bool sif_m_dmg(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    const uint8_t *last = sif_last_sector(in);
    return last && !memcmp(last, "koly", 4) && sif_be32(last + 4) == 4;
}

