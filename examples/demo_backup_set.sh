#!/usr/bin/env bash
# Stores a demo backup set through gpbackup_age_plugin, laid out exactly as gpbackup lays
# one out, so operators can rehearse `verify`, `inspect`, `rotate` and `delete_backup`
# (and recovery with stock age and zstd) without a database.
#
# usage: examples/demo_backup_set.sh CONFIG DIR [ROWS]
#   CONFIG  a plugin config (executablepath names the plugin, which is run as gpbackup
#           runs it: `bash -c "<plugin> <command> <config> ..."`, content IDs quoted)
#   DIR     where the cluster's local backup directories go: DIR/gpseg-1 (coordinator),
#           DIR/gpseg0, DIR/gpseg1 (two segments, content IDs 0 and 1). As gpbackup's
#           own backup directories do, it keeps the local files that were stored: a
#           copy of CONFIG (gpbackup_<ts>_plugin_config.yaml, with whatever credentials
#           CONFIG holds) and the plaintext metadata, TOCs and report. What it
#           creates is private (umask 077: directories 0700, files 0600); remove
#           DIR with `rm -rf DIR` when done.
#   ROWS    rows per table per segment (default 2000)
#
# It makes two backup sets of a database `sales` with three tables and prints their
# timestamps, one per line, on stdout. They lie in 1999, so they cannot be confused with
# a real backup, and the script refuses to run if either already exists in the storage
# (remove the demo with `gpbackup_age_plugin delete_backup CONFIG TS` for each, and
# `rm -rf DIR`):
#   19990101000001  gpbackup's default: one data file per table per segment, gzip -1,
#                   gpbackup_<content>_<ts>_<oid>.gz, with statistics
#   19990102000001  gpbackup --single-data-file --no-compression: one data file per
#                   segment, gpbackup_<content>_<ts>, and its segment TOC
#                   gpbackup_<content>_<ts>_toc.yaml (the byte range of each table)
# Each has the coordinator's files, stored with backup_file as gpbackup stores them:
# gpbackup_<ts>_metadata.sql, _toc.yaml, _config.yaml, _report, _plugin_config.yaml (a
# copy of CONFIG) and, with statistics, _statistics.sql. gpbackup_<ts>_config.yaml and
# _toc.yaml carry the fields the plugin's admin commands read to find every object
# (segmentcount, singledatafile, compressed, compressiontype, withstatistics; the oid of
# every table). The setup and cleanup hooks run at every scope, as gpbackup runs them.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG DIR [ROWS]" >&2
    exit 2
fi
config=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
dir=$2
rows=${3:-2000}
# The plugin, as gpbackup finds it: executablepath, environment variables expanded.
plugin=$(sed -n 's/^executablepath:[[:space:]]*//p' "$config" | sed 's/[[:space:]]*#.*//; s/^"\(.*\)"$/\1/')
plugin=$(eval "printf '%s' \"$plugin\"")
[ -x "$plugin" ] || { echo "$0: executablepath $plugin in $config is not executable" >&2; exit 1; }
# DIR holds a copy of CONFIG (cloud credentials) and plaintext metadata: what this
# script creates is private. A DIR that exists keeps its mode (it may be shared, like
# /tmp); the three directories that hold the files are made 0700 in any case.
umask 077
mkdir -p "$dir"/gpseg-1 "$dir"/gpseg0 "$dir"/gpseg1
chmod 700 "$dir"/gpseg-1 "$dir"/gpseg0 "$dir"/gpseg1
dir=$(cd "$dir" && pwd)
oids=(16384 16390 16402)
tables=(orders customers lineitem)

call() { bash -c "$plugin $*"; }

# Rows of table number $1 on segment $2, as COPY ... TO PROGRAM writes them (gpbackup
# uses a '|'-free CSV-like text format; any text does for the plugin).
table_rows() {
    awk -v t="$1" -v c="$2" -v n="$rows" 'BEGIN {
        for (i = 1; i <= n; i++)
            printf "%d,%d,%s-%d-%d,%d.%02d,2025-01-%02d\n", i * 2 + c, c, "item", t, i % 997, i * 31 % 977, i % 100, i % 28 + 1
    }'
}

hooks() { # hooks <setup|cleanup> <ts>
    local date=${2:0:8}
    call "${1}_plugin_for_backup $config $dir/gpseg-1/backups/$date/$2 master \\\"-1\\\"" >/dev/null
    call "${1}_plugin_for_backup $config $dir/gpseg0/backups/$date/$2 segment_host" >/dev/null
    for c in 0 1; do
        call "${1}_plugin_for_backup $config $dir/gpseg$c/backups/$date/$2 segment \\\"$c\\\"" >/dev/null
    done
}

