#!/bin/bash
# Integration test: the policy file (safeimgfs.conf(5)), on real images
# through real mounts (-o policy=FILE) and through safeimg-inspect --policy.
#
# 1. Policy files with errors: both programs exit 2 with a message naming the
#    file, and the daemon mounts nothing: a syntax error on line 3 (FILE:3:33:),
#    an unknown nested key (pbkdf.bogus), a directory.
# 2. One store, mounted once per policy (keyfile= for the encrypted images):
#    name             what                                         made by
#    luks2.img        LUKS2, aes-xts-plain64/512, 1 MiB           luks-reencrypt.sh
#    cbc.img          LUKS1, aes-cbc-essiv:sha256/256             luks-reencrypt.sh --luks1
#    xts256.img       LUKS1, aes-xts-plain64/256, 2 MiB           luks-reencrypt.sh --luks1
#    enc.qcow2        qcow2+LUKS                                   qemu-img convert (gen/qcow2.sh)
#    mbr.img gpt.img  LUKS2 holding a 4 MiB disk with an MBR / GPT luks-payload.sh + engine-sample.sh
#    hybrid.img       LUKS2 holding an isohybrid ISO (MBR + ISO)   luks-payload.sh + iso-hybrid.sh
#    plain.raw        unencrypted random bytes                     plain-sample.sh raw
#    plain-ok.raw     the same, sidecar disk_format raw
#    plain-luks.raw   the same, sidecar os_encrypt_format LUKSv1
#    plain.qcow2      unencrypted sparse qcow2                     plain-sample.sh qcow2
#    plain-enc.qcow2  the same, sidecar os_encrypt_format LUKSv1
#    backing.qcow2    unencrypted qcow2, backing file /etc/passwd  plain-sample.sh qcow2-backing
#    vmdk.raw         monolithicFlat VMDK descriptor (/etc/passwd) plain-sample.sh vmdk-flat
#    Policies and what they must decide (besides, every image must get the
#    same state and check from the mount and from safeimg-inspect --json):
#    default          every encrypted image accepted; the unencrypted ones
#                     rejected and never served: outer.format (raw),
#                     qcow2.unencrypted (qcow2), qcow2.backing or
#                     qcow2.unencrypted (qcow2 with a backing file);
#                     plain-enc.qcow2 declared.mismatch (the sidecar is
#                     judged on the header bytes, before the format's own
#                     checks)
#    policy-strict.json  luks2.img and enc.qcow2 outer.policy; cbc.img
#                     luks.cipher "not allowed by policy"; xts256.img accepted
#    inner.layouts [gpt]   mbr.img inner.mbr "not allowed by policy"; gpt.img accepted
#    inner.iso_hybrid false  hybrid.img inner.multiple (accepted by default)
#    max_virtual_size 1 MiB  gpt.img (4 MiB) size.limit; luks2.img (exactly
#                     1 MiB) accepted
#    unencrypted serve  plain.raw and plain-ok.raw served as their bytes
#                     (outer_format raw); plain.qcow2 served as qemu-img
#                     convert -O raw reads it (outer_format qcow2);
#                     backing.qcow2 qcow2.backing; vmdk.raw inner.vmdk;
#                     plain-luks.raw and plain-enc.qcow2 declared.mismatch
#    Every accepted view reads exactly as its reference (the plaintext that
#    was encrypted, the unencrypted file itself, or qemu-img convert -O raw);
#    every rejected name is ENOENT and unlisted.
# 3. --print-policy: the strict policy printed and fed back prints the same
#    bytes (and means the same as the file); --print-policy alone equals
#    --print-policy --policy examples/policy-default.json, and both mean what
#    that file says (comments stripped, parsed).
# 4. unlock_timeout= beats the file's unlock.timeout_s: a LUKS1 volume whose
#    key slot asks for 10^9 PBKDF2 iterations, under a policy allowing that
#    with "timeout_s": 1 -> unlock.timeout "longer than 1 s"; with
#    -o unlock_timeout=2 (and safeimg-inspect --unlock-timeout 2) -> "longer
#    than 2 s", after at least 2 s.
# No daemon log contains the passphrase. Failed cases are collected and
# reported together.
set -u
. "$(dirname "$0")/lib.sh"

