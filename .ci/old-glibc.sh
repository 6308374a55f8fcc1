#!/usr/bin/env bash
# .ci/old-glibc.sh TARBALL [DYNAMIC_BINARY]: proves that the release binary runs on a host
# whose glibc is older than the build host's, as on RHEL/Rocky/Oracle Linux 7 and 8.
#
# Debootstraps a minimal Debian userland (OLD_SUITE, default bullseye: glibc 2.31) into a
# scratch directory, installs the binary from the release TARBALL there as
# /opt/gphome/bin/gpbackup_age_plugin, checks it loads no shared library, and runs
# examples/quickstart.sh in a chroot with it (GPBACKUP_AGE_PLUGIN): setup hooks,
# backup_data, restore_data, backup_file, restore_file and restore_data_subset through
# examples/local_plugin.sh with the demo keys, each result compared byte for byte.
# DYNAMIC_BINARY, if given (target/release/gpbackup_age_plugin), is the control: a build
# linked against this host's glibc must fail to start in there, or the userland is not
# older than the build host's and the run proves nothing.
#
# Needs root (debootstrap, chroot, mounting /proc), debootstrap and the network.
# DEBIAN_MIRROR overrides the mirror (default http://deb.debian.org/debian).
set -euo pipefail

tarball=${1:?usage: .ci/old-glibc.sh TARBALL [DYNAMIC_BINARY]}
dynamic=${2-}
suite=${OLD_SUITE:-bullseye}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/packaging/static-check.sh"

[ "$(id -u)" = 0 ] || { echo "old-glibc.sh: needs root (debootstrap and chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "old-glibc.sh: apt-get install debootstrap" >&2; exit 1; }

start=$(date +%s)
work=$(mktemp -d /var/tmp/old-glibc.XXXXXX)
root=$work/root
cleanup() {
    if mountpoint -q "$root/proc" 2>/dev/null; then
        umount "$root/proc" || umount -l "$root/proc"
    fi
    # --one-file-system: never descend into a mount that outlived the umount.
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

echo "debootstrap --variant=minbase $suite from $mirror ..."
if ! debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 20 "$work/debootstrap.log" >&2
    echo "old-glibc.sh: debootstrap $suite failed (log above)" >&2
    exit 1
fi

glibc_version() { "$@" --version | head -n 1 | awk '{print $NF}'; }
host_glibc=$(glibc_version ldd)
old_glibc=$(glibc_version chroot "$root" ldd)
if [ "$(printf '%s\n%s\n' "$old_glibc" "$host_glibc" | sort -V | head -n 1)" = "$host_glibc" ]; then
    echo "old-glibc.sh: $suite has glibc $old_glibc, not older than this host's $host_glibc" >&2
    exit 1
fi
echo "glibc: build host $host_glibc, $suite userland $old_glibc"

# Install as an operator does: from the release tarball, into the cluster's bin directory.
tar -xzf "$tarball" -C "$work"
mkdir -p "$root/opt/gphome/bin" "$root/src/examples" "$root/src/keys"
install -m 0755 "$work"/gpbackup_age_plugin-*/gpbackup_age_plugin "$root/opt/gphome/bin/"
require_static "$root/opt/gphome/bin/gpbackup_age_plugin"
echo "installed binary: no program interpreter, no NEEDED entry"
# The quickstart and what it runs, from the source tree (the demo keys are not in the
# release artifact).
cp "$repo/examples/quickstart.sh" "$repo/examples/local_plugin.sh" "$repo/examples/demo_backup_set.sh" \
    "$root/src/examples/"
cp "$repo"/keys/demo-only-* "$root/src/keys/"
mkdir -p "$root/src/bench"
cp "$repo/bench/table_rows.awk" "$root/src/bench/"   # the quickstart's sample table data
mount -t proc proc "$root/proc"

in_chroot() {
    chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

if [ -n "$dynamic" ]; then
    cp "$dynamic" "$root/opt/dynamic_build"
    if in_chroot /opt/dynamic_build --version >"$work/control.out" 2>&1; then
        echo "old-glibc.sh: the dynamically linked $dynamic ran under glibc $old_glibc, so this userland proves nothing" >&2
        exit 1
    fi
    grep -q 'GLIBC_' "$work/control.out" || {
        cat "$work/control.out" >&2
        echo "old-glibc.sh: the control failed, but not for want of a newer glibc (output above)" >&2
        exit 1
    }
    echo "control: the dynamic build fails there: $(grep -o "version .GLIBC_[0-9.]*' not found" "$work/control.out" | head -n 1)"
fi

if ! in_chroot GPBACKUP_AGE_PLUGIN=/opt/gphome/bin/gpbackup_age_plugin \
    bash /src/examples/quickstart.sh 16 >"$work/quickstart.log" 2>&1; then
    cat "$work/quickstart.log" >&2
    echo "old-glibc.sh: the quickstart failed under glibc $old_glibc (output above)" >&2
    exit 1
fi
# The quickstart reports each comparison on a line of its own; all must be there.
for line in "local file left byte-identical" "restored stream is byte-identical" \
    "restored file is byte-identical" "subset matches" \
    "== quickstart finished: every step succeeded"; do
    grep -qx "$line" "$work/quickstart.log" || {
        cat "$work/quickstart.log" >&2
        echo "old-glibc.sh: the quickstart under glibc $old_glibc did not report: $line" >&2
        exit 1
    }
done
grep -E '^(gpbackup_age_plugin version|original .* bytes)' "$work/quickstart.log"
echo "old-glibc.sh: the release binary ran the quickstart's backup and restore under glibc $old_glibc in $(($(date +%s) - start)) s"
