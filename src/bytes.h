/* bytes.h: byte-order getters for untrusted on-disk data.
 *
 * Every multi-byte field read from an image goes through one of these, so
 * that no code casts a packed struct over bytes it does not trust.
 */
#ifndef SIF_BYTES_H
#define SIF_BYTES_H

#include <stdint.h>

static inline uint16_t sif_be16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t sif_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t sif_be64(const uint8_t *p)
{
    return (uint64_t)sif_be32(p) << 32 | sif_be32(p + 4);
}

static inline uint16_t sif_le16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[1] << 8 | p[0]);
}

static inline uint32_t sif_le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static inline uint64_t sif_le64(const uint8_t *p)
{
    return (uint64_t)sif_le32(p + 4) << 32 | sif_le32(p);
}

static inline void sif_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

#endif
