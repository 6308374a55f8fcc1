#!/usr/bin/env bash
# packaging/dist.sh: builds the release artifacts into target/artifacts/:
#
# - gpbackup_age_plugin-<version>-x86_64-linux.tar.gz: the static binary, README.md,
#   LICENSE, docs/, the example configs and inner plugin, keys/README.md;
# - gpbackup_age_plugin-<version>-1.x86_64.rpm: the same files, the binary in /usr/bin,
#   the rest in /usr/share/doc and /usr/share/licenses;
# - beside each, <artifact>.sha256, in `sha256sum -c` format.
#
# usage: packaging/dist.sh [--no-rpm]
#
# The binary is `cargo build-dist` (the dist profile, glibc linked statically; see
# .cargo/config.toml), refused unless it has no dynamic dependencies and links none of
# glibc's functions that load modules at run time (packaging/static-check.sh). The RPM
# needs cargo-generate-rpm (`cargo install cargo-generate-rpm --locked`); --no-rpm builds
# the tarball alone.
#
# Neither artifact holds the demo keys of keys/: their private halves are published, and
# an artifact is what goes onto production hosts, where a key anyone can use must never
# be at hand (the quickstart and the tests use them from the source tree).
#
# File times are the last commit's (SOURCE_DATE_EPOCH if set), so the tarball of one
# commit is the same bytes on every build of the same binary.
set -euo pipefail

rpm=yes
case ${1-} in
    --no-rpm) rpm=no ;;
    "") ;;
    *) echo "usage: packaging/dist.sh [--no-rpm]" >&2; exit 2 ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
target=${CARGO_TARGET_DIR:-$repo/target}
out=$target/artifacts
. packaging/static-check.sh

if [ "$rpm" = yes ] && ! cargo generate-rpm --version >/dev/null 2>&1; then
    echo "dist.sh: cargo-generate-rpm is not installed (cargo install cargo-generate-rpm --locked), or pass --no-rpm" >&2
    exit 1
fi

cargo --quiet build-dist
bin=$target/dist/gpbackup_age_plugin
require_static "$bin"
require_no_runtime_loading "$bin"
version=$("$bin" --version | awk '{print $NF}')
name=gpbackup_age_plugin-$version-x86_64-linux
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

rm -rf "$out/$name" "$out/$name.tar.gz" "$out/$name.tar.gz.sha256"
mkdir -p "$out/$name"/{docs,examples,keys}
install -m 0755 "$bin" "$out/$name/gpbackup_age_plugin"
install -m 0644 README.md LICENSE "$out/$name/"
install -m 0644 docs/*.md "$out/$name/docs/"
install -m 0644 examples/*.yaml "$out/$name/examples/"
install -m 0755 examples/local_plugin.sh examples/demo_backup_set.sh "$out/$name/examples/"
install -m 0644 keys/README.md "$out/$name/keys/"
(
    cd "$out"
    tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -cf - "$name" \
        | gzip -n -9 > "$name.tar.gz"
    sha256sum "$name.tar.gz" > "$name.tar.gz.sha256"
)
rm -rf "${out:?}/$name"
echo "$out/$name.tar.gz"

if [ "$rpm" = yes ]; then
    rpm_file=$out/gpbackup_age_plugin-$version-1.x86_64.rpm
    rm -f "$rpm_file" "$rpm_file.sha256"
    cargo generate-rpm --profile dist --payload-compress gzip --source-date "$epoch" -o "$rpm_file"
    (cd "$out" && sha256sum "$(basename "$rpm_file")" > "$(basename "$rpm_file").sha256")
    echo "$rpm_file"
fi