# backup_set <ts> <single_data_file: true|false> <compressed: true|false> <statistics: true|false>
backup_set() {
    local ts=$1 single=$2 compressed=$3 stats=$4 date=${1:0:8} ext="" c i
    [ "$compressed" = true ] && ext=.gz
    hooks setup "$ts"
    for c in 0 1; do
        local seg="$dir/gpseg$c/backups/$date/$ts"
        mkdir -p "$seg"
        if [ "$single" = true ]; then
            # gpbackup_helper sends the segment's tables as one stream and records
            # where each one starts and ends in the segment TOC.
            local stream="$seg/.stream" toc="$seg/gpbackup_${c}_${ts}_toc.yaml" start=0 end
            : > "$stream"
            echo "dataentries:" > "$toc"
            for i in 0 1 2; do
                table_rows "$i" "$c" >> "$stream"
                end=$(stat -c %s "$stream")
                printf '  %s:\n    startbyte: %s\n    endbyte: %s\n' "${oids[$i]}" "$start" "$end" >> "$toc"
                start=$end
            done
            call "backup_data $config $seg/gpbackup_${c}_${ts}$ext" < "$stream"
            rm -f "$stream"
            call "backup_file $config $toc" >/dev/null
        else
            for i in 0 1 2; do
                if [ "$compressed" = true ]; then
                    table_rows "$i" "$c" | gzip -c -1 | call "backup_data $config $seg/gpbackup_${c}_${ts}_${oids[$i]}$ext"
                else
                    table_rows "$i" "$c" | call "backup_data $config $seg/gpbackup_${c}_${ts}_${oids[$i]}"
                fi
            done
        fi
    done

    local coord="$dir/gpseg-1/backups/$date/$ts"
    mkdir -p "$coord"
    {
        printf "\nSET client_encoding = 'UTF8';\n\nCREATE DATABASE sales TEMPLATE template0;\n"
        for i in 0 1 2; do
            printf '\n\nCREATE TABLE public.%s (\n\tid integer,\n\tcontent integer,\n\tname text,\n\tamount numeric,\n\tday date\n) DISTRIBUTED BY (id);\n' "${tables[$i]}"
        done
    } > "$coord/gpbackup_${ts}_metadata.sql"
    {
        printf 'globalentries:\n- schema: ""\n  name: sales\n  objecttype: DATABASE\n  referenceobject: ""\n  startbyte: 30\n  endbyte: 75\n  tier:\n  - 0\n  - 0\npredataentries:\n'
        for i in 0 1 2; do
            printf -- '- schema: public\n  name: %s\n  objecttype: TABLE\n  referenceobject: ""\n  startbyte: %d\n  endbyte: %d\n  tier:\n  - 1\n  - 1\n' \
                "${tables[$i]}" $((75 + i * 120)) $((195 + i * 120))
        done
        printf 'postdataentries: []\nstatisticsentries: []\ndataentries:\n'
        for i in 0 1 2; do
            printf -- '- schema: public\n  name: %s\n  oid: %s\n  attributestring: (id,content,name,amount,day)\n  rowscopied: %d\n  partitionroot: ""\n  isreplicated: false\n  distbyenum: false\n' \
                "${tables[$i]}" "${oids[$i]}" $((rows * 2))
        done
        printf 'incrementalmetadata:\n  ao: {}\n'
    } > "$coord/gpbackup_${ts}_toc.yaml"
    if [ "$stats" = true ]; then
        for i in 0 1 2; do
            printf "UPDATE pg_class SET relpages = 1::int, reltuples = %d::real WHERE relname = '%s';\n" $((rows * 2)) "${tables[$i]}"
        done > "$coord/gpbackup_${ts}_statistics.sql"
    fi
    cp "$config" "$coord/gpbackup_${ts}_plugin_config.yaml"
    cat > "$coord/gpbackup_${ts}_config.yaml" <<YAML
backupdir: ""
backupversion: 1.30.5
compressed: $compressed
compressiontype: gzip
databasename: sales
databaseversion: 6.25.3 build commit:367edc6b4dfd909fe38fc288ade9e294d74e3f9a Open Source
segmentcount: 2
dataonly: false
datedeleted: ""
excluderelations: []
excludeschemafiltered: false
excludeschemas: []
excludetablefiltered: false
includerelations: []
includeschemafiltered: false
includeschemas: []
includetablefiltered: false
incremental: false
leafpartitiondata: false
metadataonly: false
plugin: $plugin
pluginversion: $(bash -c "$plugin --version" | cut -d' ' -f3)
restoreplan:
- timestamp: "$ts"
  tablefqns:
  - public.${tables[0]}
  - public.${tables[1]}
  - public.${tables[2]}
singledatafile: $single
timestamp: "$ts"
endtime: "${ts:0:12}59"
withoutglobals: false
withstatistics: $stats
status: Success
YAML
    cat > "$coord/gpbackup_${ts}_report" <<REPORT
Greenplum Database Backup Report

timestamp key:         $ts
gpdb version:          6.25.3
gpbackup version:      1.30.5

database name:         sales
command line:          gpbackup --dbname sales --plugin-config $config$([ "$single" = true ] && printf ' --single-data-file')$([ "$compressed" = false ] && printf ' --no-compression')
compression:           $([ "$compressed" = true ] && echo gzip || echo None)
plugin executable:     $plugin
backup section:        All Sections
object filtering:      None
includes statistics:   $([ "$stats" = true ] && echo Yes || echo No)
data file format:      $([ "$single" = true ] && echo "Single Data File Per Segment" || echo "Multiple Data Files Per Segment")
incremental:           False

backup status:         Success

segment count:         2

count of database objects in backup:
tables                 3
REPORT
    # gpbackup stores the coordinator's files at the end, in this order.
    local f
    for f in metadata.sql toc.yaml statistics.sql plugin_config.yaml config.yaml report; do
        [ -e "$coord/gpbackup_${ts}_$f" ] && call "backup_file $config $coord/gpbackup_${ts}_$f" >/dev/null
    done
    hooks cleanup "$ts"
    echo "$ts"
}

demo_timestamps=(19990101000001 19990102000001)
for ts in "${demo_timestamps[@]}"; do
    # Never write over a backup: if the storage has this set's config.yaml, stop.
    if call "restore_data $config $dir/gpseg-1/backups/${ts:0:8}/$ts/gpbackup_${ts}_config.yaml" >/dev/null 2>&1; then
        echo "$0: the storage already holds a backup $ts; remove it first (gpbackup_age_plugin delete_backup $config $ts)" >&2
        exit 1
    fi
done
backup_set "${demo_timestamps[0]}" false true true
backup_set "${demo_timestamps[1]}" true false false
