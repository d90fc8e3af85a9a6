#!/bin/bash
# Integration test: the inspection engine on real samples, inside both kinds
# of encrypted image, through the mount and through safeimg-inspect.
#
# Every sample (tests/gen/engine-sample.sh, made with the real tools) is the
# plaintext of a raw LUKS1 volume (SAMPLE.luks) and of a qcow2+LUKS image
# (SAMPLE.qcow2), both made by qemu-img (tests/gen/engine-wrap.sh: a copy of
# one empty image of each kind, resized to the sample, the sample put in with
# `qemu-img convert -n -f raw`; qemu's PBKDF benchmark costs seconds per new
# LUKS header).  Expected verdicts, the same for both wrappers:
#   qcow2-backing   qcow2 with backing file /etc/passwd          -> inner.qcow2
#   qcow2-datafile  qcow2 with an external data file             -> inner.qcow2
#   vmdk-flat       monolithicFlat descriptor, extent /etc/passwd -> inner.vmdk
#   vmdk            monolithicSparse VMDK                        -> inner.vmdk
#   vpc             dynamic VHD                                  -> inner.vhd
#   vpc-fixed       fixed VHD (footer in the last sector only)   -> inner.vhd
#   vhdx, vdi, qed                                               -> inner.vhdx, inner.vdi, inner.qed
#   luks1           a nested qemu LUKS1 volume                   -> inner.luks
#   iso-qcow2       an ISO whose system area starts with a qcow2 header
#                   (qemu-img takes it for a qcow2)              -> inner.multiple or inner.qcow2
#   gpt, mbr        a disk with a GPT (sgdisk) / an MBR (sfdisk) -> accepted, inner.raw
#   random          1 MiB of random bytes                        -> accepted, inner.raw
# Checks, in status.json of the mount and in safeimg-inspect --json (which must
# agree): state, check id (exact), inner_format, and that probes.inner lists
# the sample's format (qcow2 for iso-qcow2).  Details are checked only where
# the engine gives them: a qcow2 with a backing file must say so (and name
# /etc/passwd once the probes name files), a qcow2 with a data file must say
# so once the binary knows data file details, a VMDK detail that lists extents
# must name /etc/passwd.  The accepted views serve exactly the sample and list
# no layout but their own (a GPT's protective MBR is no second table); when
# the engine has GPT and MBR probes (its probe table, see below), probes.inner
# lists gpt / mbr as safe, and with an ISO probe iso-qcow2 must be
# inner.multiple listing iso and qcow2.
# Rejected names give ENOENT on stat and open and are not listed.
# The outer rule: outer-vhd.luks, a raw LUKS volume whose last 512 bytes are
# a VHD footer ("conectix" and zeros), is rejected with outer.multiple before
# any key is used (probes.outer lists luks and vhd; inner_inspected false).
set -u
. "$(dirname "$0")/lib.sh"

need_root_fuse
need_tool qemu-img cryptsetup genisoimage sgdisk sfdisk sha256sum timeout
[ -x "$PYTHON" ] || skip "no $PYTHON"
need_prog "$SAFEIMGFS" "$SAFEIMG_INSPECT"

STORE=$SCRATCH/store PLAIN=$SCRATCH/plain KEYS=$SCRATCH/keys MNT=$SCRATCH/mnt PAY=$SCRATCH/samples
mkdir -p "$STORE" "$PLAIN" "$KEYS" "$MNT" "$PAY"
chmod 700 "$KEYS"
KEY=$KEYS/passphrase
write_key "$KEY" "engine-test-pass"

# sample -> the check id(s) it must get ("a|b": either)
declare -A WANT=(
    [qcow2-backing]=inner.qcow2
    [qcow2-datafile]=inner.qcow2
    [vmdk-flat]=inner.vmdk
    [vmdk]=inner.vmdk
    [vpc]=inner.vhd
    [vpc-fixed]=inner.vhd
    [vhdx]=inner.vhdx
    [vdi]=inner.vdi
    [qed]=inner.qed
    [luks1]=inner.luks
    [iso-qcow2]='inner.multiple|inner.qcow2'
    [gpt]=inner.raw
    [mbr]=inner.raw
    [random]=inner.raw
)
# sample -> the format probes.inner must list
declare -A FORMAT=(
    [qcow2-backing]=qcow2 [qcow2-datafile]=qcow2 [vmdk-flat]=vmdk [vmdk]=vmdk [vpc]=vhd [vpc-fixed]=vhd
    [vhdx]=vhdx [vdi]=vdi [qed]=qed [luks1]=luks [iso-qcow2]=qcow2
)

