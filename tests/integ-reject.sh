#!/bin/bash
# Integration test: images that inspection must reject, and how fast.
#
# Store (mounted with -o keydir=DIR):
#   ok.img             a good LUKS2 image (control: accepted, inner.raw)
#   wrongkey.img       key file holds another passphrase          -> key.wrong
#   nokey.img          no key file                                 -> key.missing
#   perms644.img       key file mode 0644                          -> key.perms
#   perms640.img       key file mode 0640                          -> key.perms
#   notmine.img        key file 0600 owned by nobody (not root, not us) -> key.perms
#   qcow2-in-l1.img    qemu LUKS1 whose payload is a qcow2         -> inner.qcow2
#   qcow2-in-l2.img    LUKS2 whose payload is a qcow2              -> inner.qcow2
#   backing-in-l2.img  LUKS2 payload: qcow2 with backing /etc/passwd -> inner.qcow2*
#   vmdk-in-l2.img     LUKS2 payload: VMDK descriptor, extent /etc/passwd -> inner.vmdk*
#   l1-slot-2e9.img    LUKS1 keyslot 0 PBKDF2 iterations 2e9       -> luks.pbkdf
#   l1-digest-2e9.img  LUKS1 MK digest iterations 2e9              -> luks.pbkdf
#   l2-slot-2e9.img    LUKS2 keyslot 0 PBKDF2 iterations 2e9       -> luks.pbkdf
#   l2-digest-2e9.img  LUKS2 digest 0 iterations 2e9               -> luks.pbkdf
#   l2-argon-2e9.img   LUKS2 argon2id keyslot, time cost 2e9       -> luks.pbkdf
# The PBKDF-cost images must be rejected within 5 s of starting the mount
# (an unlock attempt would take many minutes). Every rejected name gives
# ENOENT on stat and open and is not listed; status.json carries the check ids;
# and fusermount3 -u still ends the daemon promptly.
set -u
. "$(dirname "$0")/lib.sh"

need_root_fuse
need_tool cryptsetup qemu-img
need_python_crypto
need_prog "$SAFEIMGFS"

STORE=$SCRATCH/store PLAIN=$SCRATCH/plain KEYS=$SCRATCH/keys MNT=$SCRATCH/mnt PAY=$SCRATCH/payloads
mkdir -p "$STORE" "$PLAIN" "$KEYS" "$MNT" "$PAY"
chmod 700 "$KEYS"
K=$SCRATCH/genkey

mk() {   # mk NAME PASSPHRASE GENERATOR [OPTIONS...]: image + correct 0600 key
    local name=$1 pass=$2; shift 2
    write_key "$K" "$pass"
    run_gen "$@" "$STORE" "$name" "$K" "$PLAIN"
    write_key "$KEYS/$name.key" "$pass"
}

mk ok.img pw-ok luks-reencrypt.sh --size-kib 1024
mk wrongkey.img pw-right luks-reencrypt.sh --size-kib 1024
write_key "$KEYS/wrongkey.img.key" pw-wrong
mk nokey.img pw-nokey luks-reencrypt.sh --size-kib 1024
rm -f "$KEYS/nokey.img.key"
mk perms644.img pw-644 luks-reencrypt.sh --size-kib 1024
chmod 644 "$KEYS/perms644.img.key"
mk perms640.img pw-640 luks-reencrypt.sh --size-kib 1024
chmod 640 "$KEYS/perms640.img.key"
mk notmine.img pw-notmine luks-reencrypt.sh --size-kib 1024
NOBODY=$(id -u nobody 2>/dev/null || echo 65534)
if [ "$(id -u)" -eq 0 ]; then
    chown "$NOBODY" "$KEYS/notmine.img.key"
else
    rm -f "$STORE/notmine.img" "$KEYS/notmine.img.key"   # cannot give a file away
fi

run_gen payload.sh qcow2 "$PAY/qcow2"
run_gen payload.sh qcow2-backing "$PAY/qcow2-backing"
run_gen payload.sh vmdk-flat "$PAY/vmdk-flat"
mk qcow2-in-l1.img pw-q1 qemu-luks.sh --payload "$PAY/qcow2"
mk qcow2-in-l2.img pw-q2 luks-payload.sh --payload "$PAY/qcow2"
mk backing-in-l2.img pw-qb luks-payload.sh --sector-size 512 --payload "$PAY/qcow2-backing"
mk vmdk-in-l2.img pw-vmdk luks-payload.sh --payload "$PAY/vmdk-flat"

mk l1-slot-2e9.img pw-l1s luks-reencrypt.sh --luks1 --size-kib 1024
"$GEN/patch-luks1-pbkdf.py" "$STORE/l1-slot-2e9.img" || fail "patch-luks1-pbkdf failed"
mk l1-digest-2e9.img pw-l1d luks-reencrypt.sh --luks1 --size-kib 1024
"$GEN/patch-luks1-pbkdf.py" --digest "$STORE/l1-digest-2e9.img" || fail "patch-luks1-pbkdf --digest failed"
mk l2-slot-2e9.img pw-l2s luks-reencrypt.sh --size-kib 1024
"$GEN/patch-luks2-pbkdf.py" "$STORE/l2-slot-2e9.img" || fail "patch-luks2-pbkdf failed"
mk l2-digest-2e9.img pw-l2d luks-reencrypt.sh --size-kib 1024
"$GEN/patch-luks2-pbkdf.py" --digest 0 "$STORE/l2-digest-2e9.img" || fail "patch-luks2-pbkdf --digest failed"
mk l2-argon-2e9.img pw-l2a luks-reencrypt.sh --size-kib 1024 --pbkdf argon2id
"$GEN/patch-luks2-pbkdf.py" "$STORE/l2-argon-2e9.img" || fail "patch-luks2-pbkdf (argon2id) failed"
for f in l1-slot-2e9.img l1-digest-2e9.img l2-slot-2e9.img l2-digest-2e9.img l2-argon-2e9.img; do
    cryptsetup luksDump "$STORE/$f" | grep -q 2000000000 || fail "$f: luksDump does not show the patched cost"
