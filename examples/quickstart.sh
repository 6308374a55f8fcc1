#!/usr/bin/env bash
# Quickstart: build gpbackup_age_plugin and run a backup and a restore end to end on this
# machine, the way gpbackup/gprestore call the plugin, wrapping the local-directory
# example plugin (examples/local_plugin.sh) with the DEMO keys from keys/.
# Then the operator commands on a demo backup set laid out as gpbackup lays one out
# (examples/demo_backup_set.sh): keygen, inspect, verify, and a rotate from the demo key
# to a new key, with each refusal it demonstrates printed as "refused, as expected: ...".
# No cloud account, no database. Prints what happens at each step.
#
# usage: examples/quickstart.sh [SIZE_MIB]     (size of the sample table stream, default 64)
#        GPBACKUP_AGE_PLUGIN=/path/to/gpbackup_age_plugin examples/quickstart.sh [SIZE_MIB]
#        runs an installed binary instead of building one (no cargo needed).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
size_mib=${1:-64}
say() { printf '\n== %s\n' "$*"; }

if [ -n "${GPBACKUP_AGE_PLUGIN:-}" ]; then
    plugin=$GPBACKUP_AGE_PLUGIN
    say "using $plugin"
else
    # The binary operators install: static, from the dist profile (README, "Install").
    # Quiet while it compiles: say how long to expect (measured on 2 cores, README).
    say "building (cargo build-dist): the first build compiles every dependency, about 2.5 minutes on 2 cores; later ones only what changed"
    (cd "$repo" && cargo --quiet build-dist) || {
        echo "quickstart: the static build failed; it needs a C compiler and the static C library (Debian/Ubuntu: libc6-dev; RHEL/Rocky/Oracle: glibc-static)" >&2
        exit 1
    }
    plugin="$repo/target/dist/gpbackup_age_plugin"
fi

work=$(mktemp -d /tmp/gpbackup_age_quickstart.XXXXXX)
trap 'rm -rf "$work"' EXIT
export HOME="$work/home"   # the call log goes to $HOME/gpAdminLogs
mkdir -p "$HOME"
ts=20250101010101
segdir="$work/seg0/backups/${ts:0:8}/$ts"
coorddir="$work/coordinator/backups/${ts:0:8}/$ts"
storage="$work/storage"
config="$work/plugin_config.yaml"
chmod 600 "$repo/keys/demo-only-identity.txt" 2>/dev/null || true
cat > "$config" <<YAML
executablepath: $plugin
options:
  inner_executablepath: "$repo/examples/local_plugin.sh"
  recipients_file: "$repo/keys/demo-only-recipients.txt"
  identity_file: "$repo/keys/demo-only-identity.txt"
  root: "$storage"
YAML
say "plugin config ($config)"
cat "$config"

say "plugin_api_version and --version"
bash -c "$plugin plugin_api_version"
bash -c "$plugin --version"

say "setup_plugin_for_backup at every scope (content IDs arrive quoted, as gpbackup sends them)"
bash -c "$plugin setup_plugin_for_backup $config $coorddir master \"-1\""
bash -c "$plugin setup_plugin_for_backup $config $segdir segment_host"
bash -c "$plugin setup_plugin_for_backup $config $segdir segment \"0\""
echo "ok"

say "backup_data: a ${size_mib} MiB table stream, as gpbackup's COPY ... TO PROGRAM sends it"
sample="$work/table.csv"
# Synthetic table data, generated in the repository so that a fresh clone needs nothing
# else: lineitem-like rows from a fixed seed (bench/table_rows.awk). Real tables
# compress differently.
awk -v size="$size_mib" -f "$repo/bench/table_rows.awk" > "$sample"
echo "sample: $(wc -l < "$sample") rows of synthetic lineitem-like table text (bench/table_rows.awk, fixed seed; real tables compress differently):"
head -n 2 "$sample"
datakey="$segdir/gpbackup_0_${ts}_16384"
start=$(date +%s%N)
bash -c "$plugin backup_data $config $datakey" < "$sample"
end=$(date +%s%N)
stored="$storage/${ts:0:8}/$ts/gpbackup_0_${ts}_16384"
printf 'original %s bytes -> stored %s bytes in %s ms\n' "$(stat -c %s "$sample")" "$(stat -c %s "$stored")" "$(( (end - start) / 1000000 ))"
echo "the stored object starts with an age header, not with the table data:"
head -c 120 "$stored" | head -n 3

say "backup_file: the coordinator's metadata file"
meta="$coorddir/gpbackup_${ts}_metadata.sql"
printf 'CREATE TABLE public.lineitem (l_orderkey bigint, l_comment text);\n' > "$meta"
before=$(sha256sum "$meta")
bash -c "$plugin backup_file $config $meta"
[ "$(sha256sum "$meta")" = "$before" ] && echo "local file left byte-identical"

say "restore_data: decrypt, decompress and verify (every chunk, every frame's checksum, length, name)"
bash -c "$plugin restore_data $config $datakey" | cmp - "$sample" && echo "restored stream is byte-identical"

say "restore_file"
rm "$meta"
bash -c "$plugin restore_file $config $meta"
[ "$(sha256sum "$meta")" = "$before" ] && echo "restored file is byte-identical"

say "restore_data_subset: bytes [1000, 1100) and [5000, 5010) of the stream"
echo "2 1000 1100 5000 5010" > "$work/offsets"
bash -c "$plugin restore_data_subset $config $datakey $work/offsets" | cmp - <(head -c 1100 "$sample" | tail -c 100; head -c 5010 "$sample" | tail -c 10) && echo "subset matches"