need_root_fuse
need_tool cryptsetup qemu-img genisoimage sgdisk sfdisk sha256sum timeout cmp
need_python_crypto
need_prog "$SAFEIMGFS" "$SAFEIMG_INSPECT"
. "$GEN/qcow2.sh"

EXAMPLES=$top_srcdir/examples
STRICT=$EXAMPLES/policy-strict.json DEFAULT=$EXAMPLES/policy-default.json
[ -r "$STRICT" ] && [ -r "$DEFAULT" ] || fail "no $STRICT or $DEFAULT"
STORE=$SCRATCH/store PLAIN=$SCRATCH/plain W=$SCRATCH/work MNT=$SCRATCH/mnt POL=$SCRATCH/policies
STORE_T=$SCRATCH/store-timeout
mkdir -p "$STORE" "$PLAIN" "$W" "$MNT" "$POL" "$STORE_T"
KEY=$SCRATCH/pass.key
write_key "$KEY" "policy-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

# ---- 1. policy files with errors ---------------------------------------------

cat >"$POL/syntax.json" <<'EOF'
{
    "outer_formats": ["luks1"],
    "max_virtual_size": 1048576,,
    "unencrypted": "hide"
}
EOF
cat >"$POL/bogus.json" <<'EOF'
{
    "pbkdf": { "pbkdf2_max_iterations": 1000000, "bogus": 1 }
}
EOF
mkdir "$POL/dir.json"
head -c 4096 /dev/urandom >"$W/probe.bin"   # any file: an image argument that exits 1, not 2
for spec in "syntax.json|$POL/syntax.json:3:33:" "bogus.json|$POL/bogus.json: pbkdf.bogus: unknown key" \
    "dir.json|$POL/dir.json: "; do
    f=$POL/${spec%%|*} text=${spec#*|}
    daemon_refuses 2 "$text" "$STORE" "$MNT" "keyfile=$KEY,policy=$f"
    tool_refuses 2 "$text" "$SAFEIMG_INSPECT" --policy "$f" --keyfile "$KEY" "$W/probe.bin"
    tool_refuses 2 "$text" "$SAFEIMG_INSPECT" --print-policy --policy "$f"
done
# The same command with a correct policy does run (so exit 2 above is the policy's doing).
timeout -k 5 60 "$SAFEIMG_INSPECT" --policy "$STRICT" --keyfile "$KEY" "$W/probe.bin" >"$W/probe.out" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q 'rejected \[outer.format\]' "$W/probe.out" ||
    problem "safeimg-inspect --policy $STRICT on random bytes: exit $rc (want 1, outer.format): $(cat "$W/probe.out")"
note "bad policy files refused"

# ---- 2. the images -------------------------------------------------------------

gen_bg luks-reencrypt.sh --size-kib 1024 "$STORE" luks2.img "$KEY" "$PLAIN"
gen_bg luks-reencrypt.sh --luks1 --cipher aes-cbc-essiv:sha256 --key-size 256 --size-kib 1024 \
    "$STORE" cbc.img "$KEY" "$PLAIN"
gen_bg luks-reencrypt.sh --luks1 --key-size 256 --size-kib 2048 "$STORE" xts256.img "$KEY" "$PLAIN"
gen_bg luks-reencrypt.sh --luks1 --size-kib 1024 "$STORE_T" slow.img "$KEY" "$W"
gen_bg engine-sample.sh mbr "$W/mbr.sample"
gen_bg engine-sample.sh gpt "$W/gpt.sample"
gen_bg iso-hybrid.sh "$W/hybrid.sample"
gen_bg plain-sample.sh raw "$STORE/plain.raw" "$PLAIN/plain.raw.plain"
gen_bg plain-sample.sh raw "$W/enc.src"
gen_bg plain-sample.sh qcow2 "$STORE/plain.qcow2" "$PLAIN/plain.qcow2.plain"
gen_bg plain-sample.sh qcow2-backing "$STORE/backing.qcow2"
gen_bg plain-sample.sh vmdk-flat "$STORE/vmdk.raw"
gen_wait
for k in mbr gpt hybrid; do
    gen_bg luks-payload.sh --payload "$W/$k.sample" "$STORE" "$k.img" "$KEY" "$PLAIN"
done
q2_bg enc.qcow2 q2_from_raw "$W/enc.src" "$STORE/enc.qcow2" "$KEY"
gen_wait
q2_wait || fail "cannot make enc.qcow2"
q2_ref "$STORE/enc.qcow2" "$KEY" "$PLAIN/enc.qcow2.plain" || fail "qemu-img cannot read enc.qcow2 back"
cmp -s "$W/enc.src" "$PLAIN/enc.qcow2.plain" || fail "enc.qcow2 does not read back as the file it was made from"

cp "$STORE/plain.raw" "$STORE/plain-ok.raw" && cp "$PLAIN/plain.raw.plain" "$PLAIN/plain-ok.raw.plain" &&
    cp "$STORE/plain.raw" "$STORE/plain-luks.raw" && cp "$STORE/plain.qcow2" "$STORE/plain-enc.qcow2" ||
    fail "cannot copy the unencrypted samples"
echo '{"disk_format": "raw"}' >"$STORE/plain-ok.raw.json"
echo '{"os_encrypt_format": "LUKSv1"}' >"$STORE/plain-luks.raw.json"
echo '{"os_encrypt_format": "LUKSv1"}' >"$STORE/plain-enc.qcow2.json"
# What the generators were asked for.
v=$(cryptsetup luksDump "$STORE/luks2.img" | sed -n 's/^Version:[[:space:]]*//p')
assert_eq 2 "$v" "LUKS version of luks2.img"
cryptsetup luksDump "$STORE/cbc.img" | grep -q '^Cipher mode:[[:space:]]*cbc-essiv:sha256$' ||
    fail "cbc.img is not aes-cbc-essiv:sha256"
cryptsetup luksDump "$STORE/xts256.img" | grep -q '^MK bits:[[:space:]]*256$' || fail "xts256.img has no 256-bit key"
IMAGES=()
for f in "$STORE"/*; do
    case $f in *.json) ;; *) IMAGES+=("${f##*/}") ;; esac
