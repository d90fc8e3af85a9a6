#!/bin/bash
# Integration test: Glance sidecars (STORE/NAME.json) must agree with the
# bytes, never the other way round; and safeimg-inspect without a key.
#
# Images (copies of four generated ones; N = the plaintext size):
#   l1 = a LUKS1 volume (cryptsetup, luks-payload.sh), 1 MiB of random plaintext
#   l2 = a LUKS2 volume (the same, LUKS2), lq = a LUKS1 volume whose plaintext
#   is a qcow2, q = a qcow2+LUKS image (qemu-img convert, engine-wrap.sh)
#   name                   base sidecar                                    verdict
#   l1-none.img            l1   (none: the bytes decide)                   accepted inner.raw
#   l1-luks.img            l1   disk_format luks                           accepted inner.raw
#   l1-qcow2.img           l1   disk_format qcow2                          declared.mismatch
#   l1-v2.img              l1   os_encrypt_format LUKSv2                   declared.mismatch
#   l1-v1.img              l1   disk_format luks, os_encrypt_format LUKSv1 accepted
#   l1-size-right.img      l1   os_decrypt_size "N" (a string, as Glance)  accepted
#   l1-size-int.img        l1   os_decrypt_size N (a number)               accepted
#   l1-size-wrong.img      l1   os_decrypt_size "N+512"                    declared.mismatch
#   l1-nested-qcow2.img    l1   {"properties": {disk_format qcow2}}        declared.mismatch
#   l1-nested-size.img     l1   {"properties": {os_decrypt_size "N-512"}}  declared.mismatch
#   l1-nested-ok.img       l1   {"name", "properties": {luks, LUKSv1, "N"}} accepted
#   l1-malformed.img       l1   a truncated JSON object                    declared.invalid
#   l1-array.img           l1   a JSON array                               declared.invalid
#   l1-trailing.img        l1   an object followed by another              declared.invalid
#   l1-type.img            l1   disk_format ["luks"]                       declared.invalid
#   l1-badsize.img         l1   os_decrypt_size "12abc"                    declared.invalid
#   l1-props-type.img      l1   "properties": "luks"                       declared.invalid
#   l1-symlink.img         l1   a symlink to a valid sidecar elsewhere     declared.invalid
#   l1-dir.img             l1   a directory named l1-dir.img.json          declared.invalid
#   l2-none.img            l2   (none)                                     accepted
#   l2-v2.img              l2   disk_format luks, os_encrypt_format LUKSv2 accepted
#   l2-v1.img              l2   os_encrypt_format LUKSv1                   declared.mismatch
#   lq-luks.img            lq   disk_format luks (true of the outer file,
#                               but the content is a qcow2)                inner.qcow2
#   q-none.qcow2           q    (none)                                     accepted
#   q-qcow2.qcow2          q    disk_format qcow2, os_encrypt_format LUKSv1 accepted
#   q-luks.qcow2           q    disk_format luks                           declared.mismatch
# Each verdict is checked in the mount's status.json and from safeimg-inspect
# --json (the sidecar beside the image), with a reason; the accepted views
# serve the plaintext and report size N; the rejected are ENOENT and unlisted;
# no sidecar is listed as an image.
# Without any key, safeimg-inspect still inspects the outer header: check
# key.missing, inner_inspected false, probes.inner null, probes.outer listing
# the outer format, encryption.keyslots listed (l1, l2, q), exit status 1;
# and a sidecar that disagrees is reported as declared.mismatch even then (the
# sidecar is judged on the header, before any key is read).
set -u
. "$(dirname "$0")/lib.sh"

need_root_fuse
need_tool qemu-img cryptsetup sha256sum timeout
need_python_crypto
need_prog "$SAFEIMGFS" "$SAFEIMG_INSPECT"

STORE=$SCRATCH/store PLAIN=$SCRATCH/plain KEYS=$SCRATCH/keys MNT=$SCRATCH/mnt W=$SCRATCH/work
mkdir -p "$STORE" "$PLAIN" "$KEYS" "$MNT" "$W" "$SCRATCH/elsewhere"
chmod 700 "$KEYS"
KEY=$KEYS/passphrase
write_key "$KEY" "declared-test-pass"

