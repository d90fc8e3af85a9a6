#!/bin/bash
# Integration test: the engine's format name agrees with qemu's.
#
# For every image format this qemu-img can create (qcow2, qcow, qed, vmdk,
# vdi, vpc, vhdx, luks, raw, parallels, with their subformats; bochs, cloop and
# dmg are read-only in qemu and are reported as skipped), a small file is made
# by qemu-img itself and padded to a whole sector; `qemu-img info
# --output=json` names its format (qemu probes it: no -f).  The same file is
# then the plaintext of a qemu LUKS1 volume (tests/gen/engine-wrap.sh), and safeimg-inspect
# --json must name the same format (qemu's vpc is the engine's vhd):
#   qemu says F (not raw)  -> rejected, check inner.F, inner_format F, F in probes.inner
#   qemu says raw          -> accepted, check inner.raw, inner_format raw
# except for the formats the engine finds although qemu 7.2 does not probe
# them (inspection.md: "treat them as formats too"), which must be named:
#   vpc-fixed (a fixed VHD: a footer only)  -> inner.vhd
#   luks2     (cryptsetup LUKS2 header)     -> inner.luks
# Raw disks made by other tools (genisoimage, sgdisk, sfdisk: qemu says raw)
# must be accepted as raw too.
# No FUSE mount is needed: safeimg-inspect runs the same inspection.
set -u
. "$(dirname "$0")/lib.sh"

need_tool qemu-img cryptsetup genisoimage sgdisk sfdisk timeout
[ -x "$PYTHON" ] || skip "no $PYTHON"
need_prog "$SAFEIMG_INSPECT"

STORE=$SCRATCH/store PLAIN=$SCRATCH/plain KEYS=$SCRATCH/keys W=$SCRATCH/work
mkdir -p "$STORE" "$PLAIN" "$KEYS" "$W"
chmod 700 "$KEYS"
KEY=$KEYS/passphrase
write_key "$KEY" "agree-test-pass"

SUPPORTED=" $(qemu-img --help | sed -n 's/^Supported formats: *//p') "

# sample NAME: make $W/NAME (extent files of a VMDK descriptor go beside it).
# Prints why on failure.
sample() {
    local n=$1 f="$W/$1"
    case $n in
    qcow2) qemu-img create -q -f qcow2 "$f" 1M ;;
    qcow2-v2) qemu-img create -q -f qcow2 -o compat=0.10 "$f" 1M ;;
    qcow2-xl2) qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=128k "$f" 1M ;;
    qcow) qemu-img create -q -f qcow "$f" 1M ;;
    qed) qemu-img create -q -f qed "$f" 1M ;;
    vmdk) qemu-img create -q -f vmdk "$f" 1M ;;
    vmdk-stream) qemu-img create -q -f vmdk -o subformat=streamOptimized "$f" 1M ;;
    vmdk-flat) qemu-img create -q -f vmdk -o subformat=monolithicFlat "$f" 1M ;;
    vmdk-2gsparse) qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse "$f" 1M ;;
    vmdk-2gflat) qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentFlat "$f" 1M ;;
    vdi) qemu-img create -q -f vdi "$f" 1M ;;
    vdi-static) qemu-img create -q -f vdi -o static=on "$f" 1M ;;
    vpc) qemu-img create -q -f vpc "$f" 1M ;;
    vpc-fixed) qemu-img create -q -f vpc -o subformat=fixed "$f" 1M ;;
    vhdx) qemu-img create -q -f vhdx "$f" 1M ;;
    vhdx-fixed) qemu-img create -q -f vhdx -o subformat=fixed "$f" 1M ;;
    parallels) qemu-img create -q -f parallels "$f" 1M ;;
    raw) qemu-img create -q -f raw "$f" 1M ;;
    luks) "$GEN/engine-sample.sh" luks1 "$f" ;;   # qemu-img create -f luks, retried
    luks2)
        truncate -s 1M "$f" &&
            cryptsetup luksFormat -q --type luks2 --luks2-metadata-size 16k --luks2-keyslots-size 256k \
                --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$KEY" "$f" 2>&1 |
            grep -v -e 'is very small' -e 'too small for activation'
        [ "${PIPESTATUS[0]}" = 0 ] && cryptsetup isLuks --type luks2 "$f" ;;
    bochs|cloop|dmg) qemu-img create -q -f "$n" "$f" 1M ;;
    iso|gpt|mbr) "$GEN/engine-sample.sh" "$n" "$f" ;;
    *) echo "unknown sample $n"; return 1 ;;
    esac
}

# driver NAME: the qemu driver that makes the sample ("" for other tools).
driver() {
    case $1 in
    qcow2*) echo qcow2 ;;
    vmdk*) echo vmdk ;;
    vdi*) echo vdi ;;
    vpc*) echo vpc ;;
    vhdx*) echo vhdx ;;
    luks2|iso|gpt|mbr) echo "" ;;
    *) echo "$1" ;;
    esac
}

# Formats the engine names although qemu (7.2) probes them as raw.
declare -A EAGER=([vpc-fixed]=vhd [luks2]=luks)

# The LUKS1 volume every sample is wrapped in: one empty qemu LUKS1 image
# (made while the samples are), copied, resized and filled per sample.
gen_bg engine-wrap.sh --format luks --template-only "$SCRATCH/template.luks" "$KEY"

ALL=(qcow2 qcow2-v2 qcow2-xl2 qcow qed vmdk vmdk-stream vmdk-flat vmdk-2gsparse vmdk-2gflat vdi vdi-static
     vpc vpc-fixed vhdx vhdx-fixed parallels raw luks luks2 bochs cloop dmg iso gpt mbr)