done
assert_eq 14 "${#IMAGES[@]}" "number of images in the store"
note "made ${#IMAGES[@]} images"

# run_policy TAG POLICY-FILE|"" EXPECTATION...: mount the store with that
# policy, inspect every image with safeimg-inspect --policy as well, and
# check the verdicts. An expectation is NAME=STATE/CHECK[|CHECK...][@OUTER][~REASON-TEXT].
run_policy() {
    local tag=$1 pol=$2 rc out
    shift 2
    mount_store "$STORE" "$MNT" "keyfile=$KEY${pol:+,policy=$pol}"
    wait_verdicts "$MNT" "${#IMAGES[@]}"
    cp "$MNT/.safeimgfs/status.json" "$W/status.$tag.json"
    timeout -k 5 120 "$SAFEIMG_INSPECT" ${pol:+--policy "$pol"} --keyfile "$KEY" --json "${IMAGES[@]/#/$STORE/}" \
        >"$W/inspect.$tag.jsonl" 2>"$W/inspect.$tag.err"
    rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 1 ] ||
        problem "$tag: safeimg-inspect exit $rc: $(head -c 2000 "$W/inspect.$tag.err")"
    out=$("$PYTHON" - "$tag" "$MNT" "$W/status.$tag.json" "$W/inspect.$tag.jsonl" "$PLAIN" "$@" <<'EOF'
import errno, hashlib, json, os, re, sys
tag, mnt, stp, insp, plain = sys.argv[1:6]
errs = []
mount = {i["name"]: i for i in json.load(open(stp))["images"]}
inspect = {}
for line in open(insp):
    if line.strip():
        d = json.loads(line)
        inspect[d["name"]] = d
if set(mount) != set(inspect):
    errs.append("images in status.json %s, from safeimg-inspect %s" % (sorted(mount), sorted(inspect)))
for name in sorted(set(mount) & set(inspect)):
    a, b = mount[name], inspect[name]
    for f in ("state", "check", "outer_format", "inner_format"):
        if a.get(f) != b.get(f):
            errs.append("%s: %s %r in status.json, %r from safeimg-inspect (%s | %s)" % (
                name, f, a.get(f), b.get(f), a.get("reason"), b.get("reason")))
for spec in sys.argv[6:]:
    m = re.fullmatch(r"([^=]+)=(\w+)/([^@~]+)(?:@([^~]+))?(?:~(.*))?", spec)
    if not m:
        errs.append("bad expectation %r" % spec)
        continue
    name, state, checks, outer, reason = m.groups()
    for src, ims in (("status.json", mount), ("safeimg-inspect", inspect)):
        im = ims.get(name)
        if im is None:
            errs.append("%s: missing from %s" % (name, src))
            continue
        got = "%s/%s" % (im.get("state"), im.get("check"))
        if im.get("state") != state or im.get("check") not in checks.split("|"):
            errs.append("%s (%s): %s, want %s/%s: %s" % (name, src, got, state, checks, im.get("reason")))
        elif reason and reason not in (im.get("reason") or ""):
            errs.append("%s (%s): %s, reason %r does not say %r" % (name, src, got, im.get("reason"), reason))
        if outer and im.get("outer_format") != outer:
            errs.append("%s (%s): outer_format %r, want %r" % (name, src, im.get("outer_format"), outer))

def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()

for name, im in sorted(mount.items()):
    view, ref = os.path.join(mnt, name), os.path.join(plain, name + ".plain")
    if im["state"] == "accepted":
        if not os.path.exists(ref):
            errs.append("%s: accepted (%s), but it must never be: %s" % (name, im.get("check"), im.get("reason")))
            continue
        try:
            if sha(view) != sha(ref):
                errs.append("%s: the view differs from its reference %s" % (name, ref))
            if im.get("size") != os.path.getsize(ref):
                errs.append("%s: size %r, the reference has %d bytes" % (name, im.get("size"), os.path.getsize(ref)))
        except OSError as e:
            errs.append("%s: cannot read the view: %s" % (name, e))
        continue
    for what, fn in (("stat", os.stat), ("open", lambda p: open(p, "rb"))):
        try:
            fn(view)
            errs.append("%s: %s of the view of a rejected image succeeded" % (name, what))
        except OSError as e:
            if e.errno != errno.ENOENT:
                errs.append("%s: %s gives %s (want ENOENT)" % (name, what, errno.errorcode.get(e.errno, e.errno)))
listed = sorted(n for n in os.listdir(mnt) if n != ".safeimgfs")
want = sorted(n for n, im in mount.items() if im["state"] == "accepted")
if listed != want:
    errs.append("readdir lists %s, the accepted images are %s" % (listed, want))
for e in errs:
    print("%s: %s" % (tag, e))
EOF
) || fail "$tag: checking the verdicts failed"
    while IFS= read -r line; do
        [ -n "$line" ] && problem "$line"
    done <<<"$out"
    umount_store "$MNT"
    [ "$DAEMON_STATUS" = 0 ] || problem "$tag: daemon exit status $DAEMON_STATUS after fusermount3 -u"
    note "policy $tag: $("$PYTHON" -c 'import json,sys; ims = json.load(open(sys.argv[1]))["images"]; print(", ".join("%s %s" % (i["name"], i["check"]) for i in sorted(ims, key=lambda i: i["name"])))' "$W/status.$tag.json")"
}

