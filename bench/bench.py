#!/usr/bin/env python3
"""Benchmark of gpbackup_age_plugin against the shell pipelines it replaces.

Everything runs in one process on one machine, on the same input (made by
../shared/bench/gen_table_csv.py where the project's shared bench tools sit beside the
repository, else by bench/table_rows.awk; or any CSV passed with --input), through the same
local inner plugin (examples/local_plugin.sh), and every figure is reported as a ratio
against a baseline measured in the same run, because the machine is shared and noisy.
Each timing is the best of --repeat rounds, in which ours and its baselines take turns; the
ratio of the medians of those rounds is printed beside the ratio of the bests. The binary
runs installed by copying (target/bench/), and the store is on tmpfs where /dev/shm has
room (see install() and main() for why).

The concurrent rows run N streams at once (N = 1, 4, 8: a segment host runs one plugin
process per primary segment) against N shell pipelines, and give the CPU seconds per GiB
of each side: the user and system time of every process (wait4 rusage of each pipeline,
which covers its members and the inner plugin), summed. --sweep instead measures the
plugin alone at several `workers` settings and stream counts (docs/PERFORMANCE.md).

usage: python3 bench/bench.py [--size-mib 512] [--repeat 3] [--input FILE] [--rss-gib 4]
                              [--stream-mib 128] [--sweep]
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
# The project's table data generator, beside the repository where it is at hand (it is
# not part of a clone); bench/table_rows.awk otherwise.
GEN = os.path.join(REPO, "..", "shared", "bench", "gen_table_csv.py")
TABLE_ROWS = os.path.join(REPO, "bench", "table_rows.awk")
# Where the measured data came from, for the summary lines: set by table_csv().
DATA_SOURCE = "--input"
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


def run_all(cmds, stdin_path=None):
    """Runs shell commands all at once, each with the file at stdin_path (if any) as its
    input. Returns (seconds until the last ended, CPU seconds of every process, largest
    peak RSS in KiB). Both come from wait4's rusage of each `bash -c`, which covers the
    processes it waited for: a pipeline's members, and through ours the inner plugin."""
    start = time.perf_counter()
    procs = []
    for cmd in cmds:
        stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
        err = tempfile.TemporaryFile()
        procs.append((cmd, subprocess.Popen(["bash", "-c", cmd], stdin=stdin, stdout=subprocess.DEVNULL,
                                            stderr=err), stdin, err))
    cpu, rss, failure = 0.0, 0, None
    for cmd, proc, stdin, err in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        cpu += usage.ru_utime + usage.ru_stime
        rss = max(rss, usage.ru_maxrss)
        err.seek(0)
        text = err.read().decode(errors="replace")
        if (status != 0 or text) and not failure:
            failure = f"bench: `{cmd}` failed ({status}): {text.strip()}"
        for f in (stdin, err):
            if f is not subprocess.DEVNULL:
                f.close()
    elapsed = time.perf_counter() - start
    if failure:
        sys.exit(failure)
    return elapsed, cpu, rss


def scratch(prefix, min_free_gib):
    """A work directory removed at exit, on tmpfs (/dev/shm) when it has min_free_gib
    free: on disk, the kernel's writeback of what the local inner plugin stores throttles
    whichever command runs then. $HOME points into it, for the call log."""
    shm = "/dev/shm"
    in_memory = os.path.isdir(shm) and shutil.disk_usage(shm).free > (min_free_gib << 30)
    work = tempfile.mkdtemp(prefix=prefix, dir=shm if in_memory else None)
    atexit.register(shutil.rmtree, work, True)
    home = os.path.join(work, "home")
    os.makedirs(home)
    os.environ["HOME"] = home
    return work


