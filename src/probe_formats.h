/* probe_formats.h: match functions for probe_table.c (see probe.h).
 *
 * Images: probe_formats.c, and probe_vmdk.c for VMDK.  Layouts (partition
 * tables, disc filesystems): probe_layout.c.  Each is pure and reads only
 * the head and tail regions, within their lengths.
 */
#ifndef SIF_PROBE_FORMATS_H
#define SIF_PROBE_FORMATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "probe.h"

/* IMAGE class */
/* Region functions (see struct sif_probe.regions). */
int sif_r_qcow(const struct sif_probe_input *in, struct sif_probe_region *out, int max);
int sif_r_qed(const struct sif_probe_input *in, struct sif_probe_region *out, int max);
int sif_r_vmdk(const struct sif_probe_input *in, struct sif_probe_region *out, int max);
int sif_r_gpt(const struct sif_probe_input *in, struct sif_probe_region *out, int max);

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

/* LAYOUT class */
bool sif_m_mbr(const struct sif_probe_input *in, struct sif_probe_hit *hit);
bool sif_m_gpt(const struct sif_probe_input *in, struct sif_probe_hit *hit);
bool sif_m_iso(const struct sif_probe_input *in, struct sif_probe_hit *hit);
bool sif_m_udf(const struct sif_probe_input *in, struct sif_probe_hit *hit);

/* CRC-32 as UEFI uses it (GPT headers and entry arrays): start with crc 0,
 * feed further pieces with the value returned. */
uint32_t sif_crc32(uint32_t crc, const uint8_t *p, size_t len);

#endif
