#!/usr/bin/env python3
"""Which gpbackup compression flag to use with the plugin, by measurement.

gpbackup compresses table data itself before the plugin sees it: `gzip -1` by default
(`.gz` files), `zstd` with `--compression-type zstd` (`.zst`), nothing with
`--no-compression`. The plugin stores gzip or zstd output as it comes (it cannot shrink
it further) and compresses plain CSV with its own parallel zstd. This bench measures each
choice end to end through the plugin and the local inner plugin (examples/local_plugin.sh),
on the same table data:

- backup:  `gzip -c -1 < csv | plugin backup_data` (what gpbackup's COPY ... TO PROGRAM
  runs by default), `zstd -c -1 < csv | plugin backup_data` (--compression-type zstd),
  and `plugin backup_data < csv` (--no-compression);
- restore: `plugin restore_data | gzip -d -c` (what gprestore runs for a .gz file),
  `plugin restore_data | zstd -d -c`, and `plugin restore_data`;
- the stored size of each.

The machine is shared and noisy, so the choices take turns in every round (the order
rotates) and each is reported as the best and the median of --repeat rounds, as a ratio
against gpbackup's default (gzip), with the CPU seconds per GiB of input of every process
(wait4 rusage; the load moves it much less than the wall clock) and the CPU model.

usage: python3 bench/gpbackup_flags.py [--size-mib 256] [--repeat 3] [--input CSV]
                                       [--binary target/dist/gpbackup_age_plugin]
"""
import argparse
import atexit
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the shared helpers: run_all, GEN, INNER, keys, TS)

CHOICES = [
    # (name, gpbackup flag, suffix, compressor before the plugin, decompressor after it)
    ("gzip", "(none: gzip -1, the default)", ".gz", "gzip -c -1", "gzip -d -c"),
    ("zstd", "--compression-type zstd", ".zst", "zstd -c -1 -q", "zstd -d -c -q"),
    ("none", "--no-compression", "", None, None),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--input", help="an existing CSV to use instead of generating one")
    ap.add_argument("--binary", default=bench.BUILT,
                    help="the plugin to measure (default: the deployment build, target/dist)")
    args = ap.parse_args()
    for tool in ("gzip", "zstd"):
        if not shutil.which(tool):
            sys.exit(f"gpbackup_flags: {tool} is not installed (apt-get install -y gzip zstd)")
    if not os.path.exists(args.binary):
        sys.exit(f"gpbackup_flags: {args.binary} does not exist; build it with `cargo build-dist`")

    work = bench.scratch("gpage_flags_", 4)
    # The binary runs from a copy on disk, as installed (see bench.install()).
    bins = tempfile.mkdtemp(prefix="gpage_flags_bin_")
    atexit.register(shutil.rmtree, bins, True)
    binary = os.path.join(bins, "gpbackup_age_plugin")
    shutil.copy2(args.binary, binary)
    csv = bench.table_csv(work, args.size_mib, args.input)
    size = os.path.getsize(csv)
    store = os.path.join(work, "store")
    cfg = os.path.join(work, "plugin.yaml")
    with open(cfg, "w") as f:
        f.write(f'executablepath: {binary}\noptions:\n  inner_executablepath: "{bench.INNER}"\n'
                f'  recipients_file: "{bench.RECIPIENTS}"\n  identity_file: "{bench.IDENTITY}"\n'
                f'  root: "{store}"\n')
    seg = os.path.join(work, "seg0", "backups", bench.TS[:8], bench.TS)

    def key(suffix):
        return os.path.join(seg, f"gpbackup_0_{bench.TS}_16384{suffix}")

    def stored(suffix):
        return os.path.join(store, bench.TS[:8], bench.TS, os.path.basename(key(suffix)))

    backup, restore = {}, {}
    for name, _, suffix, comp, decomp in CHOICES:
        ours = f"{binary} backup_data {cfg} {key(suffix)}"
        backup[name] = f"{comp} | {ours}" if comp else ours
        ours = f"{binary} restore_data {cfg} {key(suffix)}"
        restore[name] = f"{ours} | {decomp}" if decomp else ours

    # {phase: {choice: [(seconds, cpu seconds)]}}
    results = {"backup": {n: [] for n, *_ in CHOICES}, "restore": {n: [] for n, *_ in CHOICES}}
    names = [n for n, *_ in CHOICES]
    for r in range(args.repeat):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            suffix = next(c[2] for c in CHOICES if c[0] == name)
            if os.path.exists(stored(suffix)):
                os.remove(stored(suffix))
            elapsed, cpu, _ = bench.run_all([backup[name]], csv)
            results["backup"][name].append((elapsed, cpu))
        for name in order:
            elapsed, cpu, _ = bench.run_all([restore[name]])
            results["restore"][name].append((elapsed, cpu))
        # Every restore must give back the table data exactly.
        if r == 0:
            for name in names:
                out = subprocess.run(["bash", "-c", f"{restore[name]} | cmp - {csv}"])
                if out.returncode != 0:
                    sys.exit(f"gpbackup_flags: the {name} restore differs from the input")

    cpu_model = subprocess.run(["bash", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                               capture_output=True, text=True).stdout.strip()
    mib, gib = 1 << 20, 1 << 30
    print(f"machine: {os.cpu_count()} cores, CPU: {cpu_model}; input {size / mib:.0f} MiB table CSV "
          f"({bench.DATA_SOURCE}); best and median of {args.repeat} interleaved rounds; ratios against "
          f"gpbackup's default (gzip); CPU: every process, median")
    print()
    print("| gpbackup flag                  | backup MiB/s | ratio | median | CPU s/GiB | restore MiB/s | ratio | median | CPU s/GiB | stored MiB | size |")
    print("|--------------------------------|--------------|-------|--------|-----------|---------------|-------|--------|-----------|------------|------|")
    base = {}
    for name, flag, suffix, *_ in CHOICES:
        row = [f"{flag:<30}"]
        for phase in ("backup", "restore"):
            times = [t for t, _ in results[phase][name]]
            cpus = [c for _, c in results[phase][name]]
            best, med = min(times), statistics.median(times)
            if name == "gzip":
                base[phase] = (best, med)
            row += [f"{size / mib / best:12.0f}", f"{base[phase][0] / best:4.2f}x",
                    f"{base[phase][1] / med:5.2f}x", f"{statistics.median(cpus) / (size / gib):9.2f}"]
        stored_size = os.path.getsize(stored(suffix))
        if name == "gzip":
            base["size"] = stored_size
        row += [f"{stored_size / mib:10.1f}", f"{stored_size / base['size']:4.2f}"]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
