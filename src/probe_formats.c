/* probe_formats.c: match functions for the disk image and container
 * formats (IMAGE class) other than VMDK (probe_vmdk.c).
 *
 * Each signature is qemu's probe rule for the format (block/<driver>.c) or,
 * for the formats qemu finds only by name or not at all (a fixed VHD's
 * footer, dmg, LUKS2), the rule its specification gives.  Where qemu needs
 * more than the signature (a whole header) the probe here asks for less:
 * eagerness only adds rejections.  The detail says what an operator should
 * know, above all references to other files (backing files, data files).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "bytes.h"
#include "checked.h"
#include "probe.h"
#include "probe_formats.h"
#include "probe_util.h"

/* ------------------------------------------------------------ qcow, qcow2 */

#define QCOW_MAGIC "QFI\xfb"
#define QCOW2_EXT_DATA_FILE 0x44415441u   /* "DATA" */
#define QCOW2_INCOMPAT_DATA_FILE (1u << 2)
#define QCOW2_INCOMPAT_KNOWN 0x1fu        /* dirty, corrupt, data file, compression, extended L2 */

static const char *sif_qcow_crypt(uint32_t method)
{
    switch (method) {
    case 1:
        return "AES";
    case 2:
        return "LUKS";
    default:
        return "unknown method";
    }
}

/* How much of a backing file name is read for the detail text: qemu's
 * own limit on the name is 1023 bytes. */
#define SIF_BACKING_NAME_MAX 1024u

static uint32_t sif_backing_len(uint32_t len)
{
    return len < SIF_BACKING_NAME_MAX ? len : SIF_BACKING_NAME_MAX;
}

/* ", with a backing file" and its name when a region holds it. */
static void sif_qcow_backing(const struct sif_probe_input *in, struct sif_text *t, uint64_t off, uint32_t len)
{
    const uint8_t *name;

    if (!off)
        return;
    sif_text_add(t, ", with a backing file");
    len = sif_backing_len(len);
    name = len ? sif_content_at(in, off, len) : NULL;
    if (name) {
        sif_text_add(t, " \"");
        sif_text_bytes(t, name, len, 48);
        sif_text_add(t, "\"");
    }
}

bool sif_m_qcow2(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    const uint8_t *h = sif_head_at(in, 0, 8), *v3, *name = NULL;
    uint32_t version, cluster_bits, name_len = 0;
    uint64_t incompat = 0, off, limit;
    bool data_file = false;
    struct sif_text t;

    if (!h || memcmp(h, QCOW_MAGIC, 4) != 0 || (version = sif_be32(h + 4)) < 2)
        return false;
    sif_text_init(&t, hit->detail, sizeof(hit->detail));
    sif_text_add(&t, "version %u", (unsigned)version);
    h = sif_head_at(in, 0, 72);
    if (!h) {
        sif_text_add(&t, ", header cut short");
        return true;
    }
    sif_qcow_backing(in, &t, sif_be64(h + 8), sif_be32(h + 16));

    /* Header extensions follow the 72-byte version 2 header, or the
     * header_length bytes of a version 3 header; they lie in the first
     * cluster.  Walk them all (a data file extension names a host file). */
    off = 72;
    v3 = version >= 3 ? sif_head_at(in, 0, 104) : NULL;
    if (version >= 3 && !v3)
        sif_text_add(&t, ", version 3 header cut short");
    if (v3) {
        incompat = sif_be64(v3 + 72);
        off = sif_be32(v3 + 100);
    }
    cluster_bits = sif_be32(h + 20);
    limit = in->head_len;
    if (cluster_bits >= 9 && cluster_bits <= 30 && ((uint64_t)1 << cluster_bits) < limit)
        limit = (uint64_t)1 << cluster_bits;
    for (int i = 0; i < 4096 && sif_range_ok(off, 8, limit); i++) {
        const uint8_t *e = sif_head_at(in, off, 8);
        uint32_t type, len;

        if (!e)
            break;
        type = sif_be32(e);
        len = sif_be32(e + 4);
        if (type == 0)
            break;
        if (type == QCOW2_EXT_DATA_FILE && !data_file) {
            data_file = true;
            name = sif_range_ok(off + 8, len, limit) ? sif_head_at(in, off + 8, len) : NULL;
            name_len = len;
        }
        /* 8-byte header, data padded to 8: no overflow in 64 bits, and off
         * stays below limit + 2^32 + 16 */
        off += 8 + (((uint64_t)len + 7) & ~(uint64_t)7);
    }
    if (incompat & QCOW2_INCOMPAT_DATA_FILE)
        data_file = true;
    if (data_file) {
        sif_text_add(&t, ", with an external data file");
        if (name && name_len) {
            sif_text_add(&t, " \"");
            sif_text_bytes(&t, name, name_len, 48);
            sif_text_add(&t, "\"");
        }
    }
    if (sif_be32(h + 32))
        sif_text_add(&t, ", encrypted (%s)", sif_qcow_crypt(sif_be32(h + 32)));
    if (incompat & ~(uint64_t)QCOW2_INCOMPAT_KNOWN)
        sif_text_add(&t, ", unknown incompatible features 0x%llx",
                     (unsigned long long)(incompat & ~(uint64_t)QCOW2_INCOMPAT_KNOWN));
    return true;
}

