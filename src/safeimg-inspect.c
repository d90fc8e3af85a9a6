/* safeimg-inspect: the inspection of safeimgfs, without mounting.
 *
 * Exit status: 0 when every image is accepted, 1 when any is rejected,
 * 2 on a usage or I/O error.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "declared.h"
#include "image.h"
#include "keys.h"
#include "log.h"
#include "policy.h"
#include "secmem.h"
#include "store.h"
#include "unlock.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: safeimg-inspect [--keyfile FILE | --keydir DIR | --key-command PROG] [--key-format raw|hex]\n"
            "                       [--policy FILE] [--json] [--unlock-timeout S] IMAGE...\n"
            "Inspects images (LUKS1, LUKS2, qcow2 with LUKS; unencrypted ones when the policy serves them)\n"
            "as safeimgfs would and prints each verdict.\n"
            "  --keyfile FILE  the passphrase of every image\n"
            "  --keydir DIR    the passphrase of IMAGE is DIR/KEY_ID (os_encrypt_key_id in IMAGE.json)\n"
            "                  or DIR/NAME.key (NAME = basename of IMAGE)\n"
            "  --key-command PROG  run PROG NAME KEY_ID (no shell); the passphrase is its output\n"
            "  --key-format hex    the key is a secret whose lowercase hex is the passphrase\n"
            "  --json          one JSON document per image, one per line\n"
            "  --unlock-timeout S  kill a key slot unlock after S seconds (default 60)\n"
            "  --policy FILE   the policy (safeimgfs.conf(5)); --print-policy shows the one in force\n"
            "  --help          this text; --version  the version\n"
            "Exit status: 0 all accepted, 1 any rejected, 2 usage or I/O error.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "keyfile", required_argument, NULL, 'k' },
        { "keydir", required_argument, NULL, 'K' },
        { "key-command", required_argument, NULL, 'c' },
        { "key-format", required_argument, NULL, 'f' },
        { "json", no_argument, NULL, 'j' },
        { "unlock-timeout", required_argument, NULL, 't' },
        { "policy", required_argument, NULL, 'p' },
        { "print-policy", no_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *keyfile = NULL, *keydir = NULL, *key_command = NULL, *key_format = NULL, *policy_file = NULL;
    bool print_policy = false;
    struct sif_keysrc keys;
    struct sif_policy policy;
    struct sif_inspect_env env = { &policy, &keys };
    bool json = false;
    long unlock_timeout = 0;
    int c, status = 0;
    char err[256];

    sif_log_init("safeimg-inspect", false);
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            keyfile = optarg;
            break;
        case 'K':
            keydir = optarg;
            break;
        case 'c':
            key_command = optarg;
            break;
        case 'f':
            key_format = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'p':
            policy_file = optarg;
            break;
        case 'P':
            print_policy = true;
            break;
        case 't': {
            char *end;

            unlock_timeout = strtol(optarg, &end, 10);
            if (*end || unlock_timeout < 1 || unlock_timeout > 3600) {
                fprintf(stderr, "safeimg-inspect: --unlock-timeout takes 1..3600 seconds\n");
                return 2;
            }
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("safeimg-inspect %s\n", PACKAGE_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc && !print_policy) {
        usage(stderr);
        return 2;
    }
    if (sif_harden_process() != 0)
        sif_warn("cannot disable core dumps");
    sif_policy_default(&policy);
    err[0] = 0;
    if (policy_file && sif_policy_load(&policy, policy_file, err, sizeof(err)) != 0) {
        sif_err("%s", err);
        return 2;
    }
    /* the command line wins over the file */
    if (unlock_timeout)
        sif_policy_set_unlock_timeout(&policy, (uint32_t)unlock_timeout);
    if (print_policy) {
        char *text = NULL;

        if (sif_policy_to_json(&policy, &text) != 0) {
            sif_err("out of memory");
            return 2;
        }
        fputs(text, stdout);
        free(text);
        if (optind >= argc)
            return 0;
    }
    err[0] = 0;
    if (sif_keysrc_open_opts(&keys,
                             &(struct sif_key_opts){ keyfile, keydir, key_command, key_format,
                                                     policy.key_command_timeout_s },
                             err, sizeof(err)) != 0) {
        sif_err("%s", err);
        sif_keysrc_close(&keys);
        return 2;
    }
    if (sif_unlock_init() != 0) {
        sif_err("cannot start the unlock helper");
        return 2;
    }
    if (sif_lock_all_memory() != 0)
        sif_debug("memory stays unlocked");
    for (int i = optind; i < argc; i++) {
        char *copy = strdup(argv[i]), *shown;
        const char *base = copy ? basename(copy) : argv[i];
        struct sif_image *img = NULL;
        int r;

        /* The same name rule as the mount: a name that could forge an
         * output line or break the JSON is shown escaped and refused. */
        shown = sif_store_escape_name(base);
        r = shown ? sif_image_open(AT_FDCWD, argv[i], base, &img) : -ENOMEM;
        if (r) {
            sif_err("%s: cannot open (%s)", shown ? shown : "?", strerror(-r));
            status = 2;
            free(shown);
            free(copy);
            continue;
        }
        if (sif_store_name_ok(base)) {
            struct sif_verdict dv;
            char *dir = strdup(argv[i]);
            int dfd = dir ? open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;

            free(shown);
            shown = strdup(base);
            sif_verdict_init(&dv);
            /* The sidecar NAME.json beside the image, as in a store. */
            if (dfd < 0 || sif_declared_load(dfd, base, &img->declared, &dv) != 0) {
                if (dv.state != SIF_REJECTED)
                    sif_reject(&dv, -EIO, "declared.invalid", "cannot open the image's directory");
                img->verdict = dv;
            } else {
                sif_image_inspect(img, &env);
            }
            if (dfd >= 0)
                close(dfd);
            free(dir);
        } else {
            sif_reject(&img->verdict, -EINVAL, "name.invalid",
                       "the file name is not valid UTF-8 or contains control characters");
        }
        base = shown ? shown : "?";
        if (json) {
            struct json_object *o = sif_verdict_json(base, &img->verdict);

            printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
            json_object_put(o);
        } else {
            char line[600];

            sif_verdict_line(base, &img->verdict, line, sizeof(line));
            printf("%s\n", line);
        }
        if (img->verdict.state != SIF_ACCEPTED && status == 0)
            status = 1;
        sif_image_free(img);
        free(shown);
        free(copy);
    }
    fflush(stdout);
    sif_keysrc_close(&keys);
    sif_unlock_shutdown();
    return status;
}