ENCRYPTED_OK=(luks2.img=accepted/inner.raw@luks2 cbc.img=accepted/inner.raw@luks1 xts256.img=accepted/inner.raw@luks1
    enc.qcow2=accepted/inner.raw@qcow2+luks mbr.img=accepted/inner.raw gpt.img=accepted/inner.raw
    hybrid.img=accepted/inner.raw)

run_policy default "" "${ENCRYPTED_OK[@]}" \
    plain.raw=rejected/outer.format plain-ok.raw=rejected/outer.format plain-luks.raw=rejected/outer.format \
    vmdk.raw=rejected/outer.format plain.qcow2=rejected/qcow2.unencrypted \
    plain-enc.qcow2=rejected/declared.mismatch 'backing.qcow2=rejected/qcow2.backing|qcow2.unencrypted'

run_policy strict "$STRICT" \
    luks2.img=rejected/outer.policy~'not allowed by policy' \
    cbc.img=rejected/luks.cipher~'not allowed by policy' \
    xts256.img=accepted/inner.raw@luks1 \
    enc.qcow2=rejected/outer.policy~'not allowed by policy'

printf '{ "inner": { "layouts": ["gpt"] } }\n' >"$POL/gpt-only.json"
run_policy gpt-only "$POL/gpt-only.json" \
    mbr.img=rejected/inner.mbr~'not allowed by policy' gpt.img=accepted/inner.raw

