#!/bin/bash
# Make a raw LUKS1/LUKS2 image whose payload is a given file, for payloads that
# `cryptsetup reencrypt` refuses (anything with a signature blkid knows) or
# that must be exact (an image format inside LUKS): `cryptsetup luksFormat` an
# empty file with a random volume key of our choosing, then write the
# ciphertext with luks-crypt.py (python3-cryptography) from that key. Only
# luksFormat runs the PBKDF, so a slow keyslot (--iterations) is cheap to make.
#
# usage: luks-payload.sh --payload FILE [options] OUTDIR NAME KEYFILE [PLAINDIR]
#   --payload FILE     plaintext (zero-padded to a whole sector)
#   --type T           luks2 (default) or luks1
#   --sector-size N    LUKS2 only; default 4096
#   --pbkdf P          pbkdf2 (default, 1000 iterations) or argon2id (LUKS2 only)
#   --iterations N     PBKDF2 iterations instead of 1000 (a slow unlock)
#   --cipher SPEC      default aes-xts-plain64
#   --key-size BITS    default 512
# Writes OUTDIR/NAME and PLAINDIR/NAME.plain (the padded payload). Checks that
# the ciphertext decrypts back, and with GEN_VERIFY=1 (default) that cryptsetup
# accepts the passphrase and gives back the same volume key; for LUKS1, that
# qemu-img decrypts the image to the payload (independent of luks-crypt.py).
set -u
. "$(dirname "$0")/common.sh"

type=luks2 sector=4096 pbkdf=pbkdf2 cipher=aes-xts-plain64 keysize=512 payload='' iters=1000
while [ $# -gt 0 ]; do
    case $1 in
    --payload) payload=$2; shift ;;
    --type) type=$2; shift ;;
    --sector-size) sector=$2; shift ;;
    --pbkdf) pbkdf=$2; shift ;;
    --iterations) iters=$2; shift ;;
    --cipher) cipher=$2; shift ;;
    --key-size) keysize=$2; shift ;;
    --) shift; break ;;
    -*) gen_die "unknown option $1" ;;
    *) break ;;
    esac
    shift
done
gen_args_tail "$@"
[ -n "$payload" ] || gen_die "--payload FILE is required"
gen_need cryptsetup
gen_tmpdir
pass=$(gen_passfile "$GEN_KEY")

case $type in
luks1) sector=512; off_sectors=4096 ;;   # 8 keyslots of a 512-bit key need ~2 MiB
luks2) off_sectors=2048 ;;               # 1 MiB: 2 x 16 KiB metadata + keyslots
*) gen_die "unknown type $type" ;;
esac
case $pbkdf in
pbkdf2) kdf=(--pbkdf pbkdf2 --pbkdf-force-iterations "$iters") ;;
argon2id) kdf=(--pbkdf argon2id --pbkdf-memory 32768 --pbkdf-force-iterations 4 --pbkdf-parallel 1) ;;
*) gen_die "unknown pbkdf $pbkdf" ;;
esac
[ $type = luks1 ] && [ $pbkdf != pbkdf2 ] && gen_die "LUKS1 needs pbkdf2"
ssopt=()
[ $type = luks2 ] && ssopt=(--sector-size "$sector")

plain="$GEN_TMP/plain"
cp "$payload" "$plain" || gen_die "cannot read payload $payload"
sz=$(stat -c %s "$plain")
[ $((sz % sector)) -eq 0 ] || truncate -s $(((sz / sector + 1) * sector)) "$plain"
sz=$(stat -c %s "$plain")

img="$GEN_TMP/img" vk="$GEN_TMP/vk"
head -c $((keysize / 8)) /dev/urandom >"$vk"
truncate -s $((off_sectors * 512 + sz)) "$img"
cryptsetup luksFormat -q --type "$type" --key-file "$pass" "${kdf[@]}" \
    --cipher "$cipher" --key-size "$keysize" --offset "$off_sectors" "${ssopt[@]}" \
    --volume-key-file "$vk" "$img" >"$GEN_TMP/cs.log" 2>&1 ||
    { cat "$GEN_TMP/cs.log" >&2; gen_die "cryptsetup luksFormat failed"; }

$PYTHON "$GEN_DIR/luks-crypt.py" encrypt "$img" "$plain" --volume-key-file "$vk" ||
    gen_die "encryption failed"
$PYTHON "$GEN_DIR/luks-crypt.py" decrypt "$img" "$GEN_TMP/check" --volume-key-file "$vk" ||
    gen_die "decryption failed"
cmp -s "$GEN_TMP/check" "$plain" || gen_die "decrypted payload differs"
rm -f "$GEN_TMP/check"
if [ "${GEN_VERIFY:-1}" = 1 ]; then
    cryptsetup luksDump --dump-volume-key -q --key-file "$pass" --volume-key-file "$GEN_TMP/vk2" \
        "$img" >/dev/null || gen_die "cryptsetup does not accept the passphrase"
    cmp -s "$vk" "$GEN_TMP/vk2" || gen_die "cryptsetup unlocks a different volume key"
fi
[ $type = luks1 ] && gen_qemu_check_luks1 "$img" "$pass" "$plain"

gen_install "$plain" "$GEN_PLAINDIR/$GEN_NAME.plain"
gen_install "$img" "$GEN_OUT/$GEN_NAME"
