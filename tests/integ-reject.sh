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
# and fusermount3 -u still ends the daemon promptly. Finally, -o keyfile= with
# a 0644 key file: the mount is refused, or every image is rejected (key.perms).
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

mk() {   # mk NAME PASSPHRASE GENERATOR [OPTIONS...]: image (in the background) + correct 0600 key
    local name=$1 pass=$2; shift 2
    write_key "$K.$name" "$pass"
    gen_bg "$@" "$STORE" "$name" "$K.$name" "$PLAIN"
    write_key "$KEYS/$name.key" "$pass"
}

run_gen payload.sh qcow2 "$PAY/qcow2"
run_gen payload.sh qcow2-backing "$PAY/qcow2-backing"
run_gen payload.sh vmdk-flat "$PAY/vmdk-flat"

mk ok.img pw-ok luks-reencrypt.sh --size-kib 1024
mk wrongkey.img pw-right luks-reencrypt.sh --size-kib 1024
mk nokey.img pw-nokey luks-reencrypt.sh --size-kib 1024
mk perms644.img pw-644 luks-reencrypt.sh --size-kib 1024
mk perms640.img pw-640 luks-reencrypt.sh --size-kib 1024
[ "$(id -u)" -eq 0 ] && mk notmine.img pw-notmine luks-reencrypt.sh --size-kib 1024
mk qcow2-in-l1.img pw-q1 qemu-luks.sh --payload "$PAY/qcow2"
mk qcow2-in-l2.img pw-q2 luks-payload.sh --payload "$PAY/qcow2"
mk backing-in-l2.img pw-qb luks-payload.sh --sector-size 512 --payload "$PAY/qcow2-backing"
mk vmdk-in-l2.img pw-vmdk luks-payload.sh --payload "$PAY/vmdk-flat"
mk l1-slot-2e9.img pw-l1s luks-reencrypt.sh --luks1 --size-kib 1024
mk l1-digest-2e9.img pw-l1d luks-reencrypt.sh --luks1 --size-kib 1024
mk l2-slot-2e9.img pw-l2s luks-reencrypt.sh --size-kib 1024
mk l2-digest-2e9.img pw-l2d luks-reencrypt.sh --size-kib 1024
mk l2-argon-2e9.img pw-l2a luks-reencrypt.sh --size-kib 1024 --pbkdf argon2id
gen_wait

write_key "$KEYS/wrongkey.img.key" pw-wrong
rm -f "$KEYS/nokey.img.key"
chmod 644 "$KEYS/perms644.img.key"
chmod 640 "$KEYS/perms640.img.key"
# Only root can give a key file to another owner.
[ "$(id -u)" -eq 0 ] && chown "$(id -u nobody 2>/dev/null || echo 65534)" "$KEYS/notmine.img.key"

"$GEN/patch-luks1-pbkdf.py" "$STORE/l1-slot-2e9.img" || fail "patch-luks1-pbkdf failed"
"$GEN/patch-luks1-pbkdf.py" --digest "$STORE/l1-digest-2e9.img" || fail "patch-luks1-pbkdf --digest failed"
"$GEN/patch-luks2-pbkdf.py" "$STORE/l2-slot-2e9.img" || fail "patch-luks2-pbkdf failed"
"$GEN/patch-luks2-pbkdf.py" --digest 0 "$STORE/l2-digest-2e9.img" || fail "patch-luks2-pbkdf --digest failed"
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

# One pass over status.json and the mount: state, check id (exact, or the id
# or a sub-id of it for a trailing *), a reason, ENOENT on stat and open,
# outer_format of the PBKDF-cost images, inner_format of the qcow2 payloads.
wants=()
for n in "${!WANT[@]}"; do wants+=("$n=${WANT[$n]}"); done
errors=$("$PYTHON" - "$MNT" "${wants[@]}" <<'EOF'
import errno, json, os, sys
mnt = sys.argv[1]
ims = {i["name"]: i for i in json.load(open(mnt + "/.safeimgfs/status.json"))["images"]}
errs = []
for spec in sys.argv[2:]:
    name, want = spec.split("=", 1)
    im = ims.get(name)
    if im is None:
        errs.append("%s missing from status.json" % name)
        continue
    ck = im.get("check")
    if im.get("state") != "rejected":
        errs.append("%s: state %s (want rejected)" % (name, im.get("state")))
    if want.endswith("*"):
        ok = ck == want[:-1] or (isinstance(ck, str) and ck.startswith(want[:-1] + "."))
    else:
        ok = ck == want
    if not ok:
        errs.append("%s: check %r (want %s)" % (name, ck, want))
    if not im.get("reason"):
        errs.append("%s: empty reason" % name)
    if want == "luks.pbkdf":
        of = "luks1" if name.startswith("l1-") else "luks2"
        if im.get("outer_format") != of:
            errs.append("%s: outer_format %r (want %s)" % (name, im.get("outer_format"), of))
    if name.startswith("qcow2-in-") and im.get("inner_format") != "qcow2":
        errs.append("%s: inner_format %r (want qcow2)" % (name, im.get("inner_format")))
    for what, fn in (("stat", os.stat), ("open", lambda p: open(p, "rb"))):
        try:
            fn(os.path.join(mnt, name))
            errs.append("%s: %s succeeded (want ENOENT)" % (name, what))
        except OSError as e:
            if e.errno != errno.ENOENT:
                errs.append("%s: %s gives %s (want ENOENT)" % (name, what, errno.errorcode.get(e.errno)))
print("; ".join(errs))
EOF
) || fail "checking the verdicts failed"
[ -z "$errors" ] || { status_json "$MNT" >&2; fail "$errors"; }

listed=$("$PYTHON" -c 'import os,sys; print(" ".join(sorted(n for n in os.listdir(sys.argv[1]) if n != ".safeimgfs")))' "$MNT")
assert_eq ok.img "$listed" "readdir"

umount_store "$MNT"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status after fusermount3 -u"

# -o keyfile=FILE with a key file of mode 0644: either the daemon refuses to
# mount (non-zero exit), or it mounts and rejects every image with key.perms.
write_key "$SCRATCH/k644" pw-ok 644
if start_daemon "$STORE" "$MNT" "keyfile=$SCRATCH/k644"; then
    wait_verdicts "$MNT" "$NIMAGES"
    bad=$("$PYTHON" -c '
import json, sys
for i in json.load(open(sys.argv[1]))["images"]:
    if i["state"] != "rejected" or i["check"] not in ("key.perms", "luks.pbkdf", "outer.format"):
        print(i["name"], i["state"], i["check"])' "$MNT/.safeimgfs/status.json")
    [ -z "$bad" ] || fail "with a 0644 keyfile, not rejected with key.perms: $bad"
    r=$(errno_of 'os.stat(a[0])' "$MNT/ok.img")
    assert_eq ENOENT "$r" "stat of ok.img with a 0644 keyfile"
    umount_store "$MNT"
    note "0644 keyfile: mounted, every image rejected"
else
    [ "$DAEMON_STATUS" -ne 0 ] || fail "daemon exited 0 without mounting (0644 keyfile)"
    if mountpoint -q "$MNT"; then fail "$MNT mounted although the daemon exited"; fi
    note "0644 keyfile: mount refused (exit $DAEMON_STATUS: $(head -c 200 "$DAEMON_LOG"))"
fi
echo "PASS: $TEST_NAME"
exit 0
