#!/bin/bash
# Make a raw LUKS1/LUKS2 image whose payload is a given file, for payloads that
# `cryptsetup reencrypt` refuses (anything with a signature blkid knows) or
# that must be exact (an image format inside LUKS): `cryptsetup luksFormat` an
# empty file, then write the ciphertext with luks-crypt.py (python3-cryptography)
# from the volume key dumped by cryptsetup.
#
# usage: luks-payload.sh --payload FILE [options] OUTDIR NAME KEYFILE [PLAINDIR]
#   --payload FILE     plaintext (zero-padded to a whole sector)
#   --type T           luks2 (default) or luks1
#   --sector-size N    LUKS2 only; default 4096
#   --pbkdf P          pbkdf2 (default, 1000 iterations) or argon2id (LUKS2 only)
#   --cipher SPEC      default aes-xts-plain64
#   --key-size BITS    default 512
# Writes OUTDIR/NAME and PLAINDIR/NAME.plain (the padded payload). Checks that
# cryptsetup accepts the passphrase, and, for LUKS1, that qemu-img decrypts the
# image to the payload (an implementation independent of luks-crypt.py).
set -u
. "$(dirname "$0")/common.sh"

type=luks2 sector=4096 pbkdf=pbkdf2 cipher=aes-xts-plain64 keysize=512 payload=
while [ $# -gt 0 ]; do
    case $1 in
    --payload) payload=$2; shift ;;
    --type) type=$2; shift ;;
    --sector-size) sector=$2; shift ;;
    --pbkdf) pbkdf=$2; shift ;;
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
pbkdf2) kdf=(--pbkdf pbkdf2 --pbkdf-force-iterations 1000) ;;
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

img="$GEN_TMP/img"
truncate -s $((off_sectors * 512 + sz)) "$img"
cryptsetup luksFormat -q --type "$type" --key-file "$pass" "${kdf[@]}" \
    --cipher "$cipher" --key-size "$keysize" --offset "$off_sectors" "${ssopt[@]}" \
    "$img" >"$GEN_TMP/cs.log" 2>&1 ||
    { cat "$GEN_TMP/cs.log" >&2; gen_die "cryptsetup luksFormat failed"; }

$PYTHON "$GEN_DIR/luks-crypt.py" encrypt "$img" "$plain" --key-file "$pass" ||
    gen_die "encryption failed"
$PYTHON "$GEN_DIR/luks-crypt.py" decrypt "$img" "$GEN_TMP/check" --key-file "$pass" ||
    gen_die "decryption failed"
cmp -s "$GEN_TMP/check" "$plain" || gen_die "decrypted payload differs"
rm -f "$GEN_TMP/check"
cryptsetup open --test-passphrase --key-file "$pass" "$img" ||
    gen_die "cryptsetup does not accept the passphrase"
[ $type = luks1 ] && gen_qemu_check_luks1 "$img" "$pass" "$plain"

gen_install "$plain" "$GEN_PLAINDIR/$GEN_NAME.plain"
gen_install "$img" "$GEN_OUT/$GEN_NAME"