/* qcow (v1) and qcow2 keep the backing file name at the u64 at 8, its
 * length in the u32 at 16: anywhere in the file. */
int sif_r_qcow(const struct sif_probe_input *in, struct sif_probe_region *out, int max)
{
    const uint8_t *h = sif_head_at(in, 0, 20);
    int n = 0;

    if (h && memcmp(h, QCOW_MAGIC, 4) == 0)
        sif_want(out, max, &n, sif_be64(h + 8), sif_backing_len(sif_be32(h + 16)));
    return n;
}

bool sif_m_qcow(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    const uint8_t *h = sif_head_at(in, 0, 8);
    struct sif_text t;

    if (!h || memcmp(h, QCOW_MAGIC, 4) != 0 || sif_be32(h + 4) != 1)
        return false;
    sif_text_init(&t, hit->detail, sizeof(hit->detail));
    sif_text_add(&t, "version 1");
    h = sif_head_at(in, 0, 48);
    if (!h) {
        sif_text_add(&t, ", header cut short");
        return true;
    }
    sif_qcow_backing(in, &t, sif_be64(h + 8), sif_be32(h + 16));
    if (sif_be32(h + 36))
        sif_text_add(&t, ", encrypted (%s)", sif_qcow_crypt(sif_be32(h + 36)));
    return true;
}

/* ------------------------------------------------------------ qed */

#define QED_F_BACKING_FILE 1u

int sif_r_qed(const struct sif_probe_input *in, struct sif_probe_region *out, int max)
{
    const uint8_t *h = sif_head_at(in, 0, 64);
    int n = 0;

    if (h && !memcmp(h, "QED\0", 4) && (sif_le64(h + 16) & QED_F_BACKING_FILE))
        sif_want(out, max, &n, sif_le32(h + 56), sif_backing_len(sif_le32(h + 60)));
    return n;
}

bool sif_m_qed(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    const uint8_t *h;
    struct sif_text t;

    if (!sif_head_is(in, 0, "QED\0", 4))
        return false;
    sif_text_init(&t, hit->detail, sizeof(hit->detail));
    h = sif_head_at(in, 0, 64);
    if (!h) {
        sif_text_add(&t, "header cut short");
        return true;
    }
    if (sif_le64(h + 16) & QED_F_BACKING_FILE) {
        uint32_t off = sif_le32(h + 56), len = sif_le32(h + 60);
        const uint8_t *name;

        len = sif_backing_len(len);
        name = len ? sif_content_at(in, off, len) : NULL;
        sif_text_add(&t, "with a backing file");
        if (name) {
            sif_text_add(&t, " \"");
            sif_text_bytes(&t, name, len, 48);
            sif_text_add(&t, "\"");
        }
    }
    return true;
}

/* ------------------------------------------------------------ vdi */

#define VDI_SIGNATURE 0xbeda107fu