printf '{ "inner": { "iso_hybrid": false } }\n' >"$POL/no-hybrid.json"
run_policy no-hybrid "$POL/no-hybrid.json" \
    hybrid.img=rejected/inner.multiple mbr.img=accepted/inner.raw gpt.img=accepted/inner.raw

printf '{ "max_virtual_size": 1048576 }\n' >"$POL/max-size.json"
run_policy max-size "$POL/max-size.json" \
    gpt.img=rejected/size.limit~1048576 luks2.img=accepted/inner.raw

printf '{ "unencrypted": "serve" }\n' >"$POL/serve.json"
run_policy serve "$POL/serve.json" "${ENCRYPTED_OK[@]}" \
    plain.raw=accepted/inner.raw@raw plain-ok.raw=accepted/inner.raw@raw \
    plain-luks.raw=rejected/declared.mismatch \
    plain.qcow2=accepted/inner.raw@qcow2 plain-enc.qcow2=rejected/declared.mismatch \
    backing.qcow2=rejected/qcow2.backing vmdk.raw=rejected/inner.vmdk

# ---- 3. --print-policy ---------------------------------------------------------

print_policy() {   # OUT [ARGS...]: safeimg-inspect --print-policy ARGS > OUT
    local out=$1 rc
    shift
    timeout -k 5 30 "$SAFEIMG_INSPECT" --print-policy "$@" >"$out" 2>"$out.err"
    rc=$?
    [ "$rc" = 0 ] || problem "safeimg-inspect --print-policy $*: exit $rc: $(cat "$out.err")"
}
print_policy "$W/strict.printed" --policy "$STRICT"
print_policy "$W/strict.again" --policy "$W/strict.printed"
cmp -s "$W/strict.printed" "$W/strict.again" ||
    problem "the printed strict policy, fed back, prints differently: $(diff "$W/strict.printed" "$W/strict.again" | head -20)"
print_policy "$W/builtin.printed"
print_policy "$W/default.printed" --policy "$DEFAULT"
cmp -s "$W/builtin.printed" "$W/default.printed" ||
    problem "--print-policy differs from --print-policy --policy $DEFAULT: $(diff "$W/builtin.printed" "$W/default.printed" | head -20)"
