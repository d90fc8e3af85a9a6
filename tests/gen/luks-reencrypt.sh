#!/bin/bash
# Make a raw LUKS2 (or LUKS1) image with known plaintext, without device-mapper,
# by offline `cryptsetup reencrypt --encrypt` of a random plaintext file.
#
# usage: luks-reencrypt.sh [options] OUTDIR NAME KEYFILE [PLAINDIR]
#   --luks1            make LUKS2 (512-byte sectors, PBKDF2) and then
#                      `cryptsetup convert --type luks1` (LUKS1 reencryption needs dm)
#   --sector-size N    512 (default), 1024, 2048 or 4096 (LUKS2 only)
#   --pbkdf P          pbkdf2 (default: 1000 iterations) or argon2id
#                      (32 MiB, 4 iterations, 1 thread)
#   --iterations N     PBKDF2 keyslot iterations instead of 1000 (a slow unlock)
#   --cipher SPEC      default aes-xts-plain64 (e.g. aes-cbc-essiv:sha256)
#   --key-size BITS    default 512 (use 256 for cbc-essiv or AES-128-XTS)
#   --size-kib N       plaintext/view size in KiB (default 4096)
# Writes OUTDIR/NAME (data segment = exactly the plaintext) and PLAINDIR/NAME.plain,
# then checks the image by decrypting it with luks-crypt.py (python3-cryptography,
# volume key dumped by cryptsetup) and comparing with the plaintext (skipped
# with GEN_VERIFY=0), and LUKS1 images also with qemu-img.
set -u
. "$(dirname "$0")/common.sh"

luks1=0 sector=512 pbkdf=pbkdf2 cipher=aes-xts-plain64 keysize=512 sizekib=4096 iters=1000
while [ $# -gt 0 ]; do
    case $1 in
    --luks1) luks1=1 ;;
    --sector-size) sector=$2; shift ;;
    --pbkdf) pbkdf=$2; shift ;;
    --iterations) iters=$2; shift ;;
    --cipher) cipher=$2; shift ;;
    --key-size) keysize=$2; shift ;;
    --size-kib) sizekib=$2; shift ;;
    --) shift; break ;;
    -*) gen_die "unknown option $1" ;;
    *) break ;;
    esac
    shift
done
gen_args_tail "$@"
gen_need cryptsetup
gen_tmpdir
pass=$(gen_passfile "$GEN_KEY")

if [ $luks1 = 1 ]; then
    [ "$sector" = 512 ] || gen_die "--luks1 needs 512-byte sectors"
    [ "$pbkdf" = pbkdf2 ] || gen_die "--luks1 needs pbkdf2"
    # LUKS1 needs room for 8 keyslots before the payload (~2 MiB with a 512-bit key):
    # reencrypt puts the data at half the reduction.
    reduce=4M
else
    reduce=2M
fi
case $pbkdf in
pbkdf2) kdf=(--pbkdf pbkdf2 --pbkdf-force-iterations "$iters") ;;
argon2id) kdf=(--pbkdf argon2id --pbkdf-memory 32768 --pbkdf-force-iterations 4 --pbkdf-parallel 1) ;;
*) gen_die "unknown pbkdf $pbkdf" ;;
esac
plainbytes=$((sizekib * 1024))
[ $((plainbytes % sector)) -eq 0 ] || gen_die "size not a multiple of the sector size"

img="$GEN_TMP/img"
plain="$GEN_TMP/plain"
gen_plaintext "$plain" "$plainbytes" "$GEN_NAME"
cp "$plain" "$img" || gen_die "copy failed"
truncate -s "+$reduce" "$img" || gen_die "truncate failed"

cryptsetup reencrypt --encrypt --type luks2 --reduce-device-size "$reduce" -q \
    --key-file "$pass" "${kdf[@]}" --cipher "$cipher" --key-size "$keysize" \
    --sector-size "$sector" "$img" >"$GEN_TMP/cs.log" 2>&1 ||
    { cat "$GEN_TMP/cs.log" >&2; gen_die "cryptsetup reencrypt failed"; }
if [ $luks1 = 1 ]; then
    cryptsetup convert --type luks1 -q "$img" >"$GEN_TMP/cs.log" 2>&1 ||
        { cat "$GEN_TMP/cs.log" >&2; gen_die "cryptsetup convert failed"; }
fi

# The data segment runs to the end of the file, but only its first
# $plainbytes hold the plaintext: cut the rest off.
off=$($PYTHON "$GEN_DIR/luks-crypt.py" info "$img" |
    $PYTHON -c 'import json,sys; print(json.load(sys.stdin)["data_offset"])') ||
    gen_die "cannot read header"
truncate -s $((off + plainbytes)) "$img" || gen_die "truncate failed"

want=$([ $luks1 = 1 ] && echo 1 || echo 2)
ver=$(cryptsetup luksDump "$img" 2>/dev/null | sed -n 's/^Version:[[:space:]]*//p')
[ "$ver" = "$want" ] || gen_die "luksDump says version '$ver', wanted $want"

if [ "${GEN_VERIFY:-1}" = 1 ]; then
    $PYTHON "$GEN_DIR/luks-crypt.py" decrypt "$img" "$GEN_TMP/check" --key-file "$pass" ||
        gen_die "independent decryption failed"
    cmp -s "$GEN_TMP/check" "$plain" || gen_die "independent decryption does not match the plaintext"
    rm -f "$GEN_TMP/check"
fi
[ $luks1 = 1 ] && gen_qemu_check_luks1 "$img" "$pass" "$plain"

gen_install "$plain" "$GEN_PLAINDIR/$GEN_NAME.plain"
gen_install "$img" "$GEN_OUT/$GEN_NAME"
