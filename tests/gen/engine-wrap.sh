#!/bin/bash
# Make an encrypted image whose plaintext is a given file, with qemu-img, the
# way an uploader would: a raw LUKS1 volume (`qemu-img convert -f raw -O luks`)
# or a qcow2+LUKS image (`qemu-img convert -f raw -O qcow2 -o encrypt.format=luks`).
#
# usage: engine-wrap.sh --format luks|qcow2 --payload FILE [--template IMG]
#                       OUTDIR NAME KEYFILE [PLAINDIR]
#   --template IMG  an empty image of that format with the same passphrase,
#                   made once by the caller (engine-wrap.sh --template-only):
#                   the image is a copy of it, resized to the payload's size
#                   (`qemu-img resize`), and the payload goes in with
#                   `qemu-img convert -n -f raw`.  Creating LUKS material costs
#                   qemu seconds of CPU (its PBKDF benchmark runs for at least
#                   0.5 s per key, whatever iter-time says); this way a test
#                   with many payloads pays it once.
# or:    engine-wrap.sh --format luks|qcow2 --template-only IMG KEYFILE
#   makes such a template (512 bytes of plaintext).
# The payload is zero-padded to a whole 512-byte sector; that padded file is
# PLAINDIR/NAME.plain, the exact plaintext a correct view shows.  With
# GEN_VERIFY=1, qemu-img reads the image back and the result must equal it.
# The passphrase reaches qemu only through a 0600 file.  LUKS creation is
# retried on qemu's spurious "Unable to get accurate CPU usage" failure.
set -u
. "$(dirname "$0")/common.sh"

format='' payload='' template='' only=''
while [ $# -gt 0 ]; do
    case $1 in
    --format) format=$2; shift ;;
    --payload) payload=$2; shift ;;
    --template) template=$2; shift ;;
    --template-only) only=$2; shift ;;
    --) shift; break ;;
    -*) gen_die "unknown option $1" ;;
    *) break ;;
    esac
    shift
done
gen_need qemu-img
case $format in
luks) copts=(-O luks) eopt=key-secret driver=luks ;;
qcow2) copts=(-O qcow2) eopt=encrypt.key-secret driver=qcow2 ;;
*) gen_die "--format luks or qcow2 is required" ;;
esac
create_opts() {   # the -o of a new image
    if [ "$format" = luks ]; then echo "key-secret=s,iter-time=10"
    else echo "encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10"; fi
}

if [ -n "$only" ]; then
    [ $# -eq 1 ] || gen_die "usage: engine-wrap.sh --format F --template-only IMG KEYFILE"
    gen_tmpdir
    pass=$(gen_passfile "$1")
    gen_qemu_retry qemu-img create -q -f "$format" --object "secret,id=s,file=$pass,format=raw" \
        -o "$(create_opts)" "$GEN_TMP/img" 512 || gen_die "qemu-img create -f $format failed"
    cp "$GEN_TMP/img" "$only" || gen_die "cannot write $only"
    exit 0
fi

gen_args_tail "$@"
[ -n "$payload" ] || gen_die "--payload FILE is required"
gen_tmpdir
pass=$(gen_passfile "$GEN_KEY")
secret=(--object "secret,id=s,file=$pass,format=raw")

plain="$GEN_TMP/plain" img="$GEN_TMP/img"
cp "$payload" "$plain" || gen_die "cannot read payload $payload"
sz=$(stat -c %s "$plain")
[ $((sz % 512)) -eq 0 ] || truncate -s $(((sz / 512 + 1) * 512)) "$plain"
opts="driver=$driver,file.filename=$img,$eopt=s"
if [ -n "$template" ]; then
    cp "$template" "$img" || gen_die "cannot copy the template $template"
    qemu-img resize -q "${secret[@]}" --image-opts "$opts" "$(stat -c %s "$plain")" ||
        gen_die "qemu-img resize of the template failed"
    qemu-img convert -n -f raw "$plain" "${secret[@]}" --target-image-opts "$opts" ||
        gen_die "qemu-img convert -n into the template failed"
else
    gen_qemu_retry qemu-img convert -f raw "${copts[@]}" "${secret[@]}" -o "$(create_opts)" "$plain" "$img" ||
        gen_die "qemu-img convert ${copts[*]} failed"
fi
if [ "${GEN_VERIFY:-1}" = 1 ]; then
    qemu-img convert -U "${secret[@]}" --image-opts "$opts" -O raw "$GEN_TMP/check" ||
        gen_die "qemu-img cannot read back $img"
    cmp -s "$GEN_TMP/check" "$plain" || gen_die "qemu-img reads back another plaintext"
    rm -f "$GEN_TMP/check"
fi
gen_install "$plain" "$GEN_PLAINDIR/$GEN_NAME.plain"
gen_install "$img" "$GEN_OUT/$GEN_NAME"
