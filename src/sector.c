/* sector.c: per-thread OpenSSL contexts and LUKS IV generation. */
#include "config.h"

#include "sector.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "secmem.h"

/* The allow-list: everything else is refused before a key is derived. */
static const struct sif_cipher_spec sif_ciphers[] = {
    { "aes", "xts-plain64", SIF_CIPHER_XTS_PLAIN64, 32 },      /* AES-128-XTS */
    { "aes", "xts-plain64", SIF_CIPHER_XTS_PLAIN64, 64 },      /* AES-256-XTS */
    { "aes", "cbc-essiv:sha256", SIF_CIPHER_CBC_ESSIV_SHA256, 16 },
    { "aes", "cbc-essiv:sha256", SIF_CIPHER_CBC_ESSIV_SHA256, 24 },
    { "aes", "cbc-essiv:sha256", SIF_CIPHER_CBC_ESSIV_SHA256, 32 },
};

#define SIF_KEY_MAX 64

struct sif_crypt {
    const struct sif_cipher_spec *spec;
    uint32_t sector_size;
    uint8_t *key;       /* secure memory: key_bytes, then 32 bytes ESSIV salt */
};

struct sif_crypt_ctx {
    const struct sif_crypt *c;
    EVP_CIPHER_CTX *data;
    EVP_CIPHER_CTX *essiv; /* CBC-ESSIV only: AES-ECB keyed with SHA-256(key) */
};

const struct sif_cipher_spec *sif_cipher_lookup(const char *cipher, const char *mode,
                                                uint32_t key_bytes)
{
    for (size_t i = 0; i < sizeof(sif_ciphers) / sizeof(sif_ciphers[0]); i++) {
        const struct sif_cipher_spec *s = &sif_ciphers[i];

        if (!strcmp(s->cipher, cipher) && !strcmp(s->mode, mode) && s->key_bytes == key_bytes)
            return s;
    }
    return NULL;
}

static const EVP_CIPHER *sif_data_cipher(const struct sif_cipher_spec *s)
{
    if (s->kind == SIF_CIPHER_XTS_PLAIN64)
        return s->key_bytes == 64 ? EVP_aes_256_xts() : EVP_aes_128_xts();
    switch (s->key_bytes) {
    case 16:
        return EVP_aes_128_cbc();
    case 24:
        return EVP_aes_192_cbc();
    default:
        return EVP_aes_256_cbc();
    }
}

int sif_crypt_new(const struct sif_cipher_spec *spec, const uint8_t *key, size_t key_len,
                  uint32_t sector_size, struct sif_crypt **out)
{
    struct sif_crypt *c;

    *out = NULL;
    if (!spec || key_len != spec->key_bytes || key_len > SIF_KEY_MAX)
        return -EINVAL;
    if (sector_size < 512 || sector_size > 4096 || (sector_size & (sector_size - 1)))
        return -EINVAL;
    if (spec->kind == SIF_CIPHER_XTS_PLAIN64 &&
        CRYPTO_memcmp(key, key + key_len / 2, key_len / 2) == 0)
        return -EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->key = sif_secure_alloc(SIF_KEY_MAX + 32);
    if (!c->key) {
        free(c);
        return -ENOMEM;
    }
    c->spec = spec;
    c->sector_size = sector_size;
    memcpy(c->key, key, key_len);
    if (spec->kind == SIF_CIPHER_CBC_ESSIV_SHA256) {
        unsigned int n = 0;

        if (!EVP_Digest(key, key_len, c->key + SIF_KEY_MAX, &n, EVP_sha256(), NULL) || n != 32) {
            sif_crypt_free(c);
            return -EIO;
        }
    }
    *out = c;
    return 0;
}

void sif_crypt_free(struct sif_crypt *c)
{
    if (!c)
        return;
    sif_secure_free(c->key);
    free(c);
}

uint32_t sif_crypt_sector_size(const struct sif_crypt *c)
{
    return c->sector_size;
}

int sif_crypt_ctx_new(const struct sif_crypt *c, struct sif_crypt_ctx **out)
{
    struct sif_crypt_ctx *ctx = calloc(1, sizeof(*ctx));

    *out = NULL;
    if (!ctx)
        return -ENOMEM;
    ctx->c = c;
    ctx->data = EVP_CIPHER_CTX_new();
    if (!ctx->data ||
        !EVP_DecryptInit_ex(ctx->data, sif_data_cipher(c->spec), NULL, c->key, NULL))
        goto fail;
    EVP_CIPHER_CTX_set_padding(ctx->data, 0);
    if (c->spec->kind == SIF_CIPHER_CBC_ESSIV_SHA256) {
        ctx->essiv = EVP_CIPHER_CTX_new();
        if (!ctx->essiv ||
            !EVP_EncryptInit_ex(ctx->essiv, EVP_aes_256_ecb(), NULL, c->key + SIF_KEY_MAX, NULL))
            goto fail;
        EVP_CIPHER_CTX_set_padding(ctx->essiv, 0);
    }
    *out = ctx;
    return 0;
fail:
    sif_crypt_ctx_free(ctx);
    return -EIO;
}

void sif_crypt_ctx_free(struct sif_crypt_ctx *ctx)
{
    if (!ctx)
        return;
    EVP_CIPHER_CTX_free(ctx->data);
    EVP_CIPHER_CTX_free(ctx->essiv);
    free(ctx);
}

/* The IV of one data unit: plain64 is the little-endian unit number padded
 * with zeros; ESSIV encrypts that block with the hashed key. */
static int sif_make_iv(struct sif_crypt_ctx *ctx, uint64_t iv512, uint8_t iv[16])
{
    memset(iv, 0, 16);
    sif_put_le64(iv, iv512);
    if (ctx->essiv) {
        uint8_t out[32];
        int n = 0;

        if (!EVP_EncryptUpdate(ctx->essiv, out, &n, iv, 16) || n != 16)
            return -EIO;
        memcpy(iv, out, 16);
    }
    return 0;
}

int sif_crypt_decrypt(struct sif_crypt_ctx *ctx, uint8_t *buf, size_t len, uint64_t iv512)
{
    const size_t unit = ctx->c->sector_size;
    const uint64_t step = unit / 512;
    uint8_t iv[16];

    if (len % unit)
        return -EINVAL;
    for (size_t off = 0; off < len; off += unit, iv512 += step) {
        int n = 0;

        if (sif_make_iv(ctx, iv512, iv) != 0 ||
            !EVP_DecryptInit_ex(ctx->data, NULL, NULL, NULL, iv) ||
            !EVP_DecryptUpdate(ctx->data, buf + off, &n, buf + off, (int)unit) ||
            (size_t)n != unit)
            return -EIO;
    }
    return 0;
}
