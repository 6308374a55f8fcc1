# Synthetic table text: rows shaped like TPC-H lineitem (keys, quantities, prices,
# dates, flags, a comment of random words), as gpbackup's COPY sends a table. Used by
# examples/quickstart.sh, and by bench/bench.py when gen_table_csv.py is not at hand.
# It compresses about as real table text does (3 to 4:1 with zstd -3).
#
# usage: awk -v size=SIZE_MIB -f bench/table_rows.awk > table.csv
#   exactly SIZE_MIB MiB (the last row is cut there), the same bytes on every run. The
#   generator is Park-Miller, whose products stay below 2^53 and so are exact in the
#   doubles of any POSIX awk (run with mawk here), unlike awk's own rand().
function r(k) { x = (x * 16807) % 2147483647; return int(x / 2147483647 * k) }
BEGIN {
    x = 20250101
    nw = split("carefully quickly furiously slyly blithely fluffily ironic final regular special pending express bold even silent unusual deposits requests accounts packages instructions theodolites foxes pinto beans dependencies asymptotes platelets excuses ideas sheaves courts dolphins warhorses across above against along among around after before", w, " ")
    split("DELIVER IN PERSON|COLLECT COD|NONE|TAKE BACK RETURN", si, "|")
    split("TRUCK|MAIL|SHIP|AIR|RAIL|FOB|REG AIR", sm, "|")
    split("R A N", rf, " ")
    limit = size * 1048576; n = 0; order = 1
    while (n < limit) {
        lines = 1 + r(7)
        for (l = 1; l <= lines && n < limit; l++) {
            q = 1 + r(50); y = 1992 + r(7); m = 1 + r(12)
            c = w[1 + r(nw)]
            for (k = 2 + r(6); k > 0; k--) c = c " " w[1 + r(nw)]
            row = sprintf("%d,%d,%d,%d,%d,%.2f,0.%02d,0.%02d,%s,%s,%d-%02d-%02d,%d-%02d-%02d,%d-%02d-%02d,%s,%s,%s\n",
                order, 1 + r(200000), 1 + r(10000), l, q, q * (900 + r(100000) / 100), r(11), r(9),
                rf[1 + r(3)], (r(2) ? "O" : "F"), y, m, 1 + r(28), y, m % 12 + 1, 1 + r(28),
                y, m % 12 + 1, 1 + r(28), si[1 + r(4)], sm[1 + r(7)], c)
            if (n + length(row) > limit) row = substr(row, 1, limit - n)
            printf "%s", row
            n += length(row)
        }
        order += 1 + r(4)
    }
}