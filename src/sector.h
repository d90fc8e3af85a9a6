/* sector.h: sector decryption, the only user of OpenSSL's ciphers.
 *
 * A struct sif_crypt holds one volume key (in locked memory) and is shared
 * read-only between threads; each thread decrypts through its own
 * struct sif_crypt_ctx, whose key schedule is set once, so a data unit costs
 * one IV re-arm and one EVP update.
 *
 * IVs count 512-byte units whatever the data unit size (LUKS2 with 4096-byte
 * sectors uses IV 8k for unit k; qcow2 uses host offset / 512).
 */
#ifndef SIF_SECTOR_H
#define SIF_SECTOR_H

#include <stddef.h>
#include <stdint.h>

enum sif_cipher_kind { SIF_CIPHER_XTS_PLAIN64, SIF_CIPHER_CBC_ESSIV_SHA256 };

struct sif_cipher_spec {
    const char *cipher;    /* LUKS cipher name, "aes" */
    const char *mode;      /* LUKS cipher mode, "xts-plain64" */
    enum sif_cipher_kind kind;
    uint32_t key_bytes;    /* volume key length */
};

/* The allow-list entry for (cipher, mode, key_bytes), or NULL. */
const struct sif_cipher_spec *sif_cipher_lookup(const char *cipher, const char *mode,
                                                uint32_t key_bytes);

struct sif_crypt;
struct sif_crypt_ctx;

/* Copies key into locked memory.  sector_size is the data unit (512..4096,
 * a power of two).  XTS keys whose halves are equal are refused (-EINVAL):
 * OpenSSL 3 decrypts with them but they void XTS's security. */
int sif_crypt_new(const struct sif_cipher_spec *spec, const uint8_t *key, size_t key_len,
                  uint32_t sector_size, struct sif_crypt **out);
void sif_crypt_free(struct sif_crypt *c);
uint32_t sif_crypt_sector_size(const struct sif_crypt *c);

int sif_crypt_ctx_new(const struct sif_crypt *c, struct sif_crypt_ctx **out);
void sif_crypt_ctx_free(struct sif_crypt_ctx *ctx);

/* Decrypts len bytes in place (len a multiple of the sector size); the first
 * data unit has IV iv512 (in 512-byte units), the next iv512 +
 * sector_size / 512, and so on.  Returns 0 or -EIO. */
int sif_crypt_decrypt(struct sif_crypt_ctx *ctx, uint8_t *buf, size_t len, uint64_t iv512);

#endif
