/* probe_layout.c: partition tables and disc filesystems (LAYOUT class).
 *
 * These are raw disks: a consumer that probes formats takes them for raw,
 * and the engine accepts them provided their safety checks pass.  The
 * checks for MBR and GPT are OpenStack's (oslo.utils format_inspector,
 * GPTInspector), which nova and glance apply to raw uploads, so that what we
 * serve is what they accept:
 *   - the sector ends in 55 AA and is not the boot sector of a FAT, exFAT
 *     or NTFS filesystem (those are filesystems, not partition tables);
 *   - every entry's boot flag is 0x00 or 0x80;
 *   - at least one entry is in use;
 *   - a protective entry (type 0xEE) is alone, in slot 0, starts at LBA 1
 *     with CHS 00 02 00.
 * A valid protective MBR with a GPT header at LBA 1 is reported as "gpt",
 * after the UEFI specification's checks of the header (size, CRC32, its own
 * LBA, the partition entry array inside the disk and its CRC32, the usable
 * LBAs and the partitions inside the disk); any other table as "mbr".  A
 * failed check sets hit->unsafe and says which.
 *
 * ISO 9660 has its volume descriptors from sector 16 (byte 32768) in 2048-
 * byte sectors; UDF's volume recognition sequence starts at the same place
 * (ECMA-167 2/8.3), one descriptor per sector of the medium, so at 2048-byte
 * steps or at steps of the larger block size.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "bytes.h"
#include "checked.h"
#include "probe.h"
#include "probe_formats.h"
#include "probe_util.h"

#define SECTOR 512u

/* ------------------------------------------------------------ CRC32 */

/* CRC-32 as UEFI uses it (ISO 3309 / IEEE 802.3: reflected polynomial
 * 0xEDB88320, initial value and final xor 0xFFFFFFFF).  crc is the running
 * value: pass 0 first, then what the previous call returned. */