bool sif_m_vdi(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    static const char *const types[] = { NULL, "dynamic", "fixed", "undo", "differencing (has a parent)" };
    const uint8_t *h = sif_head_at(in, 0x40, 4);
    struct sif_text t;

    if (!h || sif_le32(h) != VDI_SIGNATURE)
        return false;
    hit->where = 0x40;
    sif_text_init(&t, hit->detail, sizeof(hit->detail));
    h = sif_head_at(in, 0x40, 0x10);
    if (h) {
        uint32_t version = sif_le32(h + 4), type = sif_le32(h + 12);

        sif_text_add(&t, "version %u.%u", (unsigned)(version >> 16), (unsigned)(version & 0xffff));
        /* version 1.1 headers keep the image type at 0x4c */
        if (version >> 16 == 1 && type < sizeof(types) / sizeof(types[0]) && types[type])
            sif_text_add(&t, ", %s", types[type]);
    }
    return true;
}

/* ------------------------------------------------------------ vhd (vpc) */

#define VHD_FOOTER 512u

/* Describes the footer (or its copy) at f, of which avail bytes exist. */
static void sif_vhd_describe(struct sif_text *t, const uint8_t *f, size_t avail)
{
    if (avail < 64)
        return;
    switch (sif_be32(f + 60)) {
    case 2:
        sif_text_add(t, "fixed disk");
        break;
    case 3:
        sif_text_add(t, "dynamic disk");
        break;
    case 4:
        sif_text_add(t, "differencing disk (has a parent)");
        break;
    default:
        sif_text_add(t, "disk type %u", (unsigned)sif_be32(f + 60));
        break;
    }
}

bool sif_m_vpc(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    const uint8_t *f;
    struct sif_text t;

    sif_text_init(&t, hit->detail, sizeof(hit->detail));
    /* qemu's probe: the copy of the footer that dynamic disks keep at 0 */
    if (sif_head_is(in, 0, "conectix", 8)) {
        f = sif_head_at(in, 0, 64);
        sif_vhd_describe(&t, f, f ? 64 : 0);
        return true;
    }
    /* the footer, which is all a fixed disk has: in the last 512 bytes, or
     * in the last 511 (Virtual PC before 2004 wrote a 511-byte footer) */
    for (uint64_t len = VHD_FOOTER; len >= VHD_FOOTER - 1; len--) {
        if (in->size < len || !(f = sif_tail_at(in, in->size - len, 8)) || memcmp(f, "conectix", 8) != 0)
            continue;
        hit->where = in->size - len;
        f = sif_tail_at(in, in->size - len, 64);
        sif_vhd_describe(&t, f, f ? 64 : 0);
        sif_text_add(&t, "%sfooter in the last %u bytes", t.len ? ", " : "", (unsigned)len);
        return true;
    }
    return false;
}

/* ------------------------------------------------------------ vhdx */

bool sif_m_vhdx(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    const uint8_t *c;
    struct sif_text t;
    size_t n = 0;
    char creator[49];

    if (!sif_head_is(in, 0, "vhdxfile", 8))
        return false;
    /* the creator: UTF-16LE, up to 256 characters after the signature */
    c = sif_head_at(in, 8, 512);
    if (c) {
        for (size_t i = 0; i < 256 && n + 1 < sizeof(creator); i++) {
            uint16_t ch = sif_le16(c + 2 * i);

            if (!ch)
                break;
            creator[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
        }
    }
    creator[n] = 0;
    sif_text_init(&t, hit->detail, sizeof(hit->detail));
    if (n)
        sif_text_add(&t, "creator \"%s\"", creator);
    return true;
}

/* ------------------------------------------------------------ parallels */

bool sif_m_parallels(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    const uint8_t *h = sif_head_at(in, 0, 20);
    bool ext;

    if (!h)
        return false;
    ext = memcmp(h, "WithouFreSpacExt", 16) == 0;
    if ((!ext && memcmp(h, "WithoutFreeSpace", 16) != 0) || sif_le32(h + 16) != 2)
        return false;
    snprintf(hit->detail, sizeof(hit->detail), "version 2%s", ext ? ", extended format" : "");
    return true;
}

/* ------------------------------------------------------------ bochs */

/* qemu wants the "Redolog" type, "Growing" subtype and a known version
 * too; the magic alone is enough here. */
bool sif_m_bochs(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    static const char magic[] = "Bochs Virtual HD Image";   /* NUL-terminated in a 32-byte field */
    const uint8_t *h;
    struct sif_text t;

    if (!sif_head_is(in, 0, magic, sizeof(magic)))
        return false;
    sif_text_init(&t, hit->detail, sizeof(hit->detail));
    h = sif_head_at(in, 0, 68);
    if (h) {
        sif_text_add(&t, "type \"");
        sif_text_bytes(&t, h + 32, sif_field_len(h + 32, 16), 16);
        sif_text_add(&t, "\", subtype \"");
        sif_text_bytes(&t, h + 48, sif_field_len(h + 48, 16), 16);
        sif_text_add(&t, "\", version 0x%x", (unsigned)sif_le32(h + 64));
    }
    return true;
}

/* ------------------------------------------------------------ luks */

static const uint8_t luks_magic[6] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };
static const uint8_t luks2_secondary_magic[6] = { 'S', 'K', 'U', 'L', 0xba, 0xbe };

