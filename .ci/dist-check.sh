#!/usr/bin/env bash
# .ci/dist-check.sh: builds the release artifacts with packaging/dist.sh, as a maintainer
# does, and checks what an operator gets:
# - the checksums verify, and catch a changed byte;
# - the tarball holds exactly the binary, README.md, LICENSE, docs/*.md, the example
#   configs and inner plugin and keys/README.md (no demo key), each identical to the
#   source tree; its example config, given a key from keygen as the config's header
#   says (no demo key ships), stores and verifies the shipped demo backup set;
# - the binary loads no shared library (and links no glibc function that would load
#   one), reports this version, and a later `cargo build --release` leaves it as it was;
# - the RPM holds the same files at their FHS paths, requires nothing but /bin/sh, has a
#   payload RHEL 7's rpm reads (gzip, SHA-256 file digests), and installs into a scratch
#   root with every file's digest verified.
# Needs rpm (apt-get install rpm) and cargo-generate-rpm.
set -euo pipefail
cd "$(dirname "$0")/.."
. packaging/static-check.sh

bash packaging/dist.sh
out=${CARGO_TARGET_DIR:-target}/artifacts
built=${CARGO_TARGET_DIR:-target}/dist/gpbackup_age_plugin
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
name=gpbackup_age_plugin-$version-x86_64-linux
tarball=$name.tar.gz
rpm_file=gpbackup_age_plugin-$version-1.x86_64.rpm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "dist-check: $*" >&2; exit 1; }

# Checksums, verified where the operator verifies them: beside the downloaded files.
cp "$out/$tarball" "$out/$tarball.sha256" "$out/$rpm_file" "$out/$rpm_file.sha256" "$work/"
(cd "$work" && sha256sum --strict -c "$tarball.sha256" && sha256sum --strict -c "$rpm_file.sha256")
cp "$work/$tarball" "$work/tampered" && printf '\1' | dd of="$work/tampered" bs=1 seek=1000 conv=notrunc status=none
sed "s/$tarball/tampered/" "$work/$tarball.sha256" > "$work/tampered.sha256"
if (cd "$work" && sha256sum --status -c tampered.sha256); then
    fail "a tarball with a changed byte still matches its checksum file"
fi

