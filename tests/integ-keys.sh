#!/bin/bash
# Integration test: key sources and key formats on real images and real mounts.
#
# Secrets are 32 random bytes, like a Barbican symmetric key, with a 0x00,
# a 0x05 and a final 0x0a forced in (so the legacy form differs from the
# hex, and a binary secret ending in a newline must not lose it). The
# passphrases are computed here with Python (binascii.hexlify, and "%x" per
# byte for the legacy form), independently of safeimgfs.
#
# Store 1 (LUKS1 and LUKS2 from cryptsetup), mounted with
# -o keydir=KEYS,key_format=hex:
#   hex.img        passphrase hex(S1), KEYS/hex.img.key = S1     accepted, key_form hex, key_source keydir:name
#   legacy.img     passphrase legacy(S2), KEYS/legacy.img.key=S2 accepted, key_form hex-legacy
#   byid.img       sidecar os_encrypt_key_id ID3, KEYS/ID3 = S3, KEYS/byid.img.key = a wrong secret
#                                                                 accepted, key_source keydir:id
#   idfallback.img sidecar id with no KEYS/<id>, KEYS/idfallback.img.key right
#                                                                 accepted, key_source keydir:name
#   badid.img      sidecar id "../hex.img.key", KEYS/badid.img.key right
#                                                                 rejected key.id (no fallback)
#   badperm.img    sidecar id whose KEYS/<id> is mode 0644 (right secret), KEYS/badperm.img.key right
#                                                                 rejected key.perms (no fallback)
#   plain.img      passphrase "plain-pass", its key file the same  rejected key.wrong (hex of it is tried)
# Every accepted view's sha256 equals the generator's plaintext.
# The same store with -o keydir=KEYS (raw, the default): hex.img key.wrong,
# plain.img accepted with key_form raw.
# Store 2 (links of plain.img), -o key_command=PROG,policy=P with
# {"keys": {"command_timeout_s": 2}}; PROG gets NAME and KEY_ID:
#   cmd-ok.img     prints the passphrase (checks $2 = the sidecar's id)  accepted, key_source command
#   cmd-fail.img   prints a canary and exits 3                   key.command, the canary nowhere
#   cmd-signal.img kills itself with SIGKILL                     key.command
#   cmd-hang.img   sleeps                                        key.timeout within 2 s + slack;
#                  while it hangs, the mount answers (root listing, status.json, reads of
#                  cmd-ok.img); afterwards none of its processes is left.
# Store 3 (links of hex.img, legacy.img), -o key_command=PROG2,key_format=hex
# where PROG2 cats the binary secret: accepted, key_form hex and hex-legacy.
# safeimg-inspect --json: --keydir --key-format hex, --keyfile --key-format
# hex, --key-command with --policy give the same verdicts and key fields;
# exit 2 for a relative --key-command, a group-writable program and an
# unknown --key-format; the daemon refuses to mount with a relative
# key_command.
set -u
. "$(dirname "$0")/lib.sh"

need_root_fuse
need_tool cryptsetup sha256sum timeout
need_python_crypto
need_prog "$SAFEIMGFS" "$SAFEIMG_INSPECT"

STORE=$SCRATCH/store PLAIN=$SCRATCH/plain KEYS=$SCRATCH/keys MNT=$SCRATCH/mnt
BIN=$SCRATCH/bin G=$SCRATCH/genkeys
mkdir -p "$STORE" "$PLAIN" "$KEYS" "$MNT" "$BIN" "$G"
chmod 700 "$KEYS" "$BIN"

# secret FILE: 32 random bytes with 0x00, 0x05 and a final 0x0a (mode 0600).
secret() {
    "$PYTHON" - "$1" <<'EOF' || fail "cannot make secret $1"
import os, sys
b = bytearray(os.urandom(32))
b[0], b[9], b[31] = 0x00, 0x05, 0x0a
b[1] |= 0x10          # at least one byte that keeps both nibbles
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, bytes(b))
os.close(fd)
EOF
}
# hex_of FILE / legacy_of FILE: the os-brick passphrase and its mangled form.
hex_of() { "$PYTHON" -c 'import binascii,sys; print(binascii.hexlify(open(sys.argv[1],"rb").read()).decode(), end="")' "$1"; }
legacy_of() { "$PYTHON" -c 'import sys; print("".join("%x" % c for c in open(sys.argv[1],"rb").read()), end="")' "$1"; }

# mk NAME PASSPHRASE [GEN OPTIONS...]: a 1 MiB LUKS image (in the background).
mk() {
    local name=$1 pass=$2; shift 2
    write_key "$G/$name" "$pass"
    gen_bg luks-reencrypt.sh --size-kib 1024 "$@" "$STORE" "$name" "$G/$name" "$PLAIN"
}

