#!/bin/bash
# Self-check of the generators (no safeimgfs needed): build every kind of test
# image in a scratch directory and cross-check it with the real tools.
#   - each generator verifies its own image (independent decryption with
#     luks-crypt.py from the cryptsetup-dumped volume key; qemu-img for LUKS1);
#   - luks-crypt.py's encrypt path reproduces a cryptsetup-made ciphertext
#     byte for byte (LUKS2 4096/XTS, LUKS2 512/ESSIV, LUKS1 XTS);
#   - the PBKDF patchers: luksDump shows 2000000000 where patched, both LUKS2
#     header checksums verify, cryptsetup still opens an unpatched slot's digest.
# usage: selfcheck.sh [KEEPDIR]   (KEEPDIR: keep the images there)
set -u
. "$(dirname "$0")/common.sh"
export GEN_VERIFY=1
gen_need cryptsetup qemu-img
gen_tmpdir
D=${1:-$GEN_TMP/out}
mkdir -p "$D/store" "$D/plain" "$D/pay"
S=$D/store P=$D/plain
printf 'selfcheck-pass\n' >"$D/key"
chmod 600 "$D/key"
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; failed=1; }
failed=0

while read -r name gen opts; do
    [ -n "$name" ] || continue
    # shellcheck disable=SC2086
    if "$GEN_DIR/$gen" $opts "$S" "$name" "$D/key" "$P"; then
        ok "$name ($gen $opts)"
    else
        bad "$name ($gen $opts)"
    fi
done <<'EOF'
l2-512 luks-reencrypt.sh --sector-size 512
l2-4k luks-reencrypt.sh --sector-size 4096
l2-2k-xts128 luks-reencrypt.sh --sector-size 2048 --key-size 256
l2-512-argon luks-reencrypt.sh --pbkdf argon2id
l2-4k-argon luks-reencrypt.sh --sector-size 4096 --pbkdf argon2id
l2-essiv luks-reencrypt.sh --cipher aes-cbc-essiv:sha256 --key-size 256
l2-4k-essiv luks-reencrypt.sh --sector-size 4096 --cipher aes-cbc-essiv:sha256 --key-size 256
l1-cs luks-reencrypt.sh --luks1
l1-cs-essiv luks-reencrypt.sh --luks1 --cipher aes-cbc-essiv:sha256 --key-size 256
l1-qemu qemu-luks.sh --size-kib 2048
l1-qemu-essiv qemu-luks.sh -o cipher-alg=aes-256,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256
EOF

for k in qcow2 qcow2-backing qcow2-datafile vmdk vmdk-flat vdi vpc vhdx qed luks1 iso raw; do
    "$GEN_DIR/payload.sh" "$k" "$D/pay/$k" && ok "payload $k" || bad "payload $k"
done
"$GEN_DIR/qemu-luks.sh" --payload "$D/pay/qcow2" "$S" qcow2-in-l1 "$D/key" "$P" &&
    ok "qcow2-in-l1" || bad "qcow2-in-l1"
"$GEN_DIR/luks-payload.sh" --payload "$D/pay/qcow2" "$S" qcow2-in-l2 "$D/key" "$P" &&
    ok "qcow2-in-l2" || bad "qcow2-in-l2"
"$GEN_DIR/luks-payload.sh" --type luks1 --payload "$D/pay/vmdk-flat" "$S" vmdk-in-l1 "$D/key" "$P" &&
    ok "vmdk-in-l1" || bad "vmdk-in-l1"
"$GEN_DIR/luks-payload.sh" --sector-size 512 --pbkdf argon2id --payload "$D/pay/qcow2-backing" "$S" backing-in-l2 "$D/key" "$P" &&
    ok "backing-in-l2" || bad "backing-in-l2"

# luks-crypt.py encrypt must reproduce cryptsetup's ciphertext exactly.
pass=$(gen_passfile "$D/key")
for n in l2-4k l2-essiv l1-cs l1-cs-essiv; do
    [ -f "$S/$n" ] || continue
    cp "$S/$n" "$GEN_TMP/re"
    $PYTHON "$GEN_DIR/luks-crypt.py" encrypt "$GEN_TMP/re" "$P/$n.plain" --key-file "$pass" &&
        cmp -s "$GEN_TMP/re" "$S/$n" && ok "encrypt reproduces $n" || bad "encrypt reproduces $n"
done

# PBKDF patchers.
patched() {   # patched IMAGE PATCHER ARGS...: copy, patch, expect 2000000000 in luksDump
    local img=$1; shift
    cp "$S/$img" "$GEN_TMP/p" && "$@" "$GEN_TMP/p" &&
        cryptsetup luksDump "$GEN_TMP/p" | grep -q 2000000000
}
patched l1-cs "$GEN_DIR/patch-luks1-pbkdf.py" && ok "luks1 keyslot patch" || bad "luks1 keyslot patch"
patched l1-qemu "$GEN_DIR/patch-luks1-pbkdf.py" --digest && ok "luks1 digest patch" || bad "luks1 digest patch"
for spec in "l2-512|" "l2-4k|--digest 0" "l2-4k-argon|" "l2-512-argon|--field memory --value 4194304"; do
    img=${spec%%|*} args=${spec#*|}
    cp "$S/$img" "$GEN_TMP/p"
    "$GEN_DIR/patch-luks2-pbkdf.py" --check "$GEN_TMP/p" || bad "$img: checksum of the original"
    # shellcheck disable=SC2086
    if "$GEN_DIR/patch-luks2-pbkdf.py" $args "$GEN_TMP/p" &&
        "$GEN_DIR/patch-luks2-pbkdf.py" --check "$GEN_TMP/p" &&
        cryptsetup luksDump "$GEN_TMP/p" >"$GEN_TMP/dump" 2>&1 &&
        grep -Eq '2000000000|4194304' "$GEN_TMP/dump" &&
        ! grep -qi checksum "$GEN_TMP/dump"; then
        # The secondary copy alone must be valid too: wipe the primary binary header.
        dd if=/dev/zero of="$GEN_TMP/p" bs=4096 count=1 conv=notrunc status=none
        if cryptsetup luksDump "$GEN_TMP/p" 2>/dev/null | grep -Eq '2000000000|4194304'; then
            ok "luks2 patch $img $args (both copies)"
        else
            bad "luks2 patch $img $args: secondary header not usable"
        fi
    else
        bad "luks2 patch $img $args"
    fi
done

[ $failed = 0 ] && echo "selfcheck: all ok" || echo "selfcheck: FAILURES"
exit $failed
