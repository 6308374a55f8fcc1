# Sourced by packaging/dist.sh and the CI checks.
# require_static BINARY: fails unless BINARY is an ELF executable that loads no shared
# library: no program interpreter (the dynamic loader) and no NEEDED entry.
require_static() {
    local bin=$1 headers dynamic
    headers=$(readelf --program-headers --wide "$bin") || {
        echo "$bin: not an ELF executable (readelf failed)" >&2
        return 1
    }
    dynamic=$(readelf --dynamic --wide "$bin")
    if grep -q 'INTERP' <<<"$headers" || grep -q '(NEEDED)' <<<"$dynamic"; then
        echo "$bin is dynamically linked (it needs: $(grep -o 'Shared library: \[[^]]*\]' <<<"$dynamic" | tr '\n' ' ')); build it with cargo build-dist, which links it statically" >&2
        return 1
    fi
}