SAMPLES=() SKIPPED=()
declare -A QFMT=()
# Make the samples concurrently (each is a few qemu-img runs), then ask
# qemu-img info about each.
PIDS=()
for n in "${ALL[@]}"; do
    d=$(driver "$n")
    if [ -n "$d" ] && [[ $SUPPORTED != *" $d "* ]]; then
        SKIPPED+=("$n (qemu-img lacks $d)")
        continue
    fi
    ( sample "$n" >"$SCRATCH/sample.$n.log" 2>&1 ) &
    PIDS+=("$!:$n")
done
TRIED=()
for rec in "${PIDS[@]}"; do
    n=${rec#*:}
    if wait "${rec%%:*}" && [ -s "$W/$n" ]; then
        TRIED+=("$n")
    elif [ -z "$(driver "$n")" ]; then
        fail "cannot make the $n sample: $(cat "$SCRATCH/sample.$n.log")"
    else
        SKIPPED+=("$n (qemu-img cannot create it: $(head -n 1 "$SCRATCH/sample.$n.log" | sed 's/^qemu-img: [^:]*: //'))")
    fi
done
for n in "${TRIED[@]}"; do
    sz=$(stat -c %s "$W/$n")
    [ $((sz % 512)) -eq 0 ] || truncate -s $(((sz / 512 + 1) * 512)) "$W/$n"
    # What qemu makes of the padded file (as a consumer probing it would).
    q=$(qemu-img info -U --output=json "$W/$n" 2>"$SCRATCH/info.err" |
        "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["format"])' 2>/dev/null) ||
        fail "qemu-img info cannot read the $n sample: $(cat "$SCRATCH/info.err")"
    QFMT[$n]=$q
    SAMPLES+=("$n")
done
gen_wait   # the template
for n in "${SAMPLES[@]}"; do
    gen_bg engine-wrap.sh --format luks --template "$SCRATCH/template.luks" --payload "$W/$n" \
        "$STORE" "$n.img" "$KEY" "$PLAIN"
done
gen_wait
[ ${#SAMPLES[@]} -ge 10 ] || fail "only ${#SAMPLES[@]} samples could be made: ${SKIPPED[*]}"
note "${#SAMPLES[@]} samples; skipped: ${SKIPPED[*]:-none}"

for n in "${SAMPLES[@]}"; do
    cmp -s "$W/$n" "$PLAIN/$n.img.plain" || fail "the plaintext of $n.img is not the sample"
done
args=()
for n in "${SAMPLES[@]}"; do args+=("$STORE/$n.img"); done
t0=$(_now_us)
timeout -k 5 100 "$SAFEIMG_INSPECT" --keyfile "$KEY" --json "${args[@]}" \
    >"$SCRATCH/inspect.jsonl" 2>"$SCRATCH/inspect.err"
rc=$?
[ "$rc" = 1 ] || [ "$rc" = 0 ] || fail "safeimg-inspect exit $rc: $(head -c 2000 "$SCRATCH/inspect.err")"
note "safeimg-inspect decided ${#SAMPLES[@]} images in $(elapsed_ms "$t0") ms"

specs=()
for n in "${SAMPLES[@]}"; do specs+=("$n=${QFMT[$n]}=${EAGER[$n]:-}"); done
report=$("$PYTHON" - "$SCRATCH/inspect.jsonl" "${specs[@]}" <<'EOF'
import json, sys
got = {}
for line in open(sys.argv[1]):
    if line.strip():
        d = json.loads(line)
        got[d["name"]] = d
errs, rows = [], []
for spec in sys.argv[2:]:
    name, qemu, eager = spec.split("=")
    d = got.get(name + ".img")
    if d is None:
        errs.append("%s: no verdict from safeimg-inspect" % name)
        continue
    fmts = [p.get("format") for p in (d.get("probes") or {}).get("inner") or []]
    rows.append("%-14s qemu %-9s engine %-9s %-8s %-14s probes %s" % (name, qemu, d.get("inner_format"), d.get("state"),
                                                                  d.get("check"), ",".join(fmts) or "-"))
    if d.get("outer_format") != "luks1" or d.get("inner_inspected") is not True:
        errs.append("%s: not inspected inside (outer_format %r, check %r: %s)" % (name, d.get("outer_format"),
                                                                                d.get("check"), d.get("reason")))
        continue
    want = {"vpc": "vhd"}.get(qemu, qemu)
    if want == "raw" and eager:
        want = eager
    if want == "raw":
        if (d.get("state"), d.get("check"), d.get("inner_format")) != ("accepted", "inner.raw", "raw"):
            errs.append("%s: qemu says raw, the engine %s/%s/%s: %s" % (name, d.get("state"), d.get("check"),
                                                                      d.get("inner_format"), d.get("reason")))
    else:
        if (d.get("state"), d.get("check"), d.get("inner_format")) != ("rejected", "inner." + want, want) or \
                want not in fmts:
            errs.append("%s: qemu says %s, the engine %s/%s/%s, probes %s (want rejected/inner.%s/%s)" % (
                name, qemu, d.get("state"), d.get("check"), d.get("inner_format"), fmts, want, want))
print("\n".join("integ-agree.sh:   " + r for r in rows))
print("ERRORS:" + "\n  ".join(errs) if errs else "")
EOF
) || fail "comparing the verdicts failed"
printf '%s\n' "${report%%ERRORS:*}"
case $report in
*ERRORS:*) fail "the engine disagrees with qemu:
  ${report#*ERRORS:}" ;;
esac
echo "PASS: $TEST_NAME"
exit 0