ID3=0f2a7e9c-5b1d-4c3e-8a6f-1d2e3f4a5b6c
for s in S1 S2 S3 S4 S5 S6 S7; do secret "$G/$s.bin"; done
HEX1=$(hex_of "$G/S1.bin") LEGACY2=$(legacy_of "$G/S2.bin")
[ ${#HEX1} = 64 ] || fail "hex of S1 is ${#HEX1} characters"
[ "$LEGACY2" != "$(hex_of "$G/S2.bin")" ] || fail "the legacy form of S2 equals its hex"
case $HEX1 in 00*0a) ;; *) fail "S1 does not start with 00 and end in 0a: $HEX1" ;; esac

mk hex.img "$HEX1" --luks1
mk legacy.img "$LEGACY2"
mk byid.img "$(hex_of "$G/S3.bin")"
mk idfallback.img "$(hex_of "$G/S5.bin")"
mk badid.img "$(hex_of "$G/S6.bin")"
mk badperm.img "$(hex_of "$G/S7.bin")"
mk plain.img plain-pass
cp "$G/S1.bin" "$KEYS/hex.img.key"
cp "$G/S2.bin" "$KEYS/legacy.img.key"
cp "$G/S3.bin" "$KEYS/$ID3"
cp "$G/S4.bin" "$KEYS/byid.img.key"          # wrong: only the id file opens byid.img
printf '{"os_encrypt_key_id": "%s"}' "$ID3" >"$STORE/byid.img.json"
cp "$G/S5.bin" "$KEYS/idfallback.img.key"
printf '{"properties": {"os_encrypt_key_id": "no-such-secret"}}' >"$STORE/idfallback.img.json"
cp "$G/S6.bin" "$KEYS/badid.img.key"
printf '{"os_encrypt_key_id": "../hex.img.key"}' >"$STORE/badid.img.json"
cp "$G/S7.bin" "$KEYS/perm-id"
chmod 644 "$KEYS/perm-id"
cp "$G/S7.bin" "$KEYS/badperm.img.key"
printf '{"os_encrypt_key_id": "perm-id"}' >"$STORE/badperm.img.json"
write_key "$KEYS/plain.img.key" plain-pass
chmod 600 "$KEYS"/*.key "$KEYS/$ID3"
gen_wait
note "generated 7 images"

# check_view MNT NAME PLAIN-NAME: the view's sha256 is the plaintext's.
check_view() {
    [ "$(sha256_of "$1/$2")" = "$(sha256_of "$PLAIN/$3.plain")" ] ||
        fail "$2: the view's sha256 differs from the plaintext of $3"
}
# expect MNT NAME STATE CHECK [KEY_FORM KEY_SOURCE]
expect() {
    assert_eq "$3" "$(status_field "$1" "$2" state)" "$2 state"
    assert_eq "$4" "$(status_field "$1" "$2" check)" "$2 check (reason: $(status_field "$1" "$2" reason))"
    if [ $# -ge 5 ]; then
        assert_eq "$5" "$(status_field "$1" "$2" key_form)" "$2 key_form in status.json"
        assert_eq "$6" "$(status_field "$1" "$2" key_source)" "$2 key_source in status.json"
    fi
}

# group_gone PGID: no live (non-zombie) process is in process group PGID.
group_gone() {
    local f s a
    for f in /proc/[0-9]*/stat; do
        { read -r s <"$f"; } 2>/dev/null || continue
        s=${s##*) }
        read -ra a <<<"$s"
        [ "${a[2]}" = "$1" ] && [ "${a[0]}" != Z ] && return 1
    done
    return 0
}

# ---- keydir, key_format=hex
mount_store "$STORE" "$MNT" "keydir=$KEYS,key_format=hex"
wait_verdicts "$MNT" 7
expect "$MNT" hex.img accepted inner.raw hex keydir:name
expect "$MNT" legacy.img accepted inner.raw hex-legacy keydir:name
expect "$MNT" byid.img accepted inner.raw hex keydir:id
expect "$MNT" idfallback.img accepted inner.raw hex keydir:name
expect "$MNT" badid.img rejected key.id
expect "$MNT" badperm.img rejected key.perms
expect "$MNT" plain.img rejected key.wrong
for n in hex.img legacy.img byid.img idfallback.img; do check_view "$MNT" "$n" "$n"; done
r=$(status_field "$MNT" badperm.img reason)
case $r in *perm-id*) ;; *) fail "badperm.img: the reason does not name KEYS/perm-id: $r" ;; esac
for n in badid.img badperm.img plain.img; do
    assert_eq ENOENT "$(errno_of 'os.stat(a[0])' "$MNT/$n")" "stat of rejected $n"
done
umount_store "$MNT"
note "keydir + key_format=hex: hex, hex-legacy, key id first, fallback, key.id, key.perms"