if command -v age >/dev/null && command -v zstd >/dev/null; then
    say "recovery without the plugin: age -d -i identity OBJECT | zstd -d"
    age -d -i "$repo/keys/demo-only-identity.txt" "$stored" | zstd -d -q | cmp - "$sample" && echo "stock tools recover the stream"
else
    say "(install age and zstd to see the stock-tool recovery: apt-get install age zstd)"
fi

# refused WHAT COMMAND...: runs COMMAND, which must fail, and prints its error line.
refused() {
    local what=$1 err
    shift
    if err=$("$@" 2>&1 >/dev/null); then
        echo "UNEXPECTED: $what succeeded"; exit 1
    fi
    printf 'refused, as expected: %s\n  %s\n' "$what" "$(printf '%s\n' "$err" | head -n 1)"
}

say "a renamed object is refused (each object is bound to its name)"
cp "$stored" "$storage/${ts:0:8}/$ts/gpbackup_0_${ts}_99999"
refused "an object renamed in storage" bash -c "$plugin restore_data $config $segdir/gpbackup_0_${ts}_99999"

say "cleanup hooks and delete_backup"
bash -c "$plugin cleanup_plugin_for_backup $config $coorddir master \"-1\""
bash -c "$plugin delete_backup $config $ts"
[ ! -e "$storage/${ts:0:8}/$ts" ] && echo "backup $ts deleted from storage"

say "operator commands on a demo backup set (examples/demo_backup_set.sh), laid out as gpbackup lays one out"
demo="$work/demo_cluster"
timestamps=$("$repo/examples/demo_backup_set.sh" "$config" "$demo" 200)
echo "stored through the plugin, backups $(echo $timestamps):"
(cd "$storage" && find . -type f ! -name '.*' | sort | sed 's|^\./|  |')
ts_multi=$(echo "$timestamps" | head -n 1)
ts_single=$(echo "$timestamps" | tail -n 1)

say "keygen: a new key (the identity stays on restore hosts; the recipient goes in the config)"
keys="$work/keys"
mkdir -p "$keys"
new_recipient=$("$plugin" keygen "$keys/new.txt")
echo "recipient: $new_recipient"
refused "keygen over an existing file" "$plugin" keygen "$keys/new.txt"

object="$storage/${ts_multi:0:8}/$ts_multi/gpbackup_0_${ts_multi}_16384.gz"
say "inspect: what one stored object says about itself, without and with a key"
"$plugin" inspect "$object"
echo "-- with --identity:"
"$plugin" inspect --identity "$repo/keys/demo-only-identity.txt" "$object"

say "verify: every object of both backup sets, end to end, writing nothing"
"$plugin" verify "$config" $timestamps

say "a filtered restore of one table from the single-data-file set, by its segment TOC (restore_data_subset)"
segtoc="$demo/gpseg0/backups/${ts_single:0:8}/$ts_single/gpbackup_0_${ts_single}_toc.yaml"
range=$(awk '/^  16402:/ {t = 1} t && /startbyte/ {s = $2} t && /endbyte/ {print s, $2; exit}' "$segtoc")
printf '1 %s' "$range" > "$work/offsets_16402"
single_key="$demo/gpseg0/backups/${ts_single:0:8}/$ts_single/gpbackup_0_${ts_single}"
bash -c "$plugin restore_data_subset $config $single_key $work/offsets_16402" > "$work/table_16402"
if ! bash -c "$plugin restore_data $config $single_key" | head -c "${range#* }" | tail -c +"$((${range% *} + 1))" \
    | cmp -s - "$work/table_16402"; then
    echo "UNEXPECTED: the subset differs from the same bytes of the full stream"; exit 1
fi
echo "table 16402 (bytes $range of segment 0's file): $(wc -l < "$work/table_16402") rows, as in the full stream"

say "rotate from the demo key to the new key"
# The config after step 2 of docs/KEY-ROTATION.md: the new recipient, and the keyring
# holding the new identity first and the old one after it.
rotated_config="$work/plugin_config_new_key.yaml"
sed -e "s|^  recipients_file: .*|  recipients: \"$new_recipient\"|" \
    -e "s|^  identity_file: .*|  identity_file: \"$keys/new.txt,$repo/keys/demo-only-identity.txt\"|" \
    "$config" > "$rotated_config"
"$plugin" rotate "$rotated_config" $timestamps --work-dir "$work/rotate"
echo "-- the new key alone opens every object:"
"$plugin" verify "$rotated_config" $timestamps --identity "$keys/new.txt"
refused "verify with the retired demo key" "$plugin" verify "$rotated_config" "$ts_single" --identity "$repo/keys/demo-only-identity.txt"
if command -v age >/dev/null && command -v zstd >/dev/null; then
    refused "stock age with the retired demo key" age -d -i "$repo/keys/demo-only-identity.txt" "$object"
    age -d -i "$keys/new.txt" "$object" | zstd -d -q | gzip -d | head -n 2
    echo "(stock age and zstd read the rotated object with the new key: the first rows of a table)"
fi
bash -c "$plugin delete_backup $config $ts_multi"
bash -c "$plugin delete_backup $config $ts_single"

say "the call log ($HOME/gpAdminLogs): one line per call, the first and the last ones"
log=$(cat "$HOME"/gpAdminLogs/*.log)
echo "$log" | head -n 4
echo "  ... $(echo "$log" | wc -l) lines in all ..."
echo "$log" | tail -n 4

say "quickstart finished: every step succeeded"