done
PBKDF=(l1-slot-2e9.img l1-digest-2e9.img l2-slot-2e9.img l2-digest-2e9.img l2-argon-2e9.img)

# name -> expected check id (a trailing * means "this id or a sub-id of it")
declare -A WANT=(
    [wrongkey.img]=key.wrong
    [nokey.img]=key.missing
    [perms644.img]=key.perms
    [perms640.img]=key.perms
    [qcow2-in-l1.img]=inner.qcow2
    [qcow2-in-l2.img]=inner.qcow2
    [backing-in-l2.img]='inner.qcow2*'
    [vmdk-in-l2.img]='inner.vmdk*'
)
[ -e "$STORE/notmine.img" ] && WANT[notmine.img]=key.perms
for n in "${PBKDF[@]}"; do WANT[$n]=luks.pbkdf; done
NIMAGES=$((${#WANT[@]} + 1))
note "generated $NIMAGES images"

check_matches() {   # check_matches WANT GOT
    case $1 in
    *\*) [ "$2" = "${1%\*}" ] || [ "${2#"${1%\*}".}" != "$2" ] ;;
    *) [ "$2" = "$1" ] ;;
    esac
}

pbkdf_decided() {
    local n
    for n in "${PBKDF[@]}"; do
        [ "$(status_field "$MNT" "$n" state 2>/dev/null)" = rejected ] || return 1
    done
}

t0=$(_now_us)
mount_store "$STORE" "$MNT" "keydir=$KEYS"
# Rejected names: a lookup (which waits for a pending verdict) says ENOENT,
# and for the PBKDF-cost images it must do so quickly.
for n in "${PBKDF[@]}"; do
    r=$(errno_of 'os.stat(a[0])' "$MNT/$n")
    assert_eq ENOENT "$r" "stat of $n"
done
poll_until 5 pbkdf_decided || true
ms=$(elapsed_ms "$t0")
pbkdf_decided || { status_json "$MNT" >&2; fail "PBKDF-cost images not all rejected ${ms} ms after mount (limit 5000 ms)"; }
[ "$ms" -le 5000 ] || fail "PBKDF-cost images rejected only after ${ms} ms (limit 5000 ms)"
note "PBKDF-cost images rejected ${ms} ms after starting the mount"

wait_verdicts "$MNT" "$NIMAGES"

assert_eq accepted "$(status_field "$MNT" ok.img state)" "ok.img state"
assert_eq inner.raw "$(status_field "$MNT" ok.img check)" "ok.img check"
assert_eq "$(sha256_of "$PLAIN/ok.img.plain")" "$(sha256_of "$MNT/ok.img")" "ok.img sha256"

errors=""
for n in "${!WANT[@]}"; do
    st=$(status_field "$MNT" "$n" state) || { errors+="$n missing from status.json; "; continue; }
    ck=$(status_field "$MNT" "$n" check)
    rs=$(status_field "$MNT" "$n" reason)
    [ "$st" = rejected ] || errors+="$n: state $st (want rejected); "
    check_matches "${WANT[$n]}" "$ck" || errors+="$n: check '$ck' (want ${WANT[$n]}); "
    [ -n "$rs" ] && [ "$rs" != null ] || errors+="$n: empty reason; "
    r=$(errno_of 'os.stat(a[0])' "$MNT/$n")
    [ "$r" = ENOENT ] || errors+="$n: stat gives $r (want ENOENT); "
    r=$(errno_of 'open(a[0], "rb")' "$MNT/$n")
    [ "$r" = ENOENT ] || errors+="$n: open gives $r (want ENOENT); "
done
for n in "${PBKDF[@]}"; do
    of=$(status_field "$MNT" "$n" outer_format)
    want=luks2
    case $n in l1-*) want=luks1 ;; esac
    [ "$of" = "$want" ] || errors+="$n: outer_format $of (want $want); "
done
for n in qcow2-in-l1.img qcow2-in-l2.img; do
    inf=$(status_field "$MNT" "$n" inner_format)
    [ "$inf" = qcow2 ] || errors+="$n: inner_format $inf (want qcow2); "
done
[ -z "$errors" ] || { status_json "$MNT" >&2; fail "$errors"; }

listed=$("$PYTHON" -c 'import os,sys; print(" ".join(sorted(n for n in os.listdir(sys.argv[1]) if n != ".safeimgfs")))' "$MNT")
assert_eq ok.img "$listed" "readdir"

umount_store "$MNT"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status after fusermount3 -u"
echo "PASS: $TEST_NAME"
exit 0