out=$("$PYTHON" - "$STRICT" "$W/strict.printed" "$DEFAULT" "$W/builtin.printed" <<'EOF'
import json, sys

def strip_comments(t):
    """The policy file's comments (/* */ and //, outside strings) as blanks."""
    out, i, n, s = [], 0, len(t), None
    while i < n:
        c = t[i]
        if s:
            out.append(c)
            if c == "\\":
                out.append(t[i + 1])
                i += 1
            elif c == '"':
                s = None
        elif c == '"':
            s = c
            out.append(c)
        elif t.startswith("/*", i):
            j = t.index("*/", i + 2)
            out.append(" ")
            i = j + 1
        elif t.startswith("//", i):
            while i < n and t[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return json.loads("".join(out))

def merged(base, over):
    """over applied to base the way a policy file is: objects key by key, the rest replaced."""
    r = dict(base)
    for k, v in over.items():
        r[k] = merged(base[k], v) if isinstance(v, dict) and k != "ciphers" else v
    return r

strict, sprinted, default, dprinted = sys.argv[1:5]
builtin = json.load(open(dprinted))
errs = []
if builtin != strip_comments(open(default).read()):
    errs.append("--print-policy %s is not what %s says" % (json.dumps(builtin), default))
want = merged(builtin, strip_comments(open(strict).read()))
# cpu_s follows timeout_s when the file leaves it out (timeout_s x argon2_max_parallel)
want["unlock"]["cpu_s"] = want["unlock"]["timeout_s"] * want["pbkdf"]["argon2_max_parallel"]
got = json.load(open(sprinted))
if got != want:
    errs.append("the printed strict policy %s is not what %s says (%s)" % (json.dumps(got), strict, json.dumps(want)))
print("\n".join(errs))
EOF
) || fail "comparing the printed policies failed"
[ -z "$out" ] || problem "$out"
note "--print-policy round trip checked"

# ---- 4. unlock_timeout= over the file's unlock.timeout_s ------------------------

# 10^9 PBKDF2 iterations (the most a policy may allow) keep an unlock busy for
# minutes: only the wall-clock limit ends it.
"$GEN/patch-luks1-pbkdf.py" --iterations 1000000000 "$STORE_T/slow.img" || fail "patch-luks1-pbkdf failed"
printf '{ "pbkdf": { "pbkdf2_max_iterations": 1000000000 }, "unlock": { "timeout_s": 1 } }\n' >"$POL/timeout-1.json"
# timeout_check WHAT STATUS_JSON SECONDS: slow.img rejected unlock.timeout,
# the reason naming SECONDS, after at least SECONDS (when inspect_ms is given).
timeout_check() {
    local r
    r=$("$PYTHON" - "$@" <<'EOF'
import json, sys
what, path, secs = sys.argv[1], sys.argv[2], int(sys.argv[3])
if path.endswith(".jsonl"):   # safeimg-inspect --json: one verdict a line
    ims = [json.loads(l) for l in open(path) if l.strip()]
else:                        # status.json
    ims = json.load(open(path))["images"]
im = [i for i in ims if i["name"] == "slow.img"]
if not im:
    print("%s: slow.img not listed" % what)
    sys.exit()
im = im[0]
want = "longer than %d s" % secs
if im["state"] != "rejected" or im["check"] != "unlock.timeout" or want not in (im.get("reason") or ""):
    print("%s: slow.img %s/%s (%s), want rejected/unlock.timeout saying %r" % (
        what, im["state"], im["check"], im.get("reason"), want))
ms = im.get("inspect_ms")
if ms is not None and ms < secs * 1000:
    print("%s: slow.img decided after %d ms, before its %d s timeout" % (what, ms, secs))
EOF
) || fail "checking slow.img failed"
    [ -z "$r" ] || problem "$r"
}
t0=$(_now_us)
mount_store "$STORE_T" "$MNT" "keyfile=$KEY,policy=$POL/timeout-1.json"
wait_verdicts "$MNT" 1 30
timeout_check "policy timeout_s 1" "$MNT/.safeimgfs/status.json" 1
umount_store "$MNT"
mount_store "$STORE_T" "$MNT" "keyfile=$KEY,policy=$POL/timeout-1.json,unlock_timeout=2"
wait_verdicts "$MNT" 1 30
timeout_check "policy timeout_s 1, -o unlock_timeout=2" "$MNT/.safeimgfs/status.json" 2
umount_store "$MNT"
timeout -k 5 60 "$SAFEIMG_INSPECT" --policy "$POL/timeout-1.json" --unlock-timeout 2 --keyfile "$KEY" --json \
    "$STORE_T/slow.img" >"$W/slow.jsonl" 2>"$W/slow.err"
rc=$?
[ "$rc" = 1 ] || problem "safeimg-inspect on slow.img: exit $rc (want 1): $(cat "$W/slow.err")"
timeout_check "safeimg-inspect --unlock-timeout 2" "$W/slow.jsonl" 2
note "unlock timeouts checked in $(elapsed_ms "$t0") ms"

for log in "$SCRATCH"/daemon.*.log; do
    secrets_absent "$log" "daemon log ${log##*/}" "$KEY"
done
problems_end
echo "PASS: $TEST_NAME"
exit 0
