/* fmt_plain.c: an unencrypted file that no format claims, served only when
 * the policy says `"unencrypted": "serve"` (a forensic store of raw disk
 * images, say).  The file is the content: it gets the same inner
 * inspection as a decrypted plaintext, so a VMDK descriptor or a qcow2
 * header in it is still rejected.  Never in sif_formats[]: image.c picks
 * it when nothing else matched. */
#include "config.h"

#include <errno.h>

#include "image.h"

static const char *sif_plain_outer_name(const uint8_t *head, size_t head_len)
{
    (void)head;
    (void)head_len;
    return "raw";
}

static bool sif_plain_detect(const uint8_t *head, size_t head_len, uint64_t file_size)
{
    (void)head;
    (void)head_len;
    (void)file_size;
    return false;
}

static int sif_plain_open(struct sif_image *img, const struct sif_inspect_env *env, const uint8_t *head,
                          size_t head_len)
{
    (void)env;
    (void)head;
    (void)head_len;
    img->plain = true;
    img->size = (uint64_t)img->st.st_size;
    img->allocated = (uint64_t)img->st.st_blocks * 512 < img->size ? (uint64_t)img->st.st_blocks * 512 : img->size;
    /* no cipher units: any offset, any length */
    img->unit = 1;
    return 0;
}

static int sif_plain_read(struct sif_image *img, struct sif_crypt_ctx *ctx, uint8_t *buf, size_t len, uint64_t off)
{
    (void)ctx;
    return sif_pread_full(img->fd, buf, len, off);
}

const struct sif_format sif_format_plain = {
    .name = "raw",
    .probe = NULL,
    .outer_name = sif_plain_outer_name,
    .detect = sif_plain_detect,
    .open = sif_plain_open,
    .read = sif_plain_read,
};
