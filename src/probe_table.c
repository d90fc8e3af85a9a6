/* probe_table.c: the formats the engine knows, one entry each. */
#include "config.h"

#include <stddef.h>

#include "probe.h"
#include "probe_formats.h"

const struct sif_probe sif_probes[] = {
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
    { NULL, SIF_CLASS_IMAGE, NULL },
};