# What the engine under test knows (it grows while these tests stand): the
# probe table and the qcow2 details of the sources, provided the binaries are
# newer than every probe source (make check rebuilds them first).  Otherwise
# the assertions that depend on it are skipped: the format names are in the
# binaries anyway (the decision rules name them), so strings(1) cannot tell.
SRC=$top_srcdir/src
built_from_sources() {
    local b f
    [ -f "$SRC/probe_table.c" ] || return 1
    for b in "$SAFEIMGFS" "$SAFEIMG_INSPECT"; do
        for f in "$SRC"/probe*.c "$SRC"/probe*.h; do
            [ "$f" -nt "$b" ] && return 1
        done
    done
    return 0
}
in_table() { grep -Eq "\{ *\"$1\", *SIF_CLASS_" "$SRC/probe_table.c"; }
LAYOUTS=() ISO=0 RICH_QCOW2=0 KNOWN=0
if built_from_sources; then
    KNOWN=1
    for f in gpt mbr; do in_table "$f" && LAYOUTS+=("$f"); done
    in_table iso && ISO=1
    grep -q 'external data file' "$SRC"/probe_*.c && grep -q 'with a backing file' "$SRC"/probe_*.c && RICH_QCOW2=1
    note "engine (from $SRC): layout probes [${LAYOUTS[*]}], iso probe $ISO, qcow2 file details $RICH_QCOW2"
else
    note "the binaries are older than $SRC/probe*: exact layout listings and qcow2 file details not asserted"
fi

for k in "${!WANT[@]}"; do gen_bg engine-sample.sh "$k" "$PAY/$k"; done
gen_bg engine-wrap.sh --format luks --template-only "$SCRATCH/template.luks" "$KEY"
gen_bg engine-wrap.sh --format qcow2 --template-only "$SCRATCH/template.qcow2" "$KEY"
gen_wait
note "made ${#WANT[@]} samples"
for k in "${!WANT[@]}"; do
    for f in luks qcow2; do
        gen_bg engine-wrap.sh --format $f --template "$SCRATCH/template.$f" --payload "$PAY/$k" \
            "$STORE" "$k.$f" "$KEY" "$PLAIN"
    done
done
gen_wait
note "wrapped them in LUKS1 and qcow2+LUKS"

# The outer rule: a VHD footer on a LUKS volume.  cryptsetup still opens its
# header, so only the rule against a second format can catch it.
cp "$STORE/random.luks" "$STORE/outer-vhd.luks" || fail "cannot copy random.luks"
cryptsetup luksDump "$STORE/outer-vhd.luks" | grep -q '^Version:[[:space:]]*1$' || fail "random.luks is not a LUKS1 volume"
"$PYTHON" - "$STORE/outer-vhd.luks" <<'EOF' || fail "cannot write the VHD footer"
import os, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(-512, os.SEEK_END)
    f.write(b"conectix" + b"\0" * 504)
EOF
cryptsetup luksDump "$STORE/outer-vhd.luks" >/dev/null 2>&1 || fail "outer-vhd.luks is no longer a LUKS volume for cryptsetup"
[ "$(tail -c 512 "$STORE/outer-vhd.luks" | head -c 8)" = conectix ] || fail "outer-vhd.luks has no VHD footer"

IMAGES=()
for k in "${!WANT[@]}"; do IMAGES+=("$k.luks" "$k.qcow2"); done
IMAGES+=(outer-vhd.luks)
for n in "${IMAGES[@]}"; do [ -f "$STORE/$n" ] || fail "image $n was not made"; done

t0=$(_now_us)
mount_store "$STORE" "$MNT" "keyfile=$KEY"
wait_verdicts "$MNT" "${#IMAGES[@]}"
note "mount decided ${#IMAGES[@]} images in $(elapsed_ms "$t0") ms"
cp "$MNT/.safeimgfs/status.json" "$SCRATCH/status.json"