# ---- keydir, raw (the default): the bytes are the passphrase
mount_store "$STORE" "$MNT" "keydir=$KEYS"
wait_verdicts "$MNT" 7
expect "$MNT" plain.img accepted inner.raw raw keydir:name
expect "$MNT" hex.img rejected key.wrong
check_view "$MNT" plain.img plain.img
umount_store "$MNT"
note "keydir, raw: the key format matters"

# ---- key_command
STORE2=$SCRATCH/store2 MNT2=$SCRATCH/mnt2 RUN=$SCRATCH/run
mkdir -p "$STORE2" "$RUN"
for n in cmd-ok.img cmd-fail.img cmd-signal.img cmd-hang.img; do
    ln "$STORE/plain.img" "$STORE2/$n" || fail "cannot link $n"
done
printf '{"os_encrypt_key_id": "secret-42"}' >"$STORE2/cmd-ok.img.json"
POLICY=$SCRATCH/policy.json
printf '{"keys": {"command_timeout_s": 2}}\n' >"$POLICY"
PROG=$BIN/keyprog
cat >"$PROG" <<EOF
#!/bin/sh
# key program of integ-keys.sh: \$1 = image name, \$2 = key id
echo "\$\$ \$# [\$1] [\$2]" >>"$RUN/calls"
case \$1 in
cmd-ok.img) [ "\$2" = secret-42 ] && [ \$# = 2 ] || exit 7; echo plain-pass ;;
cmd-fail.img) echo LEAK-CANARY-7731; exit 3 ;;
cmd-signal.img) kill -KILL \$\$ ;;
cmd-hang.img) echo \$\$ >"$RUN/hang.pid"; sleep 1000 ;;
*) exit 1 ;;
esac
EOF
chmod 700 "$PROG"

t0=$(_now_us)
mount_store "$STORE2" "$MNT2" "key_command=$PROG,policy=$POLICY"
# While cmd-hang.img's program hangs, the mount answers.
poll_until 20 test -s "$RUN/hang.pid" || fail "the key program never ran for cmd-hang.img"
HANG=$(cat "$RUN/hang.pid")
t1=$(_now_us)
ls "$MNT2" >/dev/null || fail "cannot list the mount while a key program hangs"
cat "$MNT2/.safeimgfs/status.json" >/dev/null || fail "cannot read status.json while a key program hangs"
st=$(status_field "$MNT2" cmd-hang.img state)
ms=$(elapsed_ms "$t1")
note "while cmd-hang.img was $st: listing and status.json in ${ms} ms"
[ "$ms" -lt 1500 ] || fail "the mount took ${ms} ms to answer while a key program hung"
wait_verdicts "$MNT2" 4 20
ms=$(elapsed_ms "$t0")
expect "$MNT2" cmd-ok.img accepted inner.raw raw command
check_view "$MNT2" cmd-ok.img plain.img
expect "$MNT2" cmd-fail.img rejected key.command
expect "$MNT2" cmd-signal.img rejected key.command
expect "$MNT2" cmd-hang.img rejected key.timeout
r=$(status_field "$MNT2" cmd-fail.img reason)
case $r in *"status 3"*) ;; *) fail "cmd-fail.img: the reason does not give exit status 3: $r" ;; esac
r=$(status_field "$MNT2" cmd-signal.img reason)
case $r in *"signal 9"*) ;; *) fail "cmd-signal.img: the reason does not give signal 9: $r" ;; esac
[ "$ms" -lt 15000 ] || fail "the verdicts took ${ms} ms with a 2 s key program timeout"
grep -q "\[cmd-ok.img\] \[secret-42\]" "$RUN/calls" || fail "the key program did not get NAME and KEY_ID: $(cat "$RUN/calls")"
grep -q "\[cmd-fail.img\] \[\]" "$RUN/calls" || fail "no empty KEY_ID without a sidecar: $(cat "$RUN/calls")"
if grep -q LEAK-CANARY "$MNT2/.safeimgfs/status.json" "$DAEMON_LOG"; then
    fail "a key program's output appears in status.json or the log"
fi
# Nothing of the hanging program is left (its group was killed).
poll_until 5 group_gone "$HANG" || fail "processes of the hung key program (group $HANG) are still running"
# The mount still serves.
check_view "$MNT2" cmd-ok.img plain.img
umount_store "$MNT2"
assert_eq 0 "$DAEMON_STATUS" "daemon exit status (key_command mount)"
note "key_command: accepted, key.command (status, signal), key.timeout, responsive, group killed"

