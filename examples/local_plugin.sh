#!/usr/bin/env bash
# local_plugin.sh - a gpbackup storage plugin that keeps its objects in a local directory.
#
# It implements the whole gpbackup plugin API (see gpbackup's plugins/README.md), so a
# backup/restore can run on one machine without any cloud storage. gpbackup_age_plugin's
# tests and quickstart use it as the "inner" plugin: the wrapper encrypts, then calls
# this script to store the ciphertext.  It doubles as documentation of what an inner
# storage plugin looks like, and it can be told to misbehave (see "Fault injection").
#
# Invocation (exactly like any gpbackup plugin):
#   local_plugin.sh plugin_api_version
#   local_plugin.sh --version
#   local_plugin.sh setup_plugin_for_backup    CONFIG LOCAL_BACKUP_DIR SCOPE [CONTENT_ID]
#   local_plugin.sh setup_plugin_for_restore   CONFIG LOCAL_BACKUP_DIR SCOPE [CONTENT_ID]
#   local_plugin.sh cleanup_plugin_for_backup  CONFIG LOCAL_BACKUP_DIR SCOPE [CONTENT_ID]
#   local_plugin.sh cleanup_plugin_for_restore CONFIG LOCAL_BACKUP_DIR SCOPE [CONTENT_ID]
#   local_plugin.sh backup_file          CONFIG LOCAL_FILE
#   local_plugin.sh restore_file         CONFIG LOCAL_FILE
#   local_plugin.sh backup_data          CONFIG DATA_FILEKEY          < data
#   local_plugin.sh restore_data         CONFIG DATA_FILEKEY          > data
#   local_plugin.sh restore_data_subset  CONFIG DATA_FILEKEY OFFSETS_FILE > data
#   local_plugin.sh delete_backup        CONFIG TIMESTAMP
#   local_plugin.sh delete_directory     CONFIG DIR      (non-API management command)
#   local_plugin.sh list_directory       CONFIG DIR      (non-API management command)
#
# Config file (what gpbackup hands every plugin): YAML with a string-only options map.
#   executablepath: /path/to/local_plugin.sh
#   options:
#     root: "/var/tmp/storage"      # required: the storage root directory
#     pgport: "5432"                # added by gpbackup; accepted and ignored
#     backup_plugin_version: "..."  # added by gprestore; accepted and ignored
#     folder: "..."                 # accepted (gpbackup_s3_plugin compatibility), ignored
#     fault: ...                    # optional fault injection, see below
# Values may be plain, 'single-quoted' ('' is a quote) or "double-quoted" (\" and \\
# escapes).  Like gpbackup_s3_plugin, any option key this plugin does not know is fatal.
#
# Storage layout (same scheme as gpbackup's example plugin; gpbackup_s3_plugin uses the
# same last components under <folder>/backups/): an object is keyed by the LAST THREE
# components of the path it is given, for files and data alike:
#   /data/seg0/backups/20180101/20180101010101/gpbackup_0_20180101010101
#     -> <root>/20180101/20180101010101/gpbackup_0_20180101010101
# So restore_file P can read what backup_data P wrote, and a restore onto another
# cluster (different directories, same basenames) finds the objects.
# <root>/.hooks.log gets one line per setup/cleanup call: "COMMAND SCOPE [CONTENT_ID]",
# the content ID exactly as received (gpbackup sends it with literal quotes: "-1").
#
# Writes are atomic: objects are written to <dest>.tmp.<pid> and renamed into place
# only after the whole input was read, so a plugin killed mid-stream (SIGTERM/SIGKILL)
# never commits a partial object.  Note that this already differs from
# gpbackup_s3_plugin, which commits whatever it has read when its stdin reaches EOF:
# closing the plugin's stdin early commits a truncated object here too.
#
# Errors: one line on stderr starting with "local_plugin: " and a non-zero exit status.
# Success: nothing at all on stderr (gprestore treats any stderr text as a failure).
#
# Fault injection (options, all optional, default off):
#   fault: exit_before_read  exit 3 (with a message) before reading or writing anything
#          exit_after_bytes  move fault_bytes bytes (backup: read from stdin / the local
#                            file; restore: write to stdout / the local file), then exit 4
#          kill_after_bytes  same, then kill -9 itself (no message, no cleanup)
#          stall             sleep forever without reading or writing anything
#          garbage_stdout    restore_*: produce fault_bytes random bytes instead of the
#                            object, exit 0
#          truncate_stdout   restore_*: produce only the first fault_bytes bytes, exit 0
#          stderr_noise      work normally but also print "local_plugin: warning noise"
#                            on stderr, exit 0
#          commit_partial    backup_data: on SIGTERM, commit what was read so far (like a
#                            naive plugin with a signal handler) instead of discarding it
#   fault_bytes:    byte count for the *_bytes, garbage_stdout and truncate_stdout faults
#   fault_commands: comma-separated command names the fault applies to; default: the
#                   data-moving commands backup_data, restore_data, backup_file,
#                   restore_file, restore_data_subset.  exit_before_read, stall,
#                   stderr_noise, exit_after_bytes and kill_after_bytes also work on any
#                   other command listed here (the last two then fire immediately).
#   naive_overwrite: "on" makes backup_data/backup_file write straight into the final
#                   object (cat > dest) like a plain plugin, so a failure mid-write
#                   destroys the previous object.  Used by key-rotation tests.
#
# Exit codes: 0 ok, 1 error, 3 exit_before_read, 4 exit_after_bytes,
#             143 terminated by SIGTERM while receiving data.

