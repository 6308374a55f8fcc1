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

# require_no_runtime_loading BINARY: fails if the statically linked glibc in BINARY could
# load code at run time. glibc does that for NSS lookups (users, groups, hosts,
# services: nsswitch.conf modules such as sssd or ldap) and for iconv conversions, which
# its message catalogs reach only after setlocale() chose a locale other than "C". So
# none of those entry points may be linked in. Needs the symbol table (the dist profile
# keeps it).
require_no_runtime_loading() {
    local bin=$1 symbols found
    symbols=$(nm "$bin" 2>/dev/null) || true
    if [ "$(wc -l <<<"$symbols")" -lt 100 ]; then
        echo "$bin has no symbol table to check (stripped?)" >&2
        return 1
    fi
    found=$(grep -oE ' [TtWw] (getpw(nam|uid|ent)[a-z_]*|getgr(nam|gid|ent|ouplist)[a-z_]*|getspnam[a-z_]*|initgroups|getaddrinfo|gethostby[a-z_]*|getservby[a-z_]*|getprotoby[a-z_]*|getnetby[a-z_]*|setlocale|iconv_open)$' <<<"$symbols" | awk '{print $2}' | sort -u | tr '\n' ' ' || true)
    if [ -n "$found" ]; then
        echo "$bin links glibc functions that load shared modules at run time, which a static binary cannot do safely: $found" >&2
        return 1
    fi
}