/* Where a LUKS2 secondary header may be (its primary copy's size: 16 KiB
 * up to 4 MiB), as cryptsetup and blkid look for it when the primary is
 * gone.  Offsets past the head are not inspected. */
static const uint32_t luks2_secondary_offsets[] = {
    0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000,
};

bool sif_m_luks(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    const uint8_t *h = sif_head_at(in, 0, 8);
    struct sif_text t;

    sif_text_init(&t, hit->detail, sizeof(hit->detail));
    if (h && memcmp(h, luks_magic, 6) == 0) {
        uint16_t version = sif_be16(h + 6);

        if (version == 1) {
            const uint8_t *c = sif_head_at(in, 0, 72);

            sif_text_add(&t, "LUKS1");
            if (c && c[8]) {
                sif_text_add(&t, ", cipher ");
                sif_text_bytes(&t, c + 8, sif_field_len(c + 8, 32), 32);
                sif_text_add(&t, "-");
                sif_text_bytes(&t, c + 40, sif_field_len(c + 40, 32), 32);
            }
        } else if (version == 2) {
            const uint8_t *s = sif_head_at(in, 0, 16);

            sif_text_add(&t, "LUKS2");
            if (s)
                sif_text_add(&t, ", header size %llu", (unsigned long long)sif_be64(s + 8));
        } else {
            /* not a version cryptsetup writes, but a LUKS header all the same */
            sif_text_add(&t, "LUKS version %u", (unsigned)version);
        }
        return true;
    }
    if (h && memcmp(h, luks2_secondary_magic, 6) == 0 && sif_be16(h + 6) == 2) {
        sif_text_add(&t, "LUKS2 secondary header at 0");
        return true;
    }
    for (size_t i = 0; i < sizeof(luks2_secondary_offsets) / sizeof(luks2_secondary_offsets[0]); i++) {
        uint32_t off = luks2_secondary_offsets[i];
        const uint8_t *s = sif_head_at(in, off, 8);

        if (s && memcmp(s, luks2_secondary_magic, 6) == 0 && sif_be16(s + 6) == 2) {
            hit->where = off;
            sif_text_add(&t, "LUKS2 secondary header at %u (no primary header)", (unsigned)off);
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------ cloop */

bool sif_m_cloop(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    static const char magic[] = "#!/bin/sh\n#V2.0 Format\n";

    if (!sif_head_is(in, 0, magic, sizeof(magic) - 1))
        return false;
    snprintf(hit->detail, sizeof(hit->detail), "compressed loop image V2.0");
    return true;
}

/* ------------------------------------------------------------ dmg */

/* Apple UDIF: a 512-byte "koly" trailer, version 4, in the last sector. */
bool sif_m_dmg(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    const uint8_t *k = in->size >= 512 ? sif_tail_at(in, in->size - 512, 512) : NULL;

    if (!k || memcmp(k, "koly", 4) != 0 || sif_be32(k + 4) != 4)
        return false;
    hit->where = in->size - 512;
    snprintf(hit->detail, sizeof(hit->detail), "UDIF trailer in the last sector");
    return true;
}
