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
    { "qcow2", SIF_CLASS_IMAGE, sif_m_qcow2, sif_r_qcow },
    { "qcow", SIF_CLASS_IMAGE, sif_m_qcow, sif_r_qcow },
    { "qed", SIF_CLASS_IMAGE, sif_m_qed, sif_r_qed },
    { "vmdk", SIF_CLASS_IMAGE, sif_m_vmdk, sif_r_vmdk },
    { "vdi", SIF_CLASS_IMAGE, sif_m_vdi, NULL },
    { "vhd", SIF_CLASS_IMAGE, sif_m_vpc, NULL },
    { "vhdx", SIF_CLASS_IMAGE, sif_m_vhdx, NULL },
    { "parallels", SIF_CLASS_IMAGE, sif_m_parallels, NULL },
    { "bochs", SIF_CLASS_IMAGE, sif_m_bochs, NULL },
    { "luks", SIF_CLASS_IMAGE, sif_m_luks, NULL },
    { "cloop", SIF_CLASS_IMAGE, sif_m_cloop, NULL },
    { "dmg", SIF_CLASS_IMAGE, sif_m_dmg, NULL },
    /* raw disk layouts: raw content when their safety checks pass */
    { "mbr", SIF_CLASS_LAYOUT, sif_m_mbr, NULL },
    { "gpt", SIF_CLASS_LAYOUT, sif_m_gpt, sif_r_gpt },
    { "iso", SIF_CLASS_LAYOUT, sif_m_iso, NULL },
    { "udf", SIF_CLASS_LAYOUT, sif_m_udf, NULL },
    { NULL, SIF_CLASS_IMAGE, NULL, NULL },
};