# What the artifact must hold: the source tree's files, by the same globs as dist.sh.
docs=(README.md LICENSE docs/*.md examples/*.yaml examples/local_plugin.sh examples/demo_backup_set.sh keys/README.md)
expected=$( (printf '%s\n' "$name/gpbackup_age_plugin"; printf "$name/%s\n" "${docs[@]}") | sort)
listed=$(tar -tzf "$work/$tarball" | grep -v '/$' | sort)
[ "$listed" = "$expected" ] || fail "the tarball holds other files than expected:
$(diff <(echo "$expected") <(echo "$listed"))"
tar -xzf "$work/$tarball" -C "$work"
for f in "${docs[@]}"; do
    cmp "$f" "$work/$name/$f" || fail "$f in the tarball differs from the source tree"
done
cmp "$built" "$work/$name/gpbackup_age_plugin"
[ "$(stat -c %a "$work/$name/gpbackup_age_plugin")" = 755 ] || fail "the binary is not mode 0755 in the tarball"
require_static "$work/$name/gpbackup_age_plugin"
require_no_runtime_loading "$work/$name/gpbackup_age_plugin"
# Both checks can fail: on a dynamic executable, and on a static one that looks up users.
! require_static /bin/sh 2>/dev/null || fail "require_static passed /bin/sh, a dynamic executable"
printf '#include <pwd.h>\nint main(void) { return getpwuid(0) == 0; }\n' |
    cc -static -x c - -o "$work/nss" 2>/dev/null
! require_no_runtime_loading "$work/nss" 2>/dev/null ||
    fail "require_no_runtime_loading passed a static executable that calls getpwuid"
[ "$("$work/$name/gpbackup_age_plugin" --version)" = "gpbackup_age_plugin version $version" ] ||
    fail "the binary does not report version $version"
[ "$("$work/$name/gpbackup_age_plugin" plugin_api_version)" = 0.5.0 ] || fail "plugin_api_version is not 0.5.0"
echo "tarball: checksum verified, ${#docs[@]} files and a static binary, all as built"
# The release ships no demo key: its example config, adapted as the config's header says
# (a key of one's own from keygen), runs the shipped demo backup set end to end.
rel="$work/$name"
mkdir -p "$work/home"
recipient=$(HOME="$work/home" "$rel/gpbackup_age_plugin" keygen "$work/current.txt")
sed -e "s|^executablepath: .*|executablepath: $rel/gpbackup_age_plugin|" \
    -e "s|/opt/gpbackup_age_plugin/examples/|$rel/examples/|" \
    -e "s|^  recipients_file: .*|  recipients: \"$recipient\"|" \
    -e "s|^  identity_file: .*|  identity_file: \"$work/current.txt\"|" \
    -e "s|^  root: .*|  root: \"$work/storage\"|" \
    "$rel/examples/local_config.yaml" > "$work/local_config.yaml"
if grep -v '^[[:space:]]*#' "$work/local_config.yaml" | grep -q demo-only; then
    fail "examples/local_config.yaml names demo keys where its header says to put your own"
fi
timestamps=$(HOME="$work/home" TMPDIR="$work" bash "$rel/examples/demo_backup_set.sh" "$work/local_config.yaml" "$work/demo" 50)
HOME="$work/home" TMPDIR="$work" "$rel/gpbackup_age_plugin" verify "$work/local_config.yaml" $timestamps >/dev/null ||
    fail "the release's example config, with a key of its own, does not back up and verify the demo set"
echo "tarball: examples/local_config.yaml with a keygen key runs the shipped demo backup set"

# The development build (the README's commands) never replaces the binary operators install.
cargo build --release --quiet
cmp "$built" "$work/$name/gpbackup_age_plugin" || fail "cargo build --release changed $built"

# The RPM: the same files at their installed paths.
doc=/usr/share/doc/gpbackup_age_plugin
rpm_expected=$( (echo /usr/bin/gpbackup_age_plugin; echo /usr/share/licenses/gpbackup_age_plugin/LICENSE
    for f in "${docs[@]}"; do [ "$f" = LICENSE ] || echo "$doc/$f"; done) | sort)
rpm_listed=$(rpm -qlp "$work/$rpm_file" 2>/dev/null | sort)
[ "$rpm_listed" = "$rpm_expected" ] || fail "the RPM holds other files than expected:
$(diff <(echo "$rpm_expected") <(echo "$rpm_listed"))"
requires=$(rpm -qpR "$work/$rpm_file" 2>/dev/null | grep -v '^rpmlib(' || true)
[ "$requires" = /bin/sh ] || fail "the RPM requires more than /bin/sh: $requires"
[ "$(rpm -qp --qf '%{PAYLOADCOMPRESSOR} %{FILEDIGESTALGO}' "$work/$rpm_file" 2>/dev/null)" = "gzip 8" ] ||
    fail "the RPM payload is not gzip with SHA-256 file digests (RHEL 7's rpm 4.11 reads only that of what cargo-generate-rpm writes)"
rpm -K "$work/$rpm_file" >/dev/null 2>&1 || fail "the RPM's digests do not verify (rpm -K)"
# Install it into a scratch root: rpm checks every file's digest as it unpacks.
mkdir "$work/root"
rpm --root "$work/root" --initdb 2>/dev/null
rpm --root "$work/root" -i --nodeps "$work/$rpm_file" 2>/dev/null || fail "the RPM does not install"
cmp "$work/root/usr/bin/gpbackup_age_plugin" "$work/$name/gpbackup_age_plugin"
cmp "$work/root/usr/share/licenses/gpbackup_age_plugin/LICENSE" LICENSE
for f in "${docs[@]}"; do
    [ "$f" = LICENSE ] || cmp "$f" "$work/root$doc/$f" || fail "$doc/$f in the RPM differs from the source tree"
done
echo "rpm: installs into a scratch root with verified digests, same files as the tarball"