def generate(size_mib, path):
    """Writes size_mib MiB of table data to path: gen_table_csv.py where it is at hand
    (the data the README's tables were measured on), else bench/table_rows.awk (a fresh
    clone), saying which, since the ratios depend on the data."""
    global DATA_SOURCE
    if os.path.isfile(GEN):
        cmd, what = [sys.executable, GEN, str(size_mib)], "gen_table_csv.py"
        DATA_SOURCE = "gen_table_csv.py"
    else:
        DATA_SOURCE = "bench/table_rows.awk"
        cmd = ["awk", "-v", f"size={size_mib}", "-f", TABLE_ROWS]
        what = ("bench/table_rows.awk (gen_table_csv.py, which the README's tables used, is not at "
                f"{os.path.normpath(GEN)}; sizes and ratios differ with the data)")
    print(f"generating {size_mib} MiB of table data with {what} ...", file=sys.stderr)
    with open(path, "wb") as f:
        try:
            ok = subprocess.run(cmd, stdout=f).returncode == 0
        except OSError as e:  # no awk on PATH
            ok = False
            print(f"bench: {cmd[0]}: {e.strerror}", file=sys.stderr)
        if not ok:
            sys.exit(f"bench: generating table data with {cmd[0]} failed; pass --input FILE with a CSV instead")


def table_csv(work, size_mib, given=None):
    """The table data to measure: the file given, or size_mib MiB from generate()."""
    if given:
        return given
    csv = os.path.join(work, "table.csv")
    generate(size_mib, csv)
    return csv


def sh(cmd, stdin_path=None):
    """Runs one shell command; returns (seconds, peak RSS in KiB of the process tree)."""
    elapsed, _, rss = run_all([cmd], stdin_path)
    return elapsed, rss


def install():
    """Installs the built binary by copying it, as a deployment does (gpbackup needs it at
    the same path on every host). How the kernel cached the file matters to a small
    call: a copy whose page cache was filled by writing or reading it whole answers
    about 0.7 ms sooner here than one paged in by exec's faults, as after a reboot
    (docs/PERFORMANCE.md, "Small calls"). The second copy is evicted and paged in by exec, to measure
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
            times[name].append(sh(cmd, stdin_path)[0])
    return times


def concurrent_rounds(cmds, n, repeat, stdin_path=None):
    """Like timed_rounds, with `n` copies of each command running at once; a command is a
    function of the stream's index. Returns {name: [(seconds, CPU seconds), ...]}."""
    results = {name: [] for name in cmds}
    for _ in range(repeat):
        for name, cmd in cmds.items():
            elapsed, cpu, _ = run_all([cmd(i) for i in range(n)], stdin_path)
            results[name].append((elapsed, cpu))
    return results


