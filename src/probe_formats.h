/* probe_formats.h: match functions for probe_table.c (see probe.h). */
#ifndef SIF_PROBE_FORMATS_H
#define SIF_PROBE_FORMATS_H

#include <stdbool.h>

#include "probe.h"

bool sif_m_qcow2(const struct sif_probe_input *in, struct sif_probe_hit *hit);
bool sif_m_qcow(const struct sif_probe_input *in, struct sif_probe_hit *hit);
bool sif_m_qed(const struct sif_probe_input *in, struct sif_probe_hit *hit);
bool sif_m_vmdk(const struct sif_probe_input *in, struct sif_probe_hit *hit);
bool sif_m_vdi(const struct sif_probe_input *in, struct sif_probe_hit *hit);
bool sif_m_vpc(const struct sif_probe_input *in, struct sif_probe_hit *hit);
bool sif_m_vhdx(const struct sif_probe_input *in, struct sif_probe_hit *hit);
bool sif_m_parallels(const struct sif_probe_input *in, struct sif_probe_hit *hit);
bool sif_m_bochs(const struct sif_probe_input *in, struct sif_probe_hit *hit);
bool sif_m_luks(const struct sif_probe_input *in, struct sif_probe_hit *hit);
bool sif_m_cloop(const struct sif_probe_input *in, struct sif_probe_hit *hit);
bool sif_m_dmg(const struct sif_probe_input *in, struct sif_probe_hit *hit);

#endif
