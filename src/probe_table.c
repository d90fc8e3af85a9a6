/* probe_table.c: the formats the engine knows, one entry each.
 *
 * The format name is the check id's suffix (inner.FORMAT) and, for the
 * formats qemu knows, what `qemu-img info` calls them (except "vhd", which
 * qemu calls "vpc").  Keep names stable: operators and tests match on them.
 */
#include "config.h"

#include <stddef.h>

#include "probe.h"
#include "probe_formats.h"

const struct sif_probe sif_probes[] = {
    /* disk images and containers: never raw */
    { "qcow2", SIF_CLASS_IMAGE, sif_m_qcow2 },
    { "qcow", SIF_CLASS_IMAGE, sif_m_qcow },
    { "qed", SIF_CLASS_IMAGE, sif_m_qed },
    { "vmdk", SIF_CLASS_IMAGE, sif_m_vmdk },
    { "vdi", SIF_CLASS_IMAGE, sif_m_vdi },
    { "vhd", SIF_CLASS_IMAGE, sif_m_vpc },
    { "vhdx", SIF_CLASS_IMAGE, sif_m_vhdx },
    { "parallels", SIF_CLASS_IMAGE, sif_m_parallels },
    { "bochs", SIF_CLASS_IMAGE, sif_m_bochs },
    { "luks", SIF_CLASS_IMAGE, sif_m_luks },
    { "cloop", SIF_CLASS_IMAGE, sif_m_cloop },
    { "dmg", SIF_CLASS_IMAGE, sif_m_dmg },
    /* raw disk layouts: raw content when their safety checks pass */
    { "mbr", SIF_CLASS_LAYOUT, sif_m_mbr },
    { "gpt", SIF_CLASS_LAYOUT, sif_m_gpt },
    { "iso", SIF_CLASS_LAYOUT, sif_m_iso },
    { "udf", SIF_CLASS_LAYOUT, sif_m_udf },
    { NULL, SIF_CLASS_IMAGE, NULL },
};
