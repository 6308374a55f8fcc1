#!/usr/bin/env python3
"""Throughput of two builds of the plugin, A and B, against the shell pipelines, in the
same rounds: backup and restore of table data and of gzip output (gpbackup's default).

    python3 bench/ab.py --a /path/to/old/gpbackup_age_plugin \\
        --b target/release/gpbackup_age_plugin --size-mib 256 --repeat 5 [--b-sha256]

In every round each row's commands take turns (A, B, the pipeline; the order rotates
from round to round), so a burst of load on the shared machine meets all of them. Each
command's figures: the best and the median round (wall clock), and the median CPU
seconds per GiB of input from wait4's rusage (every process: ours and the inner plugin,
or every member of the pipeline), which the load moves much less. --b-sha256 adds B
with `restore_check_sha256: "on"` to the restore rows. A last table gives each build's
subset restore (1 KB near the end) against its own full restore. The store is on tmpfs
where /dev/shm has room, as in bench.py, whose helpers this uses.
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
import bench  # noqa: E402  (the shared helpers: run_all, GEN, INNER, keys)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="build A (the baseline build)")
    ap.add_argument("--b", required=True, help="build B")
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--input", help="an existing CSV to use instead of generating one")
    ap.add_argument("--b-sha256", action="store_true", help="also B with restore_check_sha256 on")
    args = ap.parse_args()

    shm = "/dev/shm"
    in_memory = os.path.isdir(shm) and shutil.disk_usage(shm).free > (8 << 30)
    work = tempfile.mkdtemp(prefix="gpage_ab_", dir=shm if in_memory else None)
    atexit.register(shutil.rmtree, work, True)
    # The binaries are copied (as Install does) to the disk, not to tmpfs.
    bins = tempfile.mkdtemp(prefix="gpage_ab_bin_")
    atexit.register(shutil.rmtree, bins, True)
    home = os.path.join(work, "home")
    os.makedirs(home)
    os.environ["HOME"] = home
    binary = {}
    for name, path in (("A", args.a), ("B", args.b)):
        binary[name] = os.path.join(bins, f"gpbackup_age_plugin_{name}")
        shutil.copy2(path, binary[name])

    csv = bench.table_csv(work, args.size_mib, args.input)
    gz = os.path.join(work, "table.csv.gz")
    with open(csv, "rb") as src, open(gz, "wb") as dst:
        subprocess.run(["gzip", "-1", "-c"], stdin=src, stdout=dst, check=True)
    sizes = {"csv": os.path.getsize(csv), "gz": os.path.getsize(gz)}
    recipient = next(l.strip() for l in open(bench.RECIPIENTS) if l.strip() and not l.startswith("#"))
    store = os.path.join(work, "store")
    seg = os.path.join(work, "seg0", "backups", bench.TS[:8], bench.TS)
    inner_cfg = os.path.join(work, "inner.yaml")
    with open(inner_cfg, "w") as f:
        f.write(f'executablepath: {bench.INNER}\noptions:\n  root: "{store}"\n')

    def config(name, extra=""):
        path = os.path.join(work, f"plugin_{name}.yaml")
        with open(path, "w") as f:
            f.write(f'executablepath: {binary[name[0]]}\noptions:\n  inner_executablepath: "{bench.INNER}"\n'
                    f'  recipients_file: "{bench.RECIPIENTS}"\n  identity_file: "{bench.IDENTITY}"\n'
                    f'  root: "{store}"\n{extra}')
        return path

    cfgs = {"A": config("A"), "B": config("B")}
    if args.b_sha256:
        cfgs["B+sha256"] = config("B+sha256", '  restore_check_sha256: "on"\n')

    def key(name):
        return os.path.join(seg, name)

    def ours(cmd, name, obj):
        return f"{binary[name[0]]} {cmd} {cfgs[name]} {key(obj)}"

    def inner(cmd, obj):
        return f"{bench.INNER} {cmd} {inner_cfg} {key(obj)}"

    def stored_path(obj):
        return os.path.join(store, bench.TS[:8], bench.TS, obj)

    builds = ["A", "B"]
    rows = [
        ("backup CSV", "csv", csv,
         {n: ours("backup_data", n, f"{n}.csv") for n in builds}
         | {"zstd -3 -T0 | age": f"zstd -3 -T0 -c | age -r {recipient} | " + inner("backup_data", "pipe.csv")},
         {n: f"{n}.csv" for n in builds} | {"zstd -3 -T0 | age": "pipe.csv"}),
        ("backup .gz input", "gz", gz,
         {n: ours("backup_data", n, f"{n}.csv.gz") for n in builds}
         | {"age -r": f"age -r {recipient} | " + inner("backup_data", "pipe.csv.gz")},
         {n: f"{n}.csv.gz" for n in builds} | {"age -r": "pipe.csv.gz"}),
        ("restore CSV", "csv", None,
         {n: ours("restore_data", n, f"{n[0]}.csv") for n in cfgs}
         | {"age -d | zstd -d": inner("restore_data", "pipe.csv") + f" | age -d -i {bench.IDENTITY} | zstd -d -c"},
         None),
        ("restore .gz input", "gz", None,
         {n: ours("restore_data", n, f"{n[0]}.csv.gz") for n in cfgs}
         | {"age -d": inner("restore_data", "pipe.csv.gz") + f" | age -d -i {bench.IDENTITY}"},
         None),
    ]
    # A subset restore of 1 KB near the end against a full restore, by each build: a
    # full restore that gets faster shrinks this ratio (the target is 3x).
    offsets = os.path.join(work, "offsets")
    with open(offsets, "w") as f:
        f.write(f"1 {sizes['csv'] - 5000} {sizes['csv'] - 4000}\n")
    rows.append(("subset 1 KB near end", "csv", None,
                 {f"{n} {op}": (ours("restore_data", n, f"{n}.csv") if op == "full" else
                                ours("restore_data_subset", n, f"{n}.csv") + f" {offsets}")
                  for n in builds for op in ("subset", "full")},
                 None))
    results = []
    for what, kind, stdin, cmds, writes in rows:
        times = {name: [] for name in cmds}
        names = list(cmds)
        for r in range(args.repeat):
            for name in names[r % len(names):] + names[:r % len(names)]:
                if writes and os.path.exists(stored_path(writes[name])):
                    os.remove(stored_path(writes[name]))
                elapsed, cpu, _ = bench.run_all([cmds[name]], stdin)
                times[name].append((elapsed, cpu))
        results.append((what, kind, times))

    cpu = subprocess.run(["bash", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    mib = 1 << 20
    print(f"\nmachine: {os.cpu_count()} cores, CPU: {cpu}; load average {load}; input {sizes['csv'] / mib:.0f} MiB CSV "
          f"(gzip -1: {sizes['gz'] / mib:.0f} MiB); best and median of {args.repeat} interleaved rounds; "
          f"storage: {'tmpfs' if in_memory else 'disk'}\n")
    print("| row | command | best | median | CPU s/GiB (median) | vs baseline, best / median | vs A, best / median |")
    print("|---|---|---|---|---|---|---|")
    for what, kind, times in results:
        if what.startswith("subset"):
            continue
        size = sizes[kind]
        gib = size / (1 << 30)
        base_name = [n for n in times if n not in cfgs][0]
        best = {n: min(t for t, _ in v) for n, v in times.items()}
        med = {n: statistics.median(t for t, _ in v) for n, v in times.items()}
        for name, v in times.items():
            cpu_gib = statistics.median(c for _, c in v) / gib
            vs_base = "" if name == base_name else f"{best[base_name] / best[name]:.2f}x / {med[base_name] / med[name]:.2f}x"
            vs_a = "" if name in ("A", base_name) else f"{best['A'] / best[name]:.2f}x / {med['A'] / med[name]:.2f}x"
            print(f"| {what} | {name.replace('|', chr(92) + '|')} | {size / mib / best[name]:.0f} MiB/s | {size / mib / med[name]:.0f} MiB/s | "
                  f"{cpu_gib:.2f} | {vs_base} | {vs_a} |")

    for what, kind, times in results:
        if not what.startswith("subset"):
            continue
        print(f"\n| {what} | subset best / median | full best / median | full / subset, best / median | CPU full / subset |")
        print("|---|---|---|---|---|")
        for n in builds:
            sub, full = times[f"{n} subset"], times[f"{n} full"]
            b_s, b_f = min(t for t, _ in sub), min(t for t, _ in full)
            m_s, m_f = statistics.median(t for t, _ in sub), statistics.median(t for t, _ in full)
            c_s, c_f = statistics.median(c for _, c in sub), statistics.median(c for _, c in full)
            print(f"| {n} | {b_s:.3f} / {m_s:.3f} s | {b_f:.3f} / {m_f:.3f} s | {b_f / b_s:.2f}x / {m_f / m_s:.2f}x | "
                  f"{c_f / c_s:.2f}x |")


if __name__ == "__main__":
    main()
