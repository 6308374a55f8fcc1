#!/usr/bin/env python3
"""Benchmark of gpbackup_age_plugin against the shell pipelines it replaces.

Everything runs in one process on one machine, on the same input (made by
../shared/bench/gen_table_csv.py, or any CSV passed with --input), through the same
local inner plugin (examples/local_plugin.sh), and every figure is reported as a ratio
against a baseline measured in the same run, because the machine is shared and noisy.
Each timing is the best of --repeat rounds, in which ours and its baselines take turns; the
ratio of the medians of those rounds is printed beside the ratio of the bests. The binary
runs installed by copying (target/bench/), and the store is on tmpfs where /dev/shm has
room (see install() and main() for why).

usage: python3 bench/bench.py [--size-mib 512] [--repeat 3] [--input FILE] [--rss-gib 4]
"""
import argparse
import atexit
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.path.join(REPO, "..", "shared", "bench", "gen_table_csv.py")
# The deployment build (README, "Install"; `cargo build-dist`).
BUILT = os.path.join(REPO, "target", "dist", "gpbackup_age_plugin")
# Where the bench installs it, on the build's own (disk) filesystem, not on tmpfs.
INSTALL_DIR = os.path.join(REPO, "target", "bench")
BIN = os.path.join(INSTALL_DIR, "gpbackup_age_plugin")
# The same binary with its page cache filled by exec's page faults instead of by the copy.
BIN_EXEC_CACHED = os.path.join(INSTALL_DIR, "gpbackup_age_plugin_exec_cached")
INNER = os.path.join(REPO, "examples", "local_plugin.sh")
IDENTITY = os.path.join(REPO, "keys", "demo-only-identity.txt")
RECIPIENTS = os.path.join(REPO, "keys", "demo-only-recipients.txt")
TS = "20250101010101"