uint32_t sif_crc32(uint32_t crc, const uint8_t *p, size_t len)
{
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* ------------------------------------------------------------ boot sectors */

static bool sif_pow2_in(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v >= lo && v <= hi && sif_is_pow2(v);
}

/* True when the boot sector s is a filesystem's volume boot record rather
 * than a partition table: NTFS and exFAT by their OEM names; FAT by an x86
 * jump followed by a BIOS parameter block (OpenStack's test, two FATs on a
 * fixed-disk medium, or a plausible one) or the FAT type name. */
static bool sif_is_vbr(const uint8_t *s)
{
    bool jump = (s[0] == 0xEB && s[2] == 0x90) || s[0] == 0xE9;
    uint32_t bps = sif_le16(s + 11), spc = s[13], reserved = sif_le16(s + 14), fats = s[16], media = s[21];
    bool bpb;

    if (!memcmp(s + 3, "NTFS    ", 8) || !memcmp(s + 3, "EXFAT   ", 8))
        return true;
    if (!jump)
        return false;
    if (fats == 2 && media == 0xF8)
        return true;
    bpb = sif_pow2_in(bps, 512, 4096) && sif_pow2_in(spc, 1, 128) && reserved >= 1 && (fats == 1 || fats == 2) &&
          (media == 0xF0 || media >= 0xF8);
    return bpb || !memcmp(s + 54, "FAT12   ", 8) || !memcmp(s + 54, "FAT16   ", 8) ||
           !memcmp(s + 54, "FAT     ", 8) || !memcmp(s + 82, "FAT32   ", 8);
}

/* ------------------------------------------------------------ MBR and GPT */

enum sif_table { SIF_TABLE_NONE, SIF_TABLE_MBR, SIF_TABLE_GPT };

struct sif_table_info {
    enum sif_table kind;
    bool unsafe;
    uint64_t where;
    char detail[SIF_HIT_DETAIL];
};

static bool sif_table_bad(struct sif_table_info *ti, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool sif_table_bad(struct sif_table_info *ti, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ti->detail, sizeof(ti->detail), fmt, ap);
    va_end(ap);
    ti->unsafe = true;
    return false;
}

/* The largest GPT partition entry array inspected: UEFI's minimum is
 * 16 KiB (128 entries of 128 bytes) and partitioning tools write exactly
 * that; an array the engine cannot read whole fails the checks. */
#define SIF_GPT_ARRAY_MAX SIF_PROBE_REGION

int sif_r_gpt(const struct sif_probe_input *in, struct sif_probe_region *out, int max)
{
    const uint8_t *h = sif_head_at(in, SECTOR, 92);
    uint64_t off, len;
    int n = 0;

    if (h && !memcmp(h, "EFI PART", 8) && sif_mul_u64(sif_le64(h + 72), SECTOR, &off)) {
        len = (uint64_t)sif_le32(h + 80) * sif_le32(h + 84);
        if (len <= SIF_GPT_ARRAY_MAX)
            sif_want(out, max, &n, off, len);
    }
    return n;
}

/* The UEFI checks of the GPT header at LBA 1; false (with ti->detail and
 * ti->unsafe set) when one fails. */
static bool sif_gpt_check(const struct sif_probe_input *in, struct sif_table_info *ti)
{
    static const uint8_t zero4[4] = { 0, 0, 0, 0 };
    const uint8_t *h = sif_head_at(in, SECTOR, 92), *arr;
    uint32_t hsize, stored, crc, nent, esize, used = 0;
    uint64_t nsec = in->size / SECTOR, alt, first, last, lba, arr_off, arr_len;

    if (!h)
        return sif_table_bad(ti, "GPT header cut short");
    hsize = sif_le32(h + 12);
    if (hsize < 92 || hsize > SECTOR)
        return sif_table_bad(ti, "GPT header size %u is not within 92..512", (unsigned)hsize);
    h = sif_head_at(in, SECTOR, hsize);
    if (!h)
        return sif_table_bad(ti, "GPT header cut short");
    stored = sif_le32(h + 16);
    crc = sif_crc32(0, h, 16);
    crc = sif_crc32(crc, zero4, 4);
    crc = sif_crc32(crc, h + 20, hsize - 20);
    if (crc != stored)
        return sif_table_bad(ti, "GPT header CRC32 is 0x%08x, computed 0x%08x", (unsigned)stored, (unsigned)crc);
    if (sif_le64(h + 24) != 1)
        return sif_table_bad(ti, "GPT header says it is at LBA %llu, not 1", (unsigned long long)sif_le64(h + 24));
    alt = sif_le64(h + 32);
    first = sif_le64(h + 40);
    last = sif_le64(h + 48);
    lba = sif_le64(h + 72);
    nent = sif_le32(h + 80);
    esize = sif_le32(h + 84);
    if (esize < 128 || esize % 128 || !sif_is_pow2(esize / 128))
        return sif_table_bad(ti, "GPT partition entry size %u is not 128 times a power of 2", (unsigned)esize);
    arr_len = (uint64_t)nent * esize;
    if (lba < 2 || !sif_mul_u64(lba, SECTOR, &arr_off) || !sif_range_ok(arr_off, arr_len, in->size))
        return sif_table_bad(ti, "GPT partition entry array (LBA %llu, %u entries of %u bytes) is not inside the disk",
                             (unsigned long long)lba, (unsigned)nent, (unsigned)esize);
    if (alt == 1 || alt >= nsec)
        return sif_table_bad(ti, "GPT backup header LBA %llu is not inside the disk", (unsigned long long)alt);
    if (first > last || last >= nsec)
        return sif_table_bad(ti, "GPT usable LBAs %llu..%llu are not inside the disk", (unsigned long long)first,
                             (unsigned long long)last);
    /* the array itself: it normally follows the header at LBA 2; elsewhere
     * the engine read it as an extra region (sif_r_gpt) */
    if (arr_len > SIF_GPT_ARRAY_MAX)
        return sif_table_bad(ti, "GPT partition entry array of %llu bytes is larger than %u", (unsigned long long)arr_len,
                             (unsigned)SIF_GPT_ARRAY_MAX);
    arr = sif_content_at(in, arr_off, arr_len);
    if (!arr)
        return sif_table_bad(ti, "GPT partition entry array at LBA %llu was not inspected", (unsigned long long)lba);
    {
        stored = sif_le32(h + 88);
        crc = sif_crc32(0, arr, (size_t)arr_len);
        if (crc != stored)
            return sif_table_bad(ti, "GPT partition entry array CRC32 is 0x%08x, computed 0x%08x", (unsigned)stored,
                                 (unsigned)crc);
        for (uint32_t i = 0; i < nent; i++) {
            const uint8_t *e = arr + (size_t)i * esize;
            uint64_t s, end;
            bool in_use = false;

            for (int k = 0; k < 16; k++)
                in_use |= e[k] != 0;
            if (!in_use)
                continue;
            used++;
            s = sif_le64(e + 32);
            end = sif_le64(e + 40);
            if (s > end || s < first || end > last)
                return sif_table_bad(ti, "GPT partition %u (LBA %llu..%llu) is not within the usable LBAs %llu..%llu",
                                     (unsigned)i + 1, (unsigned long long)s, (unsigned long long)end,
                                     (unsigned long long)first, (unsigned long long)last);
        }
        snprintf(ti->detail, sizeof(ti->detail), "%u partition%s in %u entries", (unsigned)used,
                 used == 1 ? "" : "s", (unsigned)nent);
    }
    return true;
}

/* Classifies sector 0 (and LBA 1): no table, an MBR or a GPT, and whether
 * the safety checks pass. */
static void sif_table_classify(const struct sif_probe_input *in, struct sif_table_info *ti)
{
    const uint8_t *s = sif_head_at(in, 0, SECTOR);
    int used = 0, protective = -1;
    struct sif_text t;

    memset(ti, 0, sizeof(*ti));
    if (!s || s[510] != 0x55 || s[511] != 0xAA || sif_is_vbr(s))
        return;
    ti->kind = SIF_TABLE_MBR;
    for (int i = 0; i < 4; i++) {
        const uint8_t *e = s + 446 + 16 * i;

        if (e[0] != 0x00 && e[0] != 0x80) {
            sif_table_bad(ti, "MBR partition %d has boot flag 0x%02x (not 0x00 or 0x80)", i + 1, e[0]);
            return;
        }
        if (e[4] == 0)
            continue;
        used++;
        if (e[4] == 0xEE && protective < 0)
            protective = i;
    }
    if (!used) {
        sif_table_bad(ti, "MBR defines no partition");
        return;
    }
    if (protective >= 0) {
        const uint8_t *e = s + 446 + 16 * protective;

        if (protective != 0 || used != 1) {
            sif_table_bad(ti,
                          "protective MBR: the 0xEE entry must be alone in slot 1 (found in slot %d, %d slot%s in use)",
                          protective + 1, used, used == 1 ? "" : "s");
            return;
        }
        if (e[1] != 0x00 || e[2] != 0x02 || e[3] != 0x00) {
            sif_table_bad(ti, "protective MBR: the 0xEE entry starts at CHS %02x %02x %02x, not 00 02 00", e[1], e[2],
                          e[3]);
            return;
        }
        if (sif_le32(e + 8) != 1) {
            sif_table_bad(ti, "protective MBR: the 0xEE entry starts at LBA %u, not 1", (unsigned)sif_le32(e + 8));
            return;
        }
        if (sif_head_is(in, SECTOR, "EFI PART", 8)) {
            ti->kind = SIF_TABLE_GPT;
            ti->where = SECTOR;
            sif_gpt_check(in, ti);
            return;
        }
        snprintf(ti->detail, sizeof(ti->detail), "protective MBR without a GPT header at LBA 1");
        return;
    }
    sif_text_init(&t, ti->detail, sizeof(ti->detail));
    sif_text_add(&t, "%d partition%s, types", used, used == 1 ? "" : "s");
    for (int i = 0; i < 4; i++) {
        const uint8_t *e = s + 446 + 16 * i;

        if (e[4])
            sif_text_add(&t, " 0x%02x%s", e[4], e[0] == 0x80 ? " (active)" : "");
    }
}

bool sif_m_mbr(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    struct sif_table_info ti;

    sif_table_classify(in, &ti);
    if (ti.kind != SIF_TABLE_MBR)
        return false;
    hit->where = ti.where;
    hit->unsafe = ti.unsafe;
    snprintf(hit->detail, sizeof(hit->detail), "%s", ti.detail);
    return true;
}

bool sif_m_gpt(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    struct sif_table_info ti;

    sif_table_classify(in, &ti);
    if (ti.kind != SIF_TABLE_GPT)
        return false;
    hit->where = ti.where;
    hit->unsafe = ti.unsafe;
    snprintf(hit->detail, sizeof(hit->detail), "%s", ti.detail);
    return true;
}

/* ------------------------------------------------------------ ISO 9660, UDF */

#define VRS_START 32768u

bool sif_m_iso(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    const uint8_t *d = sif_head_at(in, VRS_START, 7), *pvd;
    struct sif_text t;

    /* descriptor types: boot record, primary, supplementary, partition,
     * set terminator */
    if (!d || memcmp(d + 1, "CD001", 5) != 0 || (d[0] > 3 && d[0] != 255))
        return false;
    hit->where = VRS_START + 1;
    sif_text_init(&t, hit->detail, sizeof(hit->detail));
    pvd = d[0] == 1 ? sif_head_at(in, VRS_START, 132) : NULL;
    if (pvd) {
        size_t n = 32;

        while (n && (pvd[40 + n - 1] == ' ' || pvd[40 + n - 1] == 0))
            n--;
        sif_text_add(&t, "volume \"");
        sif_text_bytes(&t, pvd + 40, n, 32);
        sif_text_add(&t, "\", %u blocks of %u bytes", (unsigned)sif_le32(pvd + 80), (unsigned)sif_le16(pvd + 128));
    } else {
        sif_text_add(&t, "volume descriptor type %u", d[0]);
    }
    return true;
}

/* The volume structure descriptors a recognition sequence may hold
 * (ECMA-167 2/9: ISO 9660's, the extended area's begin and end, boot,
 * NSR). */
static bool sif_vsd_known(const uint8_t *id)
{
    static const char *const ids[] = { "CD001", "CDW02", "BEA01", "BOOT2", "TEA01", "NSR02", "NSR03" };

    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        if (!memcmp(id, ids[i], 5))
            return true;
    return false;
}

bool sif_m_udf(const struct sif_probe_input *in, struct sif_probe_hit *hit)
{
    static const uint32_t steps[] = { 2048, 4096, 8192, 16384, 32768 };

    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        uint64_t off = VRS_START;

        for (int i = 0; i < 64; i++, off += steps[k]) {
            const uint8_t *d = sif_head_at(in, off, 7);

            if (!d || !sif_vsd_known(d + 1))
                break;
            if (!memcmp(d + 1, "NSR0", 4)) {
                hit->where = off + 1;
                snprintf(hit->detail, sizeof(hit->detail), "%.5s descriptor at %llu (%u-byte sectors)",
                         (const char *)d + 1, (unsigned long long)off, (unsigned)steps[k]);
                return true;
            }
        }
    }
    return false;
}
