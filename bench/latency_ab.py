#!/usr/bin/env python3
"""Per-call latency of two builds of the plugin, A and B, on 1 KiB backup_data and
restore_data calls, taking turns call by call (the machine is shared and noisy: only
the difference within one run means something).

    python3 bench/latency_ab.py --a /path/to/old/gpbackup_age_plugin \\
        --b target/release/gpbackup_age_plugin --calls 600 --unrelated 300

Both binaries are copied into a private directory first (as Install does; how the page
cache holds a binary changes its start-up time). The inner configs go to a private
directory on /dev/shm (TMPDIR) that also holds --unrelated unrelated files, as /dev/shm
does on a real host; the inner plugin is a minimal /bin/sh script (cat to and from a
file), so what is measured is the plugin's own cost. Prints, for each (build,
command), the median and mean wall-clock time and the median CPU time (user + system of
the call and the processes it waited for, from wait4: far less disturbed by other load
on the machine than wall-clock time), and the differences B - A, with the CPU model.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="build A (the baseline)")
    ap.add_argument("--b", required=True, help="build B")
    ap.add_argument("--calls", type=int, default=400, help="calls per (build, command)")
    ap.add_argument("--unrelated", type=int, default=300, help="unrelated files beside the inner configs")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="gpage_ab_")
    shm = tempfile.mkdtemp(prefix="gpage_ab_", dir="/dev/shm")
    try:
        run(args, work, shm)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)


def run(args, work, shm):
    for i in range(args.unrelated):
        with open(os.path.join(shm, f"unrelated-{i:05d}.bin"), "wb") as f:
            f.write(b"x" * 64)
    store = os.path.join(work, "store")
    os.mkdir(store)
    inner = os.path.join(work, "inner.sh")
    with open(inner, "w") as f:
        f.write(f"""#!/bin/sh
case $1 in
  backup_data) exec cat > "{store}/${{3##*/}}" ;;
  restore_data) exec cat "{store}/${{3##*/}}" ;;
esac
""")
    os.chmod(inner, 0o755)
    env = dict(os.environ, TMPDIR=shm, HOME=os.path.join(work, "home"))
    bins, configs = {}, {}
    for name, path in (("A", args.a), ("B", args.b)):
        bins[name] = os.path.join(work, f"plugin_{name}")
        shutil.copyfile(path, bins[name])
        os.chmod(bins[name], 0o755)
        configs[name] = os.path.join(work, f"config_{name}.yaml")
        with open(configs[name], "w") as f:
            f.write(f"executablepath: {bins[name]}\noptions:\n"
                    f"  inner_executablepath: \"{inner}\"\n"
                    f"  recipients_file: \"{REPO}/keys/demo-only-recipients.txt\"\n"
                    f"  identity_file: \"{REPO}/keys/demo-only-identity.txt\"\n"
                    f"  pgport: \"5432\"\n")
    payload = os.urandom(1024)
    key = lambda name: f"/data/seg0/backups/20250101/20250101010101/gpbackup_0_20250101010101_{name}"

    def call(name, command):
        """(wall-clock seconds, CPU seconds) of one call."""
        cmd = f"{bins[name]} {command} {configs[name]} {key(name)}"
        data = payload if command == "backup_data" else b""
        start = time.perf_counter()
        p = subprocess.Popen(["bash", "-c", cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
        p.stdin.write(data)
        p.stdin.close()
        out, err = p.stdout.read(), p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)
        elapsed = time.perf_counter() - start
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0 or err:
            sys.exit(f"{name} {command} failed: {err.decode()}")
        if command == "restore_data" and out != payload:
            sys.exit(f"{name} restore_data returned other bytes")
        return elapsed, usage.ru_utime + usage.ru_stime

    for name in bins:
        call(name, "backup_data")  # something to restore; warms the page cache
    samples = {(n, c): [] for n in bins for c in ("backup_data", "restore_data")}
    for i in range(args.calls):
        # A and B take turns, in alternating order.
        order = ("A", "B") if i % 2 == 0 else ("B", "A")
        for command in ("backup_data", "restore_data"):
            for name in order:
                samples[(name, command)].append(call(name, command))
    left = [n for n in os.listdir(shm) if n.startswith("gpbackup_age_plugin_inner_")]

    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    print(f"cpu: {cpu}, {os.cpu_count()} cores; {args.calls} calls per (build, command), "
          f"A and B interleaved; TMPDIR on /dev/shm with {args.unrelated} unrelated files")
    print(f"| {'command':<13} | {'what':<12} | {'A':>9} | {'B':>9} | {'B - A':>9} |")
    print("|" + "|".join("-" * w for w in (15, 14, 11, 11, 11)) + "|")
    for command in ("backup_data", "restore_data"):
        a, b = samples[("A", command)], samples[("B", command)]
        for what, pick, stat in (("wall median", 0, statistics.median), ("wall mean", 0, statistics.mean),
                                 ("CPU median", 1, statistics.median)):
            va = stat([x[pick] for x in a]) * 1e3
            vb = stat([x[pick] for x in b]) * 1e3
            print(f"| {command:<13} | {what:<12} | {va:>6.3f} ms | {vb:>6.3f} ms | {vb - va:>+6.3f} ms |")
    if left:
        print(f"inner configs left in TMPDIR: {left}")


if __name__ == "__main__":
    main()