head -c 1M /dev/urandom >"$W/random" || fail "cannot read /dev/urandom"
printf 'safeimgfs sidecar test\n' | dd of="$W/random" conv=notrunc status=none
gen_bg payload.sh qcow2 "$W/qcow2"
gen_wait
gen_bg luks-payload.sh --type luks1 --payload "$W/random" "$W" l1 "$KEY" "$PLAIN"
gen_bg luks-payload.sh --type luks2 --payload "$W/random" "$W" l2 "$KEY" "$PLAIN"
gen_bg luks-payload.sh --type luks1 --payload "$W/qcow2" "$W" lq "$KEY" "$PLAIN"
gen_bg engine-wrap.sh --format qcow2 --payload "$W/random" "$W" q "$KEY" "$PLAIN"
gen_wait
N=$(stat -c %s "$PLAIN/l1.plain")
assert_eq 1048576 "$N" "plaintext size"
assert_eq "$N" "$(stat -c %s "$PLAIN/q.plain")" "qcow2 plaintext size"
note "made the images (plaintext $N bytes)"

# img NAME BASE [SIDECAR-TEXT]: a copy of BASE named NAME, with NAME.json
# holding SIDECAR-TEXT when given.
declare -A WANT=()
img() {
    cp "$W/$2" "$STORE/$1" || fail "cannot copy $2 to $1"
    [ $# -ge 3 ] && { printf '%s' "$3" >"$STORE/$1.json" || fail "cannot write $1.json"; }
    return 0
}
want() { WANT[$1]=$2; }

img l1-none.img l1;                                                   want l1-none.img inner.raw
img l1-luks.img l1 '{"disk_format": "luks"}';                         want l1-luks.img inner.raw
img l1-qcow2.img l1 '{"disk_format": "qcow2"}';                       want l1-qcow2.img declared.mismatch
img l1-v2.img l1 '{"os_encrypt_format": "LUKSv2"}';                   want l1-v2.img declared.mismatch
img l1-v1.img l1 '{"disk_format": "luks", "os_encrypt_format": "LUKSv1"}'; want l1-v1.img inner.raw
img l1-size-right.img l1 "{\"os_decrypt_size\": \"$N\"}";             want l1-size-right.img inner.raw
img l1-size-int.img l1 "{\"os_decrypt_size\": $N}";                   want l1-size-int.img inner.raw
img l1-size-wrong.img l1 "{\"os_decrypt_size\": \"$((N + 512))\"}";   want l1-size-wrong.img declared.mismatch
img l1-nested-qcow2.img l1 '{"properties": {"disk_format": "qcow2"}}'; want l1-nested-qcow2.img declared.mismatch
img l1-nested-size.img l1 "{\"properties\": {\"os_decrypt_size\": \"$((N - 512))\"}}"
want l1-nested-size.img declared.mismatch
img l1-nested-ok.img l1 "{\"name\": \"vol\", \"container_format\": \"bare\", \"properties\": {\"disk_format\": \"luks\", \"os_encrypt_format\": \"LUKSv1\", \"os_decrypt_size\": \"$N\"}}"
want l1-nested-ok.img inner.raw
img l1-malformed.img l1 '{"disk_format": "luks",';                    want l1-malformed.img declared.invalid
img l1-array.img l1 '["disk_format", "luks"]';                        want l1-array.img declared.invalid
img l1-trailing.img l1 '{"disk_format": "luks"} {"disk_format": "qcow2"}'; want l1-trailing.img declared.invalid
img l1-type.img l1 '{"disk_format": ["luks"]}';                       want l1-type.img declared.invalid
img l1-badsize.img l1 '{"os_decrypt_size": "12abc"}';                 want l1-badsize.img declared.invalid
img l1-props-type.img l1 '{"properties": "luks"}';                    want l1-props-type.img declared.invalid
img l1-symlink.img l1
printf '{"disk_format": "luks"}' >"$SCRATCH/elsewhere/good.json"
ln -s "$SCRATCH/elsewhere/good.json" "$STORE/l1-symlink.img.json" || fail "cannot make the symlink sidecar"
want l1-symlink.img declared.invalid
img l1-dir.img l1
mkdir "$STORE/l1-dir.img.json" || fail "cannot make the directory sidecar"
want l1-dir.img declared.invalid
img l2-none.img l2;                                                   want l2-none.img inner.raw
img l2-v2.img l2 '{"disk_format": "luks", "os_encrypt_format": "LUKSv2"}'; want l2-v2.img inner.raw
img l2-v1.img l2 '{"os_encrypt_format": "LUKSv1"}';                   want l2-v1.img declared.mismatch
img lq-luks.img lq '{"disk_format": "luks"}';                         want lq-luks.img inner.qcow2
img q-none.qcow2 q;                                                   want q-none.qcow2 inner.raw
img q-qcow2.qcow2 q '{"disk_format": "qcow2", "os_encrypt_format": "LUKSv1"}'; want q-qcow2.qcow2 inner.raw
img q-luks.qcow2 q '{"disk_format": "luks"}';                         want q-luks.qcow2 declared.mismatch
NAMES=("${!WANT[@]}")

t0=$(_now_us)
mount_store "$STORE" "$MNT" "keyfile=$KEY"
wait_verdicts "$MNT" "${#NAMES[@]}"
note "mount decided ${#NAMES[@]} images in $(elapsed_ms "$t0") ms"
cp "$MNT/.safeimgfs/status.json" "$SCRATCH/status.json"
timeout -k 5 100 "$SAFEIMG_INSPECT" --keyfile "$KEY" --json "${NAMES[@]/#/$STORE/}" \
    >"$SCRATCH/inspect.jsonl" 2>"$SCRATCH/inspect.err"
rc=$?
[ "$rc" = 1 ] || fail "safeimg-inspect exit $rc (want 1): $(head -c 2000 "$SCRATCH/inspect.err")"

specs=()
for n in "${NAMES[@]}"; do specs+=("$n=${WANT[$n]}"); done
errors=$("$PYTHON" - "$MNT" "$SCRATCH/status.json" "$SCRATCH/inspect.jsonl" "$PLAIN" "$N" "${specs[@]}" <<'EOF'
import errno, hashlib, json, os, sys
mnt, stp, insp, plain, size = sys.argv[1:6]
size = int(size)
errs = []
mount = {i["name"]: i for i in json.load(open(stp))["images"]}
inspect = {}
for line in open(insp):
    if line.strip():
        d = json.loads(line)
        inspect[d["name"]] = d
want_outer = {"l1": "luks1", "l2": "luks2", "lq": "luks1", "q": "qcow2+luks"}
for spec in sys.argv[6:]:
    name, want = spec.split("=")
    base = name.split("-")[0]
    state = "accepted" if want == "inner.raw" else "rejected"
    for src, ims in (("status.json", mount), ("safeimg-inspect", inspect)):
        im = ims.get(name)
        if im is None:
            errs.append("%s: missing from %s" % (name, src))
            continue
        say = "%s (%s)" % (name, src)
        if (im.get("state"), im.get("check")) != (state, want):
            errs.append("%s: %s/%s (want %s/%s): %s" % (say, im.get("state"), im.get("check"), state, want,
                                                      im.get("reason")))
        if not im.get("reason"):
            errs.append("%s: no reason" % say)
        if want == "declared.invalid":
            continue
        # The sidecar is judged after the outer header: the format is known.
        if im.get("outer_format") != want_outer[base]:
            errs.append("%s: outer_format %r (want %s)" % (say, im.get("outer_format"), want_outer[base]))
        if want == "inner.raw" and (im.get("size") != size or im.get("inner_format") != "raw"):
            errs.append("%s: size %r, inner_format %r (want %d, raw)" % (say, im.get("size"), im.get("inner_format"), size))
        if want == "declared.mismatch" and im.get("inner_inspected") is not False:
            errs.append("%s: a mismatching sidecar, yet the content was inspected" % say)
    view = os.path.join(mnt, name)
    if state == "accepted":
        try:
            with open(view, "rb") as f:
                got = hashlib.sha256(f.read()).hexdigest()
            with open(os.path.join(plain, base + ".plain"), "rb") as f:
                exp = hashlib.sha256(f.read()).hexdigest()
            if got != exp:
                errs.append("%s: the view differs from the plaintext" % name)
        except OSError as e:
            errs.append("%s: cannot read the view (%s)" % (name, e))
    else:
        for what, fn in (("stat", os.stat), ("open", lambda p: open(p, "rb"))):
            try:
                fn(view)
                errs.append("%s: %s of the view succeeded (want ENOENT)" % (name, what))
            except OSError as e:
                if e.errno != errno.ENOENT:
                    errs.append("%s: %s gives %s (want ENOENT)" % (name, what, errno.errorcode.get(e.errno)))
extra = set(mount) - set(a.split("=")[0] for a in sys.argv[6:])
if extra:
    errs.append("status.json lists unexpected entries: %s" % sorted(extra))
print("\n  ".join(errs))
EOF
) || fail "checking the verdicts failed"
[ -z "$errors" ] || fail "wrong verdicts:
  $errors"

accepted=()
for n in "${NAMES[@]}"; do [ "${WANT[$n]}" = inner.raw ] && accepted+=("$n"); done
expected=$(printf '%s\n' "${accepted[@]}" | LC_ALL=C sort | tr '\n' ' ')
listed=$("$PYTHON" -c 'import os,sys; print(" ".join(sorted(n for n in os.listdir(sys.argv[1]) if n != ".safeimgfs")))' "$MNT")
assert_eq "${expected% }" "$listed" "readdir"
umount_store "$MNT"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status after fusermount3 -u"
note "mount and safeimg-inspect agree on ${#NAMES[@]} sidecar cases"

# ---- safeimg-inspect without any key ----------------------------------------
# The sidecar rule first: disagreement is found without a key.
for n in l1-qcow2.img l2-v1.img q-luks.qcow2; do
    out=$(timeout -k 5 60 "$SAFEIMG_INSPECT" --json "$STORE/$n" 2>"$SCRATCH/inspect.err")
    rc=$?
    assert_eq 1 "$rc" "safeimg-inspect $n without a key: exit status"
    got=$("$PYTHON" -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["state"], d["check"])' "$out") ||
        fail "safeimg-inspect $n without a key: not JSON: $out"
    assert_eq "rejected declared.mismatch" "$got" "safeimg-inspect $n without a key"
done
# An agreeing sidecar, or none: the header is inspected, the content is not.
for spec in l1-luks.img=luks1=luks l2-v2.img=luks2=luks q-qcow2.qcow2=qcow2+luks=qcow2 l1-none.img=luks1=luks; do
    IFS='=' read -r n outer probe <<<"$spec"
    out=$(timeout -k 5 60 "$SAFEIMG_INSPECT" --json "$STORE/$n" 2>"$SCRATCH/inspect.err")
    rc=$?
    assert_eq 1 "$rc" "safeimg-inspect $n without a key: exit status"
    bad=$("$PYTHON" - "$out" "$outer" "$probe" "$N" <<'EOF'
import json, sys
out, outer, probe, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
try:
    docs = [json.loads(l) for l in out.splitlines() if l.strip()]
except ValueError as e:
    print("not JSON (%s): %r" % (e, out[:300]))
    sys.exit()
errs = []
if len(docs) != 1:
    errs.append("%d documents" % len(docs))
d = docs[0]
if (d.get("state"), d.get("check")) != ("rejected", "key.missing"):
    errs.append("%s/%s (want rejected/key.missing)" % (d.get("state"), d.get("check")))
if d.get("outer_format") != outer:
    errs.append("outer_format %r (want %s)" % (d.get("outer_format"), outer))
if d.get("inner_inspected") is not False:
    errs.append("inner_inspected %r" % d.get("inner_inspected"))
if d.get("inner_format") is not None:
    errs.append("inner_format %r" % d.get("inner_format"))
probes = d.get("probes")
if not isinstance(probes, dict) or "inner" not in probes or probes["inner"] is not None:
    errs.append("probes.inner is not null: %r" % probes)
elif probe not in [p.get("format") for p in probes.get("outer") or []]:
    errs.append("probes.outer %r does not list %s" % (probes.get("outer"), probe))
enc = d.get("encryption") or {}
slots = enc.get("keyslots")
if not isinstance(slots, list) or not slots:
    errs.append("encryption.keyslots not listed: %r" % enc)
else:
    for s in slots:
        if not isinstance(s.get("slot"), int) or not s.get("kdf") or \
                not isinstance(s.get("iterations", s.get("time")), int):
            errs.append("key slot without id, kdf or cost: %r" % s)
if not enc.get("cipher"):
    errs.append("no cipher: %r" % enc)
if d.get("size") != size:
    errs.append("size %r (want %d)" % (d.get("size"), size))
print("; ".join(errs))
EOF
    )
    [ -z "$bad" ] || fail "safeimg-inspect $n without a key: $bad (output: $out)"
done
note "safeimg-inspect without a key: header inspected, key.missing, exit 1"
echo "PASS: $TEST_NAME"
exit 0
