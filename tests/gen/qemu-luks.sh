#!/bin/bash
# Make a raw LUKS1 image with qemu-img (`qemu-img convert -f raw -O luks`).
#
# usage: qemu-luks.sh [options] OUTDIR NAME KEYFILE [PLAINDIR]
#   --size-kib N     random plaintext of N KiB (default 4096)
#   --payload FILE   use FILE as the plaintext instead (zero-padded to 512 bytes)
#   -o OPTS          extra qemu-img luks creation options, e.g.
#                    cipher-alg=aes-256,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256
# The expected plaintext (PLAINDIR/NAME.plain) is the raw file converted from.
# Checks: the image decrypts to it with qemu-img (convert back to raw) and with
# luks-crypt.py (volume key dumped by cryptsetup; skipped with GEN_VERIFY=0);
# luksDump says version 1.
# qemu's PBKDF timing fails spuriously on VMs ("Unable to get accurate CPU
# usage"): creation is retried.
set -u
. "$(dirname "$0")/common.sh"

sizekib=4096 payload='' extra=''
while [ $# -gt 0 ]; do
    case $1 in
    --size-kib) sizekib=$2; shift ;;
    --payload) payload=$2; shift ;;
    -o) extra=",$2"; shift ;;
    --) shift; break ;;
    -*) gen_die "unknown option $1" ;;
    *) break ;;
    esac
    shift
done
gen_args_tail "$@"
gen_need qemu-img cryptsetup
gen_tmpdir
pass=$(gen_passfile "$GEN_KEY")

plain="$GEN_TMP/plain"
if [ -n "$payload" ]; then
    cp "$payload" "$plain" || gen_die "cannot read payload $payload"
    sz=$(stat -c %s "$plain")
    [ $((sz % 512)) -eq 0 ] || truncate -s $(((sz / 512 + 1) * 512)) "$plain"
else
    gen_plaintext "$plain" $((sizekib * 1024)) "$GEN_NAME"
fi

img="$GEN_TMP/img"
gen_qemu_retry qemu-img convert -f raw -O luks \
    --object "secret,id=s,file=$pass,format=raw" \
    -o "key-secret=s,iter-time=10$extra" "$plain" "$img" ||
    gen_die "qemu-img convert -O luks failed"

ver=$(cryptsetup luksDump "$img" 2>/dev/null | sed -n 's/^Version:[[:space:]]*//p')
[ "$ver" = 1 ] || gen_die "luksDump says version '$ver', wanted 1"
gen_qemu_check_luks1 "$img" "$pass" "$plain"
if [ "${GEN_VERIFY:-1}" = 1 ]; then
    $PYTHON "$GEN_DIR/luks-crypt.py" decrypt "$img" "$GEN_TMP/check" --key-file "$pass" ||
        gen_die "independent decryption failed"
    cmp -s "$GEN_TMP/check" "$plain" || gen_die "independent decryption does not match the plaintext"
    rm -f "$GEN_TMP/check"
fi

gen_install "$plain" "$GEN_PLAINDIR/$GEN_NAME.plain"
gen_install "$img" "$GEN_OUT/$GEN_NAME"