def median_latencies(cmds, calls):
    """The median wall-clock time of each (command, stdin bytes), the commands taking turns,
    and the median CPU time (user + system) of the same calls, bash, ours and the inner
    plugin together: on a loaded machine the wall clock also counts the wait for a core,
    the CPU time does not."""
    samples = {name: [] for name in cmds}
    cpu = {name: [] for name in cmds}
    for _ in range(calls):
        for name, (cmd, payload) in cmds.items():
            start = time.perf_counter()
            proc = subprocess.Popen(["bash", "-c", cmd], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
            proc.stdin.write(payload)
            proc.stdin.close()
            _, status, usage = os.wait4(proc.pid, 0)
            samples[name].append(time.perf_counter() - start)
            if status != 0:
                sys.exit(f"bench: `{cmd}` failed ({status})")
            cpu[name].append(usage.ru_utime + usage.ru_stime)
    return ({name: statistics.median(v) for name, v in samples.items()},
            {name: statistics.median(v) for name, v in cpu.items()})


def instructions(cmd, payload):
    """Instructions our process executes in one call, counted by callgrind (None without
    valgrind): independent of the load on the machine, unlike any clock."""
    if not shutil.which("valgrind"):
        return None
    out = subprocess.run(["bash", "-c", f"valgrind --tool=callgrind --callgrind-out-file=/dev/null {cmd}"],
                         input=payload, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    for line in out.stderr.decode(errors="replace").splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1])
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--input", help="an existing CSV to use instead of generating one")
    ap.add_argument("--rss-gib", type=int, default=4, help="stream length for the peak RSS check")
    ap.add_argument("--calls", type=int, default=200, help="calls per latency median")
    ap.add_argument("--stream-mib", type=int, default=128, help="input of each concurrent stream")
    ap.add_argument("--sweep", action="store_true",
                    help="only the workers sweep: 1, 2, 4, 8 streams at workers 1, 2, 4, 8")
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
    csv = table_csv(work, args.size_mib, args.input)
    gz = os.path.join(work, "table.csv.gz")
    with open(csv, "rb") as src, open(gz, "wb") as dst:
        subprocess.run(["gzip", "-1", "-c"], stdin=src, stdout=dst, check=True)
    size = os.path.getsize(csv)
    gz_size = os.path.getsize(gz)
    recipient = next(l.strip() for l in open(RECIPIENTS) if l.strip() and not l.startswith("#"))

    store = os.path.join(work, "store")
    inner_cfg = os.path.join(work, "inner.yaml")

    def config(workers=None):
        """A plugin config with the default `workers`, or this many."""
        path = os.path.join(work, f"plugin_{workers or 'default'}.yaml")
        with open(path, "w") as f:
            f.write(f'executablepath: {BIN}\noptions:\n  inner_executablepath: "{INNER}"\n'
                    f'  recipients_file: "{RECIPIENTS}"\n  identity_file: "{IDENTITY}"\n  root: "{store}"\n')
            if workers:
                f.write(f'  workers: "{workers}"\n')
        return path

    cfg = config()
    with open(inner_cfg, "w") as f:
        f.write(f'executablepath: {INNER}\noptions:\n  root: "{store}"\n')
    seg = os.path.join(work, "seg0", "backups", TS[:8], TS)

    def key(name):
        return os.path.join(seg, name)

    def stored_path(name):
        return os.path.join(store, TS[:8], TS, name)

    def stored(name):
        return os.path.getsize(stored_path(name))

    # The same config with a hybrid post-quantum key (ML-KEM-768 + X25519) in place of the
    # X25519 one, made here with our own keygen.
    pq_identity = os.path.join(work, "pq-identity.txt")
    pq_recipient = subprocess.run([BIN, "keygen", "--pq", pq_identity], capture_output=True,
                                  text=True, check=True).stdout.strip()
    cfg_pq = os.path.join(work, "plugin-pq.yaml")
    with open(cfg_pq, "w") as f:
        f.write(f'executablepath: {BIN}\noptions:\n  inner_executablepath: "{INNER}"\n'
                f'  recipients: "{pq_recipient}"\n  identity_file: "{pq_identity}"\n  root: "{store}"\n')

    plugin = f"{BIN} {{cmd}} {cfg} {{key}}"
    plugin_pq = f"{BIN} {{cmd}} {cfg_pq} {{key}}"
    inner = f"{INNER} {{cmd}} {inner_cfg} {{key}}"
    mib = 1 << 20
    rows = []
    cpu = subprocess.run(["bash", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    machine = f"{os.cpu_count()} cores, CPU: {cpu}"

    # The concurrent streams read the first --stream-mib of the input.
    stream = os.path.join(work, "stream.csv")
    # Copied by pieces: a child's peak RSS as wait4 reports it starts from the RSS of the
    # process that forked it, so this one stays small.
    with open(csv, "rb") as src, open(stream, "wb") as dst:
        for _ in range(args.stream_mib):
            dst.write(src.read(mib))
    stream_size = os.path.getsize(stream)
    pipe_backup = f"zstd -3 -T0 -c | age -r {recipient} | " + inner.format(cmd="backup_data", key="{key}")
    pipe_restore = inner.format(cmd="restore_data", key="{key}") + f" | age -d -i {IDENTITY} | zstd -d -c"

    def streams(n, repeat, configs, baseline=True):
        """Backups, then restores, of n streams at once for each config (and the shell
        pipelines): {(op, name): [(seconds, CPU seconds), ...]}."""
        out = {}
        backups = {name: (lambda i, c=c, name=name: f"{BIN} backup_data {c} {key(f'{name}_{n}_{i}')}")
                   for name, c in configs.items()}
        restores = {name: (lambda i, c=c, name=name: f"{BIN} restore_data {c} {key(f'{name}_{n}_{i}')}")
                    for name, c in configs.items()}
        if baseline:
            backups["pipe"] = lambda i: pipe_backup.format(key=key(f"pipe_{n}_{i}"))
            restores["pipe"] = lambda i: pipe_restore.format(key=key(f"pipe_{n}_{i}"))
        for (op, cmds, stdin) in (("backup", backups, stream), ("restore", restores, None)):
            for name, result in concurrent_rounds(cmds, n, repeat, stdin).items():
                out[(op, name)] = result
        return out

    def rate(n, result):
        """Best aggregate MiB/s, median aggregate MiB/s and median CPU s/GiB of rounds."""
        gib = n * stream_size / (1 << 30)
        return (n * stream_size / mib / min(t for t, _ in result),
                n * stream_size / mib / statistics.median(t for t, _ in result),
                statistics.median(c for _, c in result) / gib)

    if args.sweep:
        counts = (1, 2, 4, 8)
        configs = {f"w{w}": config(w) for w in counts}
        print(f"\nworkers sweep; machine: {machine}; {stream_size / mib:.0f} MiB per stream; "
              f"best and median of {args.repeat} rounds; aggregate MiB/s, CPU s/GiB (median)\n")
        print("| streams | operation | " + " | ".join(f"workers {w}" for w in counts) + " | shell pipelines |")
        print("|---|---|" + "---|" * (len(counts) + 1))
        for n in counts:
            res = streams(n, args.repeat, configs)
            for op in ("backup", "restore"):
                cells = []
                for name in [f"w{w}" for w in counts] + ["pipe"]:
                    best, med, cpu_gib = rate(n, res[(op, name)])
                    cells.append(f"{best:.0f} / {med:.0f} MiB/s, {cpu_gib:.2f} s")
                print(f"| {n} | {op} | " + " | ".join(cells) + " |")
        return

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
    row("backup CSV", t["ours"], t["pipe"], "zstd -3 -T0 \\| age", stored("ours"), stored("pipe"), ">= 1.2x, size <= +1%")
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
    row("restore CSV", t["ours"], t["pipe"], "age -d \\| zstd -d", target=">= 1.5x")
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
    lat, cpu_lat = median_latencies({
        "backup ours": (plugin.format(cmd="backup_data", key=key("small")), small),
        "backup exec-cached": (exec_cached.format(cmd="backup_data", key=key("small_e")), small),
        "backup inner": (inner.format(cmd="backup_data", key=key("inner_small")), small),
        "restore ours": (plugin.format(cmd="restore_data", key=key("small")), b""),
        "restore exec-cached": (exec_cached.format(cmd="restore_data", key=key("small_e")), b""),
        "restore inner": (inner.format(cmd="restore_data", key=key("inner_small")), b""),
        "backup pq": (plugin_pq.format(cmd="backup_data", key=key("small_pq")), small),
        "restore pq": (plugin_pq.format(cmd="restore_data", key=key("small_pq")), b""),
    }, args.calls)

    ir = {f"{op} {kind}": instructions((plugin if kind == "ours" else plugin_pq).format(
              cmd=f"{op}_data", key=key("small_ir" if kind == "ours" else "small_ir_pq")),
              small if op == "backup" else b"")
          for op in ("backup", "restore") for kind in ("ours", "pq")}

    def header_len(name):
        with open(stored_path(name), "rb") as f:
            data = f.read(1 << 16)
        return data.index(b"\n", data.index(b"\n--- ") + 1) + 1
    # 6. N streams at once against N shell pipelines.
    concurrent = {n: streams(n, args.repeat, {"ours": cfg}) for n in (1, 4, 8)}
    # 7. Peak RSS (wait4) of our process over a long stream (the input repeated), at the
    # default workers and at 64.
    repeats = max(1, (args.rss_gib << 30) // size)
    cat = " ".join([csv] * repeats)
    rss = {}
    for label, c in (("default", cfg), ('"64"', config(64))):
        rss[("backup", label)] = sh(f"cat {cat} | {BIN} backup_data {c} {key('long')}")[1]
        rss[("restore", label)] = sh(f"{BIN} restore_data {c} {key('long')}")[1]

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nmachine: {machine}; load average {load}; input {size / mib:.0f} MiB CSV "
          f"({DATA_SOURCE}; gzip -1: {gz_size / mib:.0f} MiB); best and median of {args.repeat} rounds; binary: {linkage}; "
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
              f"{'inner plugin alone':<18} | {(ours - base) * 1000:+.2f} ms | {'':>6} | {'':>10} | {'':>10} | "
              f"{target} (median of {args.calls})")
    for what, op, target in (
            ("backup 1 KiB, post-quantum", "backup", "<= +0.5 ms over X25519"),
            ("restore 1 KiB, post-quantum", "restore", "<= +1 ms over X25519")):
        ours, base = lat[f"{op} pq"], lat[f"{op} ours"]
        print(f"| {what:<26} | {ours * 1000:>9.2f} ms | {base * 1000:>9.2f} ms | "
              f"{'same, X25519 key':<18} | {(ours - base) * 1000:+.2f} ms | {'':>6} | {'':>10} | {'':>10} | "
              f"{target} (median of {args.calls})")
        ours, base = cpu_lat[f"{op} pq"], cpu_lat[f"{op} ours"]
        print(f"| {what + ', CPU':<26} | {ours * 1000:>9.2f} ms | {base * 1000:>9.2f} ms | "
              f"{'same, X25519 key':<18} | {(ours - base) * 1000:+.2f} ms | {'':>6} | {'':>10} | {'':>10} | "
              f"(user + system, median of {args.calls})")
        ours, base = ir[f"{op} pq"], ir[f"{op} ours"]
        if ours and base:
            print(f"| {what + ', instr.':<26} | {ours / 1e6:>10.2f} M | {base / 1e6:>10.2f} M | "
                  f"{'same, X25519 key':<18} | {(ours - base) / 1e6:+.2f} M | {ours / base:>5.2f}x | {'':>10} | {'':>10} | "
                  f"(callgrind, our process)")
    print(f"| {'age header, one recipient':<26} | {header_len('small_pq'):>6} bytes | {header_len('small'):>6} bytes | "
          f"{'X25519 recipient':<18} | {'':>6} | {'':>6} | {'':>10} | {'':>10} | (post-quantum vs X25519)")
    for (op, label), kib in rss.items():
        print(f"| {'peak RSS, workers ' + label:<26} | {kib / 1024:>8.1f} MiB | {'':>12} | "
              f"{op + ', ' + str(repeats * size // mib) + ' MiB':<18} | {'':>6} | "
              f"{'':>6} | {'':>10} | {'':>10} | <= 64 MiB (wait4)")

    print(f"\nconcurrent streams; machine: {machine}; {stream_size / mib:.0f} MiB per stream; "
          f"aggregate throughput, best and median of {args.repeat} rounds; CPU: every process, median\n")
    print(f"| {'streams':>7} | {'operation':<9} | {'ours':>11} | {'pipelines':>11} | {'pipelines are':<18} | "
          f"{'ratio':>6} | {'median':>6} | {'CPU s/GiB ours':>14} | {'CPU s/GiB pipes':>15} |")
    print("|" + "|".join(["-" * 9, "-" * 11, "-" * 13, "-" * 13, "-" * 20, "-" * 8, "-" * 8, "-" * 16, "-" * 17]) + "|")
    for n, res in concurrent.items():
        for op, base_name in (("backup", "zstd -3 -T0 \\| age"), ("restore", "age -d \\| zstd -d")):
            ours_best, ours_med, ours_cpu = rate(n, res[(op, "ours")])
            base_best, base_med, base_cpu = rate(n, res[(op, "pipe")])
            print(f"| {n:>7} | {op:<9} | {ours_best:>6.0f} MiB/s | {base_best:>6.0f} MiB/s | {base_name:<18} | "
                  f"{ours_best / base_best:>5.2f}x | {ours_med / base_med:>5.2f}x | {ours_cpu:>14.2f} | {base_cpu:>15.2f} |")


if __name__ == "__main__":
    main()