set -euo pipefail

readonly PLUGIN_NAME=local_plugin
readonly PLUGIN_VERSION=0.1.0
readonly API_VERSION=0.5.0

# Option keys this plugin accepts; anything else in options: is a fatal error.
readonly KNOWN_OPTIONS=" root pgport folder backup_plugin_version fault fault_bytes fault_commands naive_overwrite "
readonly KNOWN_FAULTS=" exit_before_read exit_after_bytes kill_after_bytes stall garbage_stdout truncate_stdout stderr_noise commit_partial "
readonly DATA_COMMANDS="backup_data,restore_data,backup_file,restore_file,restore_data_subset"

# ---------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------

# fail CODE MESSAGE...: one line on stderr, exit with CODE.
fail() {
    local code=$1
    shift
    printf '%s: %s\n' "$PLUGIN_NAME" "$*" >&2
    exit "$code"
}
die() { fail 1 "$@"; }

# Temporary object being written; removed on exit unless it was committed (renamed).
TMP=""
cleanup_tmp() {
    if [[ -n $TMP ]]; then
        rm -f -- "$TMP"
    fi
}
trap cleanup_tmp EXIT

# ---------------------------------------------------------------------------------
# Config parsing
# ---------------------------------------------------------------------------------

# parse_config FILE: print one record per line:
#   O<TAB>key<TAB>value   an entry of the flat options: map (value already unquoted)
#   T<TAB>key             a top-level key
#   E<TAB>message         a line that could not be parsed
# Handles plain, 'single' ('' escape) and "double" (\" and \\ escapes) scalars and
# trailing " # comments" after plain values.  Other backslash escapes are kept verbatim.
parse_config() {
    awk '
    function unquote(s,    q, c, i, n, out) {
        sub(/^[ \t]+/, "", s)
        q = substr(s, 1, 1)
        n = length(s)
        out = ""
        if (q == "\"") {
            for (i = 2; i <= n; i++) {
                c = substr(s, i, 1)
                if (c == "\\") {
                    i++
                    c = substr(s, i, 1)
                    if (c == "\"" || c == "\\") out = out c
                    else out = out "\\" c
                    continue
                }
                if (c == "\"") return out
                out = out c
            }
            bad = "unterminated double-quoted value"
            return out
        }
        if (q == "\047") {
            for (i = 2; i <= n; i++) {
                c = substr(s, i, 1)
                if (c == "\047") {
                    if (substr(s, i + 1, 1) == "\047") { out = out c; i++; continue }
                    return out
                }
                out = out c
            }
            bad = "unterminated single-quoted value"
            return out
        }
        if (q == "#") return ""              # "key: # comment" is an empty value
        sub(/[ \t]+#.*$/, "", s)             # plain scalar: drop a trailing comment
        sub(/[ \t]+$/, "", s)
        return s
    }
    { sub(/\r$/, "") }
    /^[ \t]*(#.*)?$/ { next }                # blank line or comment
    /^(---|\.\.\.)/ { next }                 # YAML document markers
    /^[^ \t]/ {                              # a top-level key
        inopts = 0
        if (!match($0, /^[A-Za-z0-9_.-]+:([ \t]|$)/)) { print "E\tcannot parse config line: " $0; next }
        key = $0; sub(/:.*$/, "", key)
        print "T\t" key
        if (key == "options") {
            rest = substr($0, length(key) + 2)
            sub(/^[ \t]+/, "", rest); sub(/[ \t]*(#.*)?$/, "", rest)
            if (rest != "" && rest != "{}") print "E\toptions must be a block map of strings"
            else inopts = 1
        }
        next
    }
    inopts {                                 # "  key: value" inside options:
        if (!match($0, /^[ \t]+[A-Za-z0-9_.-]+[ \t]*:([ \t]|$)/)) { print "E\tcannot parse config line: " $0; next }
        line = $0
        sub(/^[ \t]+/, "", line)
        key = line; sub(/[ \t]*:.*$/, "", key)
        val = line; sub(/^[^:]*:/, "", val)
        bad = ""
        val = unquote(val)
        if (bad != "") { print "E\t" bad " for option " key; next }
        print "O\t" key "\t" val
    }
    ' "$1"
}

# load_config FILE: fill OPTS from FILE and validate the option keys.
declare -A OPTS=()
load_config() {
    local file=$1 records line type rest key
    [[ -n $file ]] || die "missing config file argument"
    [[ -f $file && -r $file ]] || die "cannot read config file '$file'"
    records=$(parse_config "$file") || die "cannot parse config file '$file'"
    while IFS= read -r line; do
        [[ -n $line ]] || continue
        type=${line%%$'\t'*}
        rest=${line#*$'\t'}
        case $type in
            E) die "$file: $rest" ;;
            T) [[ $rest == executablepath || $rest == options ]] ||
                   die "unknown config key '$rest'" ;;
            O) key=${rest%%$'\t'*}
               [[ $KNOWN_OPTIONS == *" $key "* ]] || die "unknown option '$key'"
               OPTS[$key]=${rest#*$'\t'} ;;
        esac
    done <<<"$records"
}

# opt NAME: print the value of option NAME (empty if it is not set).
opt() { printf '%s' "${OPTS[$1]-}"; }

# ---------------------------------------------------------------------------------
# Storage keys
# ---------------------------------------------------------------------------------

# object_path PATH: print <root>/<date>/<timestamp>/<basename> for a gpbackup path.
object_path() {
    local p=$1 part
    local -a parts=() keep=()
    IFS=/ read -r -a parts <<<"$p"
    for part in "${parts[@]}"; do
        [[ -n $part ]] && keep+=("$part")
    done
    ((${#keep[@]} >= 3)) || die "path '$p' has fewer than 3 components (need <date>/<timestamp>/<file>)"
    keep=("${keep[@]: -3}")
    for part in "${keep[@]}"; do
        [[ $part != . && $part != .. ]] || die "invalid path '$p'"
    done
    printf '%s/%s/%s/%s' "$ROOT" "${keep[0]}" "${keep[1]}" "${keep[2]}"
}

# safe_dir DIR: reject directory arguments that could escape <root>.
safe_dir() {
    local d=$1 part
    local -a parts=()
    IFS=/ read -r -a parts <<<"$d"
    for part in "${parts[@]}"; do
        [[ $part != .. ]] || die "invalid directory '$d'"
    done
}

# ---------------------------------------------------------------------------------
# Fault injection
# ---------------------------------------------------------------------------------

FAULT=""       # the fault active for THIS command ("" = behave normally)
FAULT_BYTES=0

# setup_fault COMMAND: decide whether the configured fault applies to COMMAND.
setup_fault() {
    local cmd=$1 fault cmds
    fault=$(opt fault)
    [[ -n $fault ]] || return 0
    [[ $KNOWN_FAULTS == *" $fault "* ]] || die "unknown fault '$fault'"
    case $fault in
        exit_after_bytes | kill_after_bytes | garbage_stdout | truncate_stdout)
            FAULT_BYTES=$(opt fault_bytes)
            [[ $FAULT_BYTES =~ ^[0-9]+$ ]] || die "fault '$fault' needs fault_bytes (a byte count)"
            FAULT_BYTES=$((10#$FAULT_BYTES)) ;;
    esac
    cmds=$(opt fault_commands)
    cmds=${cmds:-$DATA_COMMANDS}
    cmds=${cmds// /}
    [[ ",$cmds," == *",$cmd,"* ]] || return 0
    FAULT=$fault

    # Faults that act before the command does anything.
    case $FAULT in
        exit_before_read) fail 3 "$cmd: injected fault exit_before_read" ;;
        stall) exec sleep 100000 ;;
        stderr_noise) printf '%s: warning noise\n' "$PLUGIN_NAME" >&2 ;;
    esac
    # Byte-count faults on a command that moves no data fire immediately.
    if [[ ",$DATA_COMMANDS," != *",$cmd,"* ]]; then
        case $FAULT in
            exit_after_bytes) fail 4 "$cmd: injected fault exit_after_bytes" ;;
            kill_after_bytes) kill -9 $$ ;;
        esac
    fi
}

# after_bytes_fault CMD: called once fault_bytes bytes were moved.
after_bytes_fault() {
    case $FAULT in
        exit_after_bytes) fail 4 "$1: injected fault exit_after_bytes after $FAULT_BYTES bytes" ;;
        kill_after_bytes) kill -9 $$ ;;
    esac
}

# send CMD PRODUCER...: run PRODUCER (which writes the payload on stdout), applying the
# output-side faults.  The caller has already checked that the object exists.
send() {
    local cmd=$1
    shift
    case $FAULT in
        garbage_stdout)
            head -c "$FAULT_BYTES" /dev/urandom ;;
        truncate_stdout)
            { "$@" || true; } | head -c "$FAULT_BYTES" ;;
        exit_after_bytes | kill_after_bytes)
            { "$@" || true; } | head -c "$FAULT_BYTES"
            after_bytes_fault "$cmd" ;;
        *)
            "$@" ;;
    esac
}