def sh(cmd, stdin=None, stdout=subprocess.DEVNULL):
    """Runs a shell command; returns (seconds, peak RSS in KiB of the process tree)."""
    start = time.perf_counter()
    proc = subprocess.Popen(["bash", "-c", cmd], stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if status != 0 or err:
        sys.exit(f"bench: `{cmd}` failed ({status}): {err.strip()}")
    return elapsed, usage.ru_maxrss


def install():
    """Installs the built binary by copying it, as a deployment does (gpbackup needs it at
    the same path on every host). How the kernel cached the file matters to a small
    call: a copy whose page cache was filled by writing or reading it whole answers
    about 0.7 ms sooner here than one paged in by exec's faults, as after a reboot
    (README, "Small calls"). The second copy is evicted and paged in by exec, to measure
    that case beside the first."""
    os.makedirs(INSTALL_DIR, exist_ok=True)
    for dst in (BIN, BIN_EXEC_CACHED):
        # A new file each time, not one whose page cache an earlier run left behind.
        if os.path.exists(dst):
            os.remove(dst)
        shutil.copy2(BUILT, dst)
    fd = os.open(BIN_EXEC_CACHED, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    subprocess.run([BIN_EXEC_CACHED, "--version"], stdout=subprocess.DEVNULL, check=True)


def timed_rounds(cmds, repeat, stdin_path=None, replaces=None):
    """The times of each command over `repeat` rounds. The commands take turns within
    every round, so a burst of load on the shared machine hits ours and the baselines
    alike instead of whichever happened to run then. `replaces` maps a command to the
    stored object it writes, removed (untimed) before each run: replacing it would add
    the freeing of the previous round's copy to the time."""
    times = {name: [] for name in cmds}
    for _ in range(repeat):
        for name, cmd in cmds.items():
            if replaces and os.path.exists(replaces[name]):
                os.remove(replaces[name])
            if stdin_path:
                with open(stdin_path, "rb") as f:
                    times[name].append(sh(cmd, stdin=f)[0])
            else:
                times[name].append(sh(cmd)[0])
    return times


def median_latencies(cmds, calls):
    """The median time of each (command, stdin bytes), the commands taking turns."""
    samples = {name: [] for name in cmds}
    for _ in range(calls):
        for name, (cmd, payload) in cmds.items():
            start = time.perf_counter()
            subprocess.run(["bash", "-c", cmd], input=payload, stdout=subprocess.DEVNULL, check=True)
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(v) for name, v in samples.items()}


def peak_rss_from_log(home):
    """The plugin records its own peak RSS (VmHWM) in its call log; take the last
    (calls that moved less than 1 MiB record `-`)."""
    logdir = os.path.join(home, "gpAdminLogs")
    peak = 0
    for name in os.listdir(logdir):
        with open(os.path.join(logdir, name)) as f:
            for line in f:
                for word in line.split():
                    if word.startswith("peak_rss_kib=") and word != "peak_rss_kib=-":
                        peak = int(word.split("=")[1])
    return peak


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--input", help="an existing CSV to use instead of generating one")
    ap.add_argument("--rss-gib", type=int, default=4, help="stream length for the peak RSS check")
    ap.add_argument("--calls", type=int, default=200, help="calls per latency median")
    args = ap.parse_args()

    for tool in ("age", "zstd", "gzip"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is not installed (apt-get install -y age zstd gzip)")
    # The deployment build (README, "Install"): static-pie, or dynamic where the static C
    # library is missing (the same profile, linked dynamically at the same path).
    linkage = "static-pie (cargo build-dist)"
    if subprocess.run(["cargo", "--quiet", "build-dist"], cwd=REPO,
                      stderr=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["cargo", "build", "--profile", "dist", "--quiet"], cwd=REPO, check=True)
        linkage = "dynamic (cargo build --profile dist; static C library missing)"
    install()

    # Work and storage in memory where there is room: the local inner plugin writes
    # every object to a file, and on disk the kernel's writeback of gigabytes of output
    # throttles whichever command happens to run then (a real inner plugin sends to
    # object storage instead). The same store serves ours and the baselines.
    shm = "/dev/shm"
    in_memory = os.path.isdir(shm) and shutil.disk_usage(shm).free > (8 << 30)
    work = tempfile.mkdtemp(prefix="gpage_bench_", dir=shm if in_memory else None)
    # Removed however the bench ends (a failed command exits early), as it holds memory.
    atexit.register(shutil.rmtree, work, True)
    home = os.path.join(work, "home")
    os.makedirs(home)
    os.environ["HOME"] = home
    csv = args.input or os.path.join(work, "table.csv")
    if not args.input:
        print(f"generating {args.size_mib} MiB of table data ...", file=sys.stderr)
        with open(csv, "wb") as f:
            subprocess.run([sys.executable, GEN, str(args.size_mib)], stdout=f, check=True)
    gz = os.path.join(work, "table.csv.gz")
    with open(csv, "rb") as src, open(gz, "wb") as dst:
        subprocess.run(["gzip", "-1", "-c"], stdin=src, stdout=dst, check=True)
    size = os.path.getsize(csv)
    gz_size = os.path.getsize(gz)
    recipient = next(l.strip() for l in open(RECIPIENTS) if l.strip() and not l.startswith("#"))

    store = os.path.join(work, "store")
    cfg = os.path.join(work, "plugin.yaml")
    inner_cfg = os.path.join(work, "inner.yaml")
    with open(cfg, "w") as f:
        f.write(f'executablepath: {BIN}\noptions:\n  inner_executablepath: "{INNER}"\n'
                f'  recipients_file: "{RECIPIENTS}"\n  identity_file: "{IDENTITY}"\n  root: "{store}"\n')
    with open(inner_cfg, "w") as f:
        f.write(f'executablepath: {INNER}\noptions:\n  root: "{store}"\n')
    seg = os.path.join(work, "seg0", "backups", TS[:8], TS)

    def key(name):
        return os.path.join(seg, name)

    def stored_path(name):
        return os.path.join(store, TS[:8], TS, name)

    def stored(name):
        return os.path.getsize(stored_path(name))

    plugin = f"{BIN} {{cmd}} {cfg} {{key}}"
    inner = f"{INNER} {{cmd}} {inner_cfg} {{key}}"
    mib = 1 << 20
    rows = []

    def row(what, ours, base, base_name, out_ours=None, out_base=None, target=None):
        """A row from two commands' round times: the best of each (the table's figures and
        ratio) and, beside it, the ratio of their medians, which a burst of load on the
        shared machine moves less than a single lucky round."""
        ratio = min(base) / min(ours)
        median_ratio = statistics.median(base) / statistics.median(ours)
        rows.append((what, min(ours), min(base), base_name, ratio, median_ratio, out_ours, out_base, target))

    # 1. Backup of plain CSV.
    t = timed_rounds({
        "ours": plugin.format(cmd="backup_data", key=key("ours")),
        "pipe": f"zstd -3 -T0 -c | age -r {recipient} | " + inner.format(cmd="backup_data", key=key("pipe")),
        "gzip": "gzip -1 -c | " + inner.format(cmd="backup_data", key=key("gzip")),
    }, args.repeat, csv, {name: stored_path(name) for name in ("ours", "pipe", "gzip")})
    row("backup CSV", t["ours"], t["pipe"], "zstd -3 -T0 | age", stored("ours"), stored("pipe"), ">= 1.2x, size <= +1%")
    row("backup CSV", t["ours"], t["gzip"], "gzip -1", stored("ours"), stored("gzip"), ">= 4x")
    # 2. Backup of gzip-compressed input (gpbackup's default): encryption is the cost.
    t = timed_rounds({
        "ours": plugin.format(cmd="backup_data", key=key("ours.gz")),
        "age": f"age -r {recipient} | " + inner.format(cmd="backup_data", key=key("age.gz")),
    }, args.repeat, gz, {"ours": stored_path("ours.gz"), "age": stored_path("age.gz")})
    row("backup .gz input", t["ours"], t["age"], "age -r", stored("ours.gz"), stored("age.gz"), ">= 1.0x")
    # 3. Restore.
    t = timed_rounds({
        "ours": plugin.format(cmd="restore_data", key=key("ours")),
        "pipe": inner.format(cmd="restore_data", key=key("pipe")) + f" | age -d -i {IDENTITY} | zstd -d -c",
    }, args.repeat)
    row("restore CSV", t["ours"], t["pipe"], "age -d | zstd -d", target=">= 1.5x")
    # 4. Subset restore of a small range near the end vs a full restore of the object.
    offsets = os.path.join(work, "offsets")
    with open(offsets, "w") as f:
        f.write(f"1 {size - 5000} {size - 4000}\n")
    t = timed_rounds({
        "subset": f"{BIN} restore_data_subset {cfg} {key('ours')} {offsets}",
        "full": plugin.format(cmd="restore_data", key=key("ours")),
    }, args.repeat)
    row("subset 1 KB near end", t["subset"], t["full"], "full restore", target=">= 3x")
    with open(csv, "rb") as f:
        f.seek(size - 5000)
        want = f.read(1000)
    got = subprocess.run(["bash", "-c", f"{BIN} restore_data_subset {cfg} {key('ours')} {offsets}"],
                         capture_output=True, check=True).stdout
    if got != want:
        sys.exit("bench: restore_data_subset returned the wrong bytes")
    # 5. Per-call latency of a 1 KiB object.
    small = os.urandom(1024)
    subprocess.run(["bash", "-c", inner.format(cmd="backup_data", key=key("inner_small"))], input=small, check=True)
    exec_cached = f"{BIN_EXEC_CACHED} {{cmd}} {cfg} {{key}}"
    lat = median_latencies({
        "backup ours": (plugin.format(cmd="backup_data", key=key("small")), small),
        "backup exec-cached": (exec_cached.format(cmd="backup_data", key=key("small_e")), small),
        "backup inner": (inner.format(cmd="backup_data", key=key("inner_small")), small),
        "restore ours": (plugin.format(cmd="restore_data", key=key("small")), b""),
        "restore exec-cached": (exec_cached.format(cmd="restore_data", key=key("small_e")), b""),
        "restore inner": (inner.format(cmd="restore_data", key=key("inner_small")), b""),
    }, args.calls)
    # 6. Peak RSS of our process over a long stream (the input repeated).
    repeats = max(1, (args.rss_gib << 30) // size)
    cat = " ".join([csv] * repeats)
    sh(f"cat {cat} | " + plugin.format(cmd="backup_data", key=key("long")))
    rss_backup = peak_rss_from_log(home)
    sh(plugin.format(cmd="restore_data", key=key("long")))
    rss_restore = peak_rss_from_log(home)

    cpu = subprocess.run(["bash", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    print(f"\nmachine: {os.cpu_count()} cores, {cpu}; input {size / mib:.0f} MiB CSV "
          f"(gzip -1: {gz_size / mib:.0f} MiB); best and median of {args.repeat} rounds; binary: {linkage}; "
          f"storage: {'tmpfs (' + shm + ')' if in_memory else 'disk (' + work + ')'}\n")
    print(f"| {'operation':<26} | {'ours':>12} | {'baseline':>12} | {'baseline is':<18} | {'ratio':>6} | "
          f"{'median':>6} | {'size ours':>10} | {'size base':>10} | target")
    print("|" + "|".join(["-" * 28, "-" * 14, "-" * 14, "-" * 20, "-" * 8, "-" * 8, "-" * 12, "-" * 12, "-" * 22]) + "|")
    for what, ours, base, name, ratio, median_ratio, so, sb, target in rows:
        src = gz_size if ".gz" in what else size
        if what.startswith("subset"):
            o, b = f"{ours:.3f} s", f"{base:.3f} s"
        else:
            o, b = f"{src / mib / ours:.0f} MiB/s", f"{src / mib / base:.0f} MiB/s"
        so = f"{so / mib:.1f} MiB" if so else ""
        sb = f"{sb / mib:.1f} MiB" if sb else ""
        print(f"| {what:<26} | {o:>12} | {b:>12} | {name:<18} | {ratio:>5.2f}x | {median_ratio:>5.2f}x | "
              f"{so:>10} | {sb:>10} | {target}")
    for what, op, binary, target in (
            ("backup 1 KiB latency", "backup", "ours", "<= +2 ms"),
            ("restore 1 KiB latency", "restore", "ours", "<= +2 ms"),
            ("backup 1 KiB, exec-cached", "backup", "exec-cached", "(binary paged in by exec)"),
            ("restore 1 KiB, exec-cached", "restore", "exec-cached", "(binary paged in by exec)")):
        ours, base = lat[f"{op} {binary}"], lat[f"{op} inner"]
        print(f"| {what:<26} | {ours * 1000:>9.2f} ms | {base * 1000:>9.2f} ms | "
              f"{'inner plugin alone':<18} | +{(ours - base) * 1000:.2f} ms | {'':>6} | {'':>10} | {'':>10} | "
              f"{target} (median of {args.calls})")
    print(f"| {'peak RSS':<26} | {rss_backup / 1024:>8.1f} MiB | {'':>12} | {'backup, ' + str(repeats * size // mib) + ' MiB':<18} | {'':>6} | "
          f"{'':>6} | {'':>10} | {'':>10} | <= 64 MiB")
    print(f"| {'peak RSS':<26} | {rss_restore / 1024:>8.1f} MiB | {'':>12} | {'restore, same':<18} | {'':>6} | "
          f"{'':>6} | {'':>10} | {'':>10} | <= 64 MiB")


if __name__ == "__main__":
    main()
