"""Peak RSS and CPU time of a whole process tree, sampled every ~0.1 s.

Dagster starts step processes through a forkserver, so the extraction is a tree of processes that come
and go. The monitor sums RSS over the root and every descendant alive at each sample (shared pages of
forked processes are counted once per process, as `ps` would), and keeps the last CPU time seen of every
process (keyed by pid and start time, so a reused pid is not confused with an earlier process).

Also sampled: the sum of PSS (shared pages divided between the processes sharing them, a fairer
figure for a forked tree than the RSS sum) and the machine's 1-minute load average (noise indicator).

Uses psutil when installed (the `bench` extra), else reads /proc directly (Linux), so the quick
benchmark also runs with only the test dependencies.
"""

import os
import threading
import time
from dataclasses import dataclass, field

try:
    import psutil
except ImportError:  # pragma: no cover - depends on the installed extras
    psutil = None

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass
class Sample:
    t: float
    rss_bytes: int
    pss_bytes: int
    processes: int
    load_1m: float


@dataclass
class TreeUsage:
    samples: list[Sample] = field(default_factory=list)
    cpu_by_process: dict[tuple[int, float], float] = field(default_factory=dict)
    peak_rss_by_pid: dict[int, int] = field(default_factory=dict)  # bytes; a step's own process, say

    def peak_rss_mb_of(self, pid: int | None) -> float | None:
        peak = self.peak_rss_by_pid.get(pid) if pid is not None else None
        return round(peak / 2**20, 1) if peak else None

    @property
    def peak_rss_mb(self) -> float:
        return round(max((s.rss_bytes for s in self.samples), default=0) / 2**20, 1)

    def peak_rss_mb_between(self, start: float, end: float) -> float | None:
        inside = [s.rss_bytes for s in self.samples if start <= s.t <= end]
        return round(max(inside) / 2**20, 1) if inside else None

    @property
    def peak_pss_mb(self) -> float:
        return round(max((s.pss_bytes for s in self.samples), default=0) / 2**20, 1)

    @property
    def mean_load(self) -> float | None:
        loads = [s.load_1m for s in self.samples]
        return round(sum(loads) / len(loads), 2) if loads else None

    def timeline(self, t0: float, step_s: float = 1.0) -> list[list[float]]:
        """[[seconds since t0, max RSS MB, max PSS MB, max processes], ...] per `step_s` bucket."""
        buckets: dict[int, list[float]] = {}
        for s in self.samples:
            k = int((s.t - t0) // step_s)
            rss, pss = s.rss_bytes / 2**20, s.pss_bytes / 2**20
            b = buckets.setdefault(k, [round(k * step_s, 1), 0.0, 0.0, 0])
            b[1], b[2], b[3] = max(b[1], round(rss)), max(b[2], round(pss)), max(b[3], s.processes)
        return [buckets[k] for k in sorted(buckets)]

    @property
    def max_processes(self) -> int:
        return max((s.processes for s in self.samples), default=0)

    @property
    def cpu_s(self) -> float:
        return round(sum(self.cpu_by_process.values()), 2)


def _proc_stat(pid: int) -> tuple[int, float, float, int] | None:
    """(ppid, start ticks, own cpu seconds, rss bytes) from /proc/<pid>/stat."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    parts = raw[raw.rindex(b")") + 2 :].split()  # after "pid (comm) ": state is parts[0]
    ppid, utime, stime, start, rss = int(parts[1]), int(parts[11]), int(parts[12]), int(parts[19]), int(parts[21])
    return ppid, float(start), (utime + stime) / _TICK, rss * _PAGE


def _pss(pid: int) -> int:
    """Proportional set size: shared pages split between the processes sharing them (0 if unreadable)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _tree_procfs(root: int) -> list[tuple[int, float, float, int]]:
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := _proc_stat(int(name))) is not None:
            stats[int(name)] = st
    children: dict[int, list[int]] = {}
    for pid, st in stats.items():
        children.setdefault(st[0], []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            ppid, start, cpu, rss = stats[pid]
            out.append((pid, start, cpu, rss))
            todo += children.get(pid, [])
    return out


def _tree_psutil(root: int) -> list[tuple[int, float, float, int]]:
    try:
        top = psutil.Process(root)
        procs = [top, *top.children(recursive=True)]
    except psutil.Error:
        return []
    out = []
    for p in procs:
        try:
            with p.oneshot():
                cpu = p.cpu_times()
                out.append((p.pid, p.create_time(), cpu.user + cpu.system, p.memory_info().rss))
        except psutil.Error:
            continue
    return out


class TreeMonitor:
    """`with TreeMonitor(pid) as usage:` samples the tree of `pid` until the block ends."""

    def __init__(self, pid: int, interval_s: float = 0.1):
        self.pid, self.interval_s = pid, interval_s
        self.usage = TreeUsage()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-monitor", daemon=True)
        self._tree = _tree_psutil if psutil is not None else _tree_procfs

    def _sample(self) -> None:
        now = time.time()
        procs = self._tree(self.pid)
        if not procs:
            return
        for pid, start, cpu, rss in procs:
            self.usage.cpu_by_process[(pid, start)] = cpu
            self.usage.peak_rss_by_pid[pid] = max(rss, self.usage.peak_rss_by_pid.get(pid, 0))
        pss = sum(_pss(p[0]) for p in procs)
        self.usage.samples.append(Sample(now, sum(p[3] for p in procs), pss, len(procs), os.getloadavg()[0]))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)

    def __enter__(self) -> TreeUsage:
        self._thread.start()
        return self.usage

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