# ---------------------------------------------------------------------------------
# Writing objects
# ---------------------------------------------------------------------------------

# begin_write DEST: prepare to write DEST; sets OUT to the file to write into.
# Atomic mode: OUT = DEST.tmp.<pid>, renamed by commit_write.  naive_overwrite: OUT = DEST.
begin_write() {
    local dest=$1
    mkdir -p -- "$(dirname -- "$dest")" || die "cannot create directory for '$dest'"
    if [[ $NAIVE == on ]]; then
        OUT=$dest
    else
        TMP="$dest.tmp.$$"
        OUT=$TMP
    fi
}

# commit_write DEST: move the finished temporary file into place.
commit_write() {
    local dest=$1
    if [[ $OUT != "$dest" ]]; then
        mv -f -- "$OUT" "$dest" || die "cannot commit '$dest'"
        TMP=""
    fi
}

# ---------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------

# setup/cleanup hooks: ARGS = LOCAL_BACKUP_DIR SCOPE [CONTENT_ID]
cmd_hook() {
    local cmd=$1
    shift
    (($# >= 2)) || die "$cmd: usage: $cmd CONFIG LOCAL_BACKUP_DIR SCOPE [CONTENT_ID]"
    local scope=$2 line
    line="$cmd $scope"
    if (($# >= 3)); then
        line+=" $3"                                       # content ID exactly as received
    fi
    mkdir -p -- "$ROOT" || die "$cmd: cannot create storage root '$ROOT'"
    printf '%s\n' "$line" >>"$ROOT/.hooks.log" || die "$cmd: cannot write $ROOT/.hooks.log"
}

cmd_backup_file() {
    local src=$1 dest
    [[ -f $src && -r $src ]] || die "backup_file: cannot read local file '$src'"
    dest=$(object_path "$src")
    begin_write "$dest"
    case $FAULT in
        exit_after_bytes | kill_after_bytes)
            head -c "$FAULT_BYTES" -- "$src" >"$OUT"
            after_bytes_fault backup_file ;;
    esac
    cat -- "$src" >"$OUT" || die "backup_file: cannot write '$dest'"
    commit_write "$dest"
}

cmd_restore_file() {
    local local_path=$1 obj
    obj=$(object_path "$local_path")
    [[ -f $obj ]] || die "restore_file: no such object '${obj#"$ROOT"/}'"
    mkdir -p -- "$(dirname -- "$local_path")" || die "restore_file: cannot create directory for '$local_path'"
    TMP="$local_path.tmp.$$"
    send restore_file cat -- "$obj" >"$TMP" || die "restore_file: cannot write '$local_path'"
    mv -f -- "$TMP" "$local_path" || die "restore_file: cannot write '$local_path'"
    TMP=""
}

# On SIGTERM while receiving: stop the reader; discard the partial object (default) or,
# with fault commit_partial, commit it like a naive plugin would.
CHILD=""
DEST=""
on_term() {
    if [[ -n $CHILD ]]; then
        kill "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    if [[ $FAULT == commit_partial && -n $DEST ]]; then
        commit_write "$DEST"
        fail 143 "backup_data: terminated by SIGTERM, partial object committed (fault commit_partial)"
    fi
    if [[ $NAIVE == on ]]; then
        fail 143 "backup_data: terminated by SIGTERM, partial object left in place (naive_overwrite)"
    fi
    fail 143 "backup_data: terminated by SIGTERM, object not committed"
}

cmd_backup_data() {
    local dest
    dest=$(object_path "$1")
    begin_write "$dest"
    case $FAULT in
        exit_after_bytes | kill_after_bytes)
            head -c "$FAULT_BYTES" >"$OUT"
            after_bytes_fault backup_data ;;
    esac
    # Read stdin in a background child so a SIGTERM is handled at once (bash delays
    # traps until a foreground child ends).  The explicit <&0 keeps our stdin: without
    # it a background command reads /dev/null.
    DEST=$dest
    trap on_term TERM
    cat <&0 >"$OUT" &
    CHILD=$!
    wait "$CHILD" || die "backup_data: error while receiving '$dest'"
    CHILD=""
    trap - TERM
    commit_write "$dest"
}

cmd_restore_data() {
    local obj
    obj=$(object_path "$1")
    [[ -f $obj ]] || die "restore_data: no such object '${obj#"$ROOT"/}'"
    if [[ -z $FAULT || $FAULT == stderr_noise ]]; then
        exec cat -- "$obj"            # the plain case: become cat (a SIGTERM stops the writer)
    fi
    send restore_data cat -- "$obj"
}

# emit_ranges OBJECT RANGE...: write the byte ranges [s,e) of OBJECT in order.
emit_ranges() {
    local obj=$1 s e
    local -                   # option changes below stay local to this function
    set +o pipefail           # head closing the pipe early makes tail die of SIGPIPE: fine
    shift
    while (($# >= 2)); do
        s=$1 e=$2
        shift 2
        if ((e > s)); then
            tail -c +$((s + 1)) -- "$obj" | head -c $((e - s))
        fi
    done
}

cmd_restore_data_subset() {
    local obj offsets_file size n i s e
    local -a f=()
    obj=$(object_path "$1")
    offsets_file=$2
    [[ -f $obj ]] || die "restore_data_subset: no such object '${obj#"$ROOT"/}'"
    [[ -f $offsets_file && -r $offsets_file ]] || die "restore_data_subset: cannot read offsets file '$offsets_file'"
    read -r -a f <"$offsets_file" || [[ ${#f[@]} -gt 0 ]] || die "restore_data_subset: empty offsets file '$offsets_file'"
    for i in "${f[@]}"; do
        [[ $i =~ ^[0-9]+$ ]] || die "restore_data_subset: bad offsets file '$offsets_file': '$i' is not a number"
    done
    n=$((10#${f[0]}))
    ((${#f[@]} == 1 + 2 * n)) || die "restore_data_subset: offsets file says $n ranges (needs $((2 * n)) numbers after the count) but has $((${#f[@]} - 1))"
    size=$(wc -c <"$obj")
    for ((i = 1; i < ${#f[@]}; i += 2)); do
        s=$((10#${f[i]})) e=$((10#${f[i + 1]}))
        f[i]=$s f[i + 1]=$e
        ((s <= e)) || die "restore_data_subset: range [$s,$e) is reversed"
        ((e <= size)) || die "restore_data_subset: range [$s,$e) is past the end of the object ($size bytes)"
    done
    send restore_data_subset emit_ranges "$obj" "${f[@]:1}"
}

cmd_delete_backup() {
    local ts=$1 date
    [[ $ts =~ ^[0-9]{14}$ ]] || die "delete_backup: invalid timestamp '$ts' (need 14 digits)"
    date=${ts:0:8}
    rm -rf -- "${ROOT:?}/$date/$ts" || die "delete_backup: cannot remove '$date/$ts'"
    rmdir -- "$ROOT/$date" 2>/dev/null || true   # drop the date directory once it is empty
}

cmd_delete_directory() {
    local dir=$1
    safe_dir "$dir"
    [[ -n ${dir//[\/.]/} ]] || die "delete_directory: refusing to delete the storage root"
    rm -rf -- "${ROOT:?}/$dir" || die "delete_directory: cannot remove '$dir'"
}

cmd_list_directory() {
    local dir=${1-} listing
    safe_dir "$dir"
    [[ -d $ROOT/$dir ]] || die "list_directory: no such directory '$dir'"
    # Regular files only, relative to DIR; hide in-flight temporaries and the hook log.
    listing=$(cd -- "$ROOT/$dir" && find . -type f ! -name '*.tmp.[0-9]*' ! -path ./.hooks.log) ||
        die "list_directory: cannot list '$dir'"
    if [[ -n $listing ]]; then
        printf '%s\n' "$listing" | sed 's|^\./||' | LC_ALL=C sort
    fi
}

# ---------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------

# need_args CMD COUNT ARGS...: check the number of arguments after the config path.
need_args() {
    local cmd=$1 want=$2
    shift 2
    (($# == want)) || die "$cmd: expected $want argument(s) after the config path, got $#"
}

main() {
    (($# >= 1)) || die "usage: local_plugin.sh COMMAND [CONFIG ARGS...]"
    local cmd=$1
    shift
    case $cmd in
        plugin_api_version) printf '%s\n' "$API_VERSION"; return 0 ;;
        --version) printf '%s version %s\n' "$PLUGIN_NAME" "$PLUGIN_VERSION"; return 0 ;;
        setup_plugin_for_backup | setup_plugin_for_restore | cleanup_plugin_for_backup | \
            cleanup_plugin_for_restore | backup_file | restore_file | backup_data | \
            restore_data | restore_data_subset | delete_backup | delete_directory | \
            list_directory) ;;
        *) die "unknown command '$cmd'" ;;
    esac

    (($# >= 1)) || die "$cmd: missing config file argument"
    load_config "$1"
    shift
    ROOT=$(opt root)
    [[ -n $ROOT ]] || die "missing required option 'root'"
    [[ $ROOT == / ]] || ROOT=${ROOT%/}
    NAIVE=$(opt naive_overwrite)
    case $NAIVE in
        on | off | "") ;;
        *) die "naive_overwrite must be \"on\" or \"off\", not '$NAIVE'" ;;
    esac
    setup_fault "$cmd"

    case $cmd in
        setup_plugin_for_* | cleanup_plugin_for_*) cmd_hook "$cmd" "$@" ;;
        backup_file) need_args "$cmd" 1 "$@"; cmd_backup_file "$1" ;;
        restore_file) need_args "$cmd" 1 "$@"; cmd_restore_file "$1" ;;
        backup_data) need_args "$cmd" 1 "$@"; cmd_backup_data "$1" ;;
        restore_data) need_args "$cmd" 1 "$@"; cmd_restore_data "$1" ;;
        restore_data_subset) need_args "$cmd" 2 "$@"; cmd_restore_data_subset "$1" "$2" ;;
        delete_backup) need_args "$cmd" 1 "$@"; cmd_delete_backup "$1" ;;
        delete_directory) need_args "$cmd" 1 "$@"; cmd_delete_directory "$1" ;;
        list_directory) need_args "$cmd" 1 "$@"; cmd_list_directory "$1" ;;
    esac
}

ROOT=""
NAIVE=""
OUT=""
main "$@"