# ---- key_command, key_format=hex: the program prints the binary secret
STORE3=$SCRATCH/store3 MNT3=$SCRATCH/mnt3
mkdir -p "$STORE3"
ln "$STORE/hex.img" "$STORE/legacy.img" "$STORE3/" || fail "cannot link into store3"
PROG2=$BIN/catkey
printf '#!/bin/sh\nexec cat "%s/$1.key"\n' "$KEYS" >"$PROG2"
chmod 755 "$PROG2"
mount_store "$STORE3" "$MNT3" "key_command=$PROG2,key_format=hex"
wait_verdicts "$MNT3" 2
expect "$MNT3" hex.img accepted inner.raw hex command
expect "$MNT3" legacy.img accepted inner.raw hex-legacy command
check_view "$MNT3" hex.img hex.img
check_view "$MNT3" legacy.img legacy.img
umount_store "$MNT3"
note "key_command + key_format=hex"

# A relative key_command: no mount.
if start_daemon "$STORE3" "$SCRATCH/mnt4" "key_command=bin/catkey"; then
    fail "safeimgfs mounted with a relative key_command"
fi
[ "$DAEMON_STATUS" != 0 ] || fail "safeimgfs exited 0 with a relative key_command"

# ---- safeimg-inspect
OUT=$SCRATCH/inspect.out ERR=$SCRATCH/inspect.err
inspect() {
    timeout -k 5 60 "$SAFEIMG_INSPECT" "$@" >"$OUT" 2>"$ERR"
    RC=$?
    [ "$RC" -ne 124 ] && [ "$RC" -ne 137 ] || fail "safeimg-inspect $* did not finish within 60 s"
}
# ifield NAME FIELD: a field of NAME's JSON line in $OUT.
ifield() {
    "$PYTHON" - "$OUT" "$1" "$2" <<'EOF'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip():
        o = json.loads(line)
        if o.get("name") == sys.argv[2]:
            v = o.get(sys.argv[3], "<missing field>")
            print("null" if v is None else v)
            sys.exit(0)
print("<no line for %s>" % sys.argv[2])
EOF
}
iexpect() {   # iexpect NAME STATE CHECK [KEY_FORM KEY_SOURCE]
    assert_eq "$2" "$(ifield "$1" state)" "inspect: $1 state"
    assert_eq "$3" "$(ifield "$1" check)" "inspect: $1 check (reason: $(ifield "$1" reason))"
    if [ $# -ge 4 ]; then
        assert_eq "$4" "$(ifield "$1" key_form)" "inspect: $1 key_form"
        assert_eq "$5" "$(ifield "$1" key_source)" "inspect: $1 key_source"
    fi
}

inspect --keydir "$KEYS" --key-format hex --json "$STORE/hex.img" "$STORE/legacy.img" "$STORE/byid.img" \
    "$STORE/badid.img" "$STORE/badperm.img"
assert_eq 1 "$RC" "inspect --keydir --key-format hex exit status (some rejected)"
iexpect hex.img accepted inner.raw hex keydir:name
iexpect legacy.img accepted inner.raw hex-legacy keydir:name
iexpect byid.img accepted inner.raw hex keydir:id
iexpect badid.img rejected key.id
iexpect badperm.img rejected key.perms

inspect --keyfile "$KEYS/legacy.img.key" --key-format hex --json "$STORE/legacy.img"
assert_eq 0 "$RC" "inspect --keyfile --key-format hex exit status"
iexpect legacy.img accepted inner.raw hex-legacy keyfile

t0=$(_now_us)
inspect --key-command "$PROG" --policy "$POLICY" --json "$STORE2/cmd-ok.img" "$STORE2/cmd-fail.img" \
    "$STORE2/cmd-hang.img"
ms=$(elapsed_ms "$t0")
assert_eq 1 "$RC" "inspect --key-command exit status"
iexpect cmd-ok.img accepted inner.raw raw command
iexpect cmd-fail.img rejected key.command
iexpect cmd-hang.img rejected key.timeout
[ "$ms" -lt 12000 ] || fail "inspect --key-command took ${ms} ms with a 2 s timeout"
grep -q LEAK-CANARY "$OUT" && fail "a key program's output appears in safeimg-inspect's output"

inspect --key-command bin/keyprog --json "$STORE2/cmd-ok.img"
assert_eq 2 "$RC" "inspect with a relative --key-command"
chmod 770 "$PROG"
inspect --key-command "$PROG" --json "$STORE2/cmd-ok.img"
assert_eq 2 "$RC" "inspect with a group-writable --key-command"
grep -q "$PROG" "$ERR" || fail "the error for a group-writable key program does not name it: $(cat "$ERR")"
chmod 700 "$PROG"
inspect --keydir "$KEYS" --key-format base64 --json "$STORE/hex.img"
assert_eq 2 "$RC" "inspect with an unknown --key-format"
note "safeimg-inspect: key sources, key formats and their errors"

echo "PASS: $TEST_NAME"
exit 0