t0=$(_now_us)
timeout -k 5 100 "$SAFEIMG_INSPECT" --keyfile "$KEY" --json "${IMAGES[@]/#/$STORE/}" \
    >"$SCRATCH/inspect.jsonl" 2>"$SCRATCH/inspect.err"
rc=$?
[ "$rc" = 1 ] || fail "safeimg-inspect exit $rc (want 1): $(head -c 2000 "$SCRATCH/inspect.err")"
note "safeimg-inspect decided ${#IMAGES[@]} images in $(elapsed_ms "$t0") ms"

specs=()
for k in "${!WANT[@]}"; do specs+=("$k=${WANT[$k]}=${FORMAT[$k]:-}"); done
errors=$("$PYTHON" - "$MNT" "$SCRATCH/status.json" "$SCRATCH/inspect.jsonl" "$PLAIN" "$RICH_QCOW2" \
    "${LAYOUTS[*]}" "$ISO" "$KNOWN" "${specs[@]}" <<'EOF'
import errno, hashlib, json, os, sys
mnt, stp, insp, plain, rich, layouts, iso, known = sys.argv[1:9]
rich = rich == "1"
iso = iso == "1"
known = known == "1"
layouts = layouts.split()
errs = []
mount = {i["name"]: i for i in json.load(open(stp))["images"]}
inspect = {}
for line in open(insp):
    if line.strip():
        d = json.loads(line)
        inspect[d["name"]] = d

def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()

def enoent(name):
    for what, fn in (("stat", os.stat), ("open", lambda p: open(p, "rb"))):
        try:
            fn(os.path.join(mnt, name))
            errs.append("%s: %s of the view succeeded (want ENOENT)" % (name, what))
        except OSError as e:
            if e.errno != errno.ENOENT:
                errs.append("%s: %s gives %s (want ENOENT)" % (name, what, errno.errorcode.get(e.errno)))

for spec in sys.argv[9:]:
    sample, want, fmt = spec.split("=")
    wants = want.split("|")
    for name in (sample + ".luks", sample + ".qcow2"):
        outer = "luks1" if name.endswith(".luks") else "qcow2+luks"
        for src, ims in (("status.json", mount), ("safeimg-inspect", inspect)):
            im = ims.get(name)
            if im is None:
                errs.append("%s: missing from %s" % (name, src))
                continue
            say = "%s (%s)" % (name, src)
            state = "accepted" if want == "inner.raw" else "rejected"
            if im.get("state") != state or im.get("check") not in wants:
                errs.append("%s: %s/%s (want %s/%s): %s" % (say, im.get("state"), im.get("check"), state, want,
                                                          im.get("reason")))
            if im.get("outer_format") != outer:
                errs.append("%s: outer_format %r (want %s)" % (say, im.get("outer_format"), outer))
            if im.get("inner_inspected") is not True:
                errs.append("%s: inner_inspected %r" % (say, im.get("inner_inspected")))
            inner = (im.get("probes") or {}).get("inner")
            if not isinstance(inner, list):
                errs.append("%s: probes.inner is %r, not a list" % (say, inner))
                continue
            fmts = [p.get("format") for p in inner]
            hits = [p for p in inner if p.get("format") == fmt]
            if want == "inner.raw":
                if im.get("inner_format") != "raw":
                    errs.append("%s: inner_format %r (want raw)" % (say, im.get("inner_format")))
                # Only the sample's own layout, if any: a GPT's protective
                # MBR is part of the GPT, random bytes are nothing.  With a
                # known probe table, exactly the sample's layout if the
                # table has it.
                tables = sorted(f for f in fmts if f in ("gpt", "mbr"))
                expect = sorted(f for f in layouts if f == sample)
                if (known and tables != expect) or any(f != sample for f in tables) or \
                        any(f not in ("gpt", "mbr", "iso", "udf") for f in fmts):
                    errs.append("%s: probes.inner lists %s (want %s)" % (say, fmts,
                                expect or ("nothing" if known else "at most " + sample)))
                if any(not p.get("safe") for p in inner):
                    errs.append("%s: a layout is not safe: %s" % (say, inner))
                continue
            wanted_inner = [w.split(".", 1)[1] for w in wants]
            if im.get("inner_format") not in wanted_inner:
                errs.append("%s: inner_format %r (want %s)" % (say, im.get("inner_format"), " or ".join(wanted_inner)))
            if not hits:
                errs.append("%s: probes.inner %s does not list %s" % (say, fmts, fmt))
                continue
            if im.get("check") == "inner.multiple" and len(inner) < 2:
                errs.append("%s: inner.multiple with probes.inner %s" % (say, fmts))
            if sample == "iso-qcow2" and iso and (im.get("check") != "inner.multiple" or "iso" not in fmts):
                errs.append("%s: with an ISO probe, %s and probes.inner %s (want inner.multiple, iso and qcow2)" % (
                    say, im.get("check"), fmts))
            detail = hits[0].get("detail") or ""
            if sample == "qcow2-backing" and detail:
                if "backing" not in detail:
                    errs.append("%s: qcow2 detail %r does not mention the backing file" % (say, detail))
                if rich and "/etc/passwd" not in detail:
                    errs.append("%s: qcow2 detail %r does not name /etc/passwd" % (say, detail))
            if sample == "qcow2-datafile" and detail and rich and "data file" not in detail:
                errs.append("%s: qcow2 detail %r does not mention the data file" % (say, detail))
            if sample == "vmdk-flat" and "extent" in detail and "/etc/passwd" not in detail:
                errs.append("%s: the VMDK detail %r lists extents but not /etc/passwd" % (say, detail))
        if mount.get(name, {}).get("state") == "accepted":
            try:
                if sha(os.path.join(mnt, name)) != sha(os.path.join(plain, name + ".plain")):
                    errs.append("%s: the view differs from the sample" % name)
            except OSError as e:
                errs.append("%s: cannot read the view (%s)" % (name, e))
        elif name in mount:
            enoent(name)

# The outer rule, decided on the bytes alone.
name = "outer-vhd.luks"
for src, ims in (("status.json", mount), ("safeimg-inspect", inspect)):
    im = ims.get(name)
    if im is None:
        errs.append("%s: missing from %s" % (name, src))
        continue
    say = "%s (%s)" % (name, src)
    if (im.get("state"), im.get("check")) != ("rejected", "outer.multiple"):
        errs.append("%s: %s/%s (want rejected/outer.multiple): %s" % (say, im.get("state"), im.get("check"),
                                                                    im.get("reason")))
    outer = [p.get("format") for p in (im.get("probes") or {}).get("outer") or []]
    if "luks" not in outer or "vhd" not in outer:
        errs.append("%s: probes.outer lists %s (want luks and vhd)" % (say, outer))
    if im.get("inner_inspected") is not False or (im.get("probes") or {}).get("inner") is not None:
        errs.append("%s: the content was inspected (inner_inspected %r, probes.inner %r)" % (
            say, im.get("inner_inspected"), (im.get("probes") or {}).get("inner")))
enoent(name)

# The two programs agree on every image.
for name in sorted(set(mount) | set(inspect)):
    a, b = mount.get(name, {}), inspect.get(name, {})
    for field in ("state", "check", "inner_format", "outer_format"):
        if a.get(field) != b.get(field):
            errs.append("%s: %s is %r in status.json but %r from safeimg-inspect" % (name, field, a.get(field),
                                                                                   b.get(field)))
print("\n  ".join(errs))
EOF
) || fail "checking the verdicts failed"
[ -z "$errors" ] || fail "wrong verdicts:
  $errors"

listed=$("$PYTHON" -c 'import os,sys; print(" ".join(sorted(n for n in os.listdir(sys.argv[1]) if n != ".safeimgfs")))' "$MNT")
assert_eq "gpt.luks gpt.qcow2 mbr.luks mbr.qcow2 random.luks random.qcow2" "$listed" "readdir"

# For the log: what the engine says about the samples.
"$PYTHON" - "$SCRATCH/status.json" <<'EOF'
import json, sys
for im in sorted(json.load(open(sys.argv[1]))["images"], key=lambda i: i["name"]):
    probes = im.get("probes") or {}
    hits = probes.get("inner") if probes.get("inner") is not None else probes.get("outer")
    print("integ-engine.sh:   %-22s %-9s %-15s %s" % (im["name"], im["state"], im["check"],
          "; ".join("%s@%s%s" % (p["format"], p["offset"], ": " + p["detail"] if p.get("detail") else "")
                    for p in hits or [])))
EOF

umount_store "$MNT"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status after fusermount3 -u"
echo "PASS: $TEST_NAME"
exit 0
