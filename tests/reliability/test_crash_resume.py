"""Crash and resume: kill -9 the whole extraction at the worst moments, run again, lose and duplicate nothing.

Three first runs into fresh folders are killed (SIGKILL to the process group: CLI, forkserver and step
processes at once) at points read off the simulator's request log and the output folder: during the account
scan, while the symbol partitions are being written, and while sorted_orders writes orders.parquet and
orders.json. The same command is then run again. A watcher thread reads the published files over and over
during both runs: every read must parse completely (atomic writes). The three scenarios run side by side,
each against its own simulator (same account, latency 50-120 ms so the scan lasts a few seconds).
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from bitget_assets.simulator import AccountSpec
from tests.reliability.batches import batch
from tests.reliability.helpers import (
    NOW_MS,
    CliResult,
    OutputWatcher,
    assert_equals_truth,
    assert_partitions_hold_truth,
    audit,
    order_log,
    partition_files,
    read_output,
    run_extract,
    start_extract,
    start_simulator,
    temp_leftovers,
    wait_until,
)

# Many symbols, so the partition phase lasts long enough to be interrupted in the middle.
CRASH = AccountSpec(name="crashy", seed=5, orders=2400, symbols=30, now_ms=NOW_MS)

KILL_POINTS = {
    "during_scan": lambda sim, out, start: len(order_log(sim, CRASH.name, start)) >= 10,
    "mid_partitions": lambda sim, out, start: len(partition_files(out)) >= 1,
    "during_final_write": lambda sim, out, start: (out / "orders.parquet").exists()
    or any(out.glob(".orders.*.tmp")),
}


@dataclass
class Crash:
    truth: list[dict]
    killed: CliResult
    survivors: list[int]
    at_kill: dict
    first: dict  # audit of the killed run's order requests
    resume: CliResult
    resumed: dict  # audit of the second run's order requests
    watcher: OutputWatcher
    out: object
    leftovers_after_resume: list[str]


def crash_then_resume(point: str, work) -> Crash:
    sim = start_simulator(CRASH, latency=(0.05, 0.12))
    out, tmp = work / "out", work / "tmp"
    tmp.mkdir(parents=True)
    watcher = OutputWatcher(out)
    watcher.start()
    try:
        run = start_extract(sim, work, out, TMPDIR=str(tmp))
        reached = wait_until(lambda: KILL_POINTS[point](sim, out, 0), run)
        survivors = run.kill9() if reached else []
        if not reached:
            run.wait()  # never let the resume overlap the first run
        mid = len(sim.request_log())
        at_kill = {
            "reached": reached,
            "exit": run.proc.returncode,
            "order_requests": len(order_log(sim, CRASH.name, 0, mid)),
            "manifest": (out / "scan" / "manifest.json").exists(),
            "partitions": len(partition_files(out)),
            "orders.parquet": (out / "orders.parquet").exists(),
            "orders.json": (out / "orders.json").exists(),
            "temp_files": temp_leftovers(out) if out.exists() else [],
        }
        resume = run_extract(sim, work, out, TMPDIR=str(tmp))
        return Crash(sim.truth(CRASH.name), run.wait(), survivors, at_kill, audit(order_log(sim, CRASH.name, 0, mid)),
                     resume, audit(order_log(sim, CRASH.name, mid)), watcher.finish(), out, temp_leftovers(out))
    finally:
        watcher.finish()
        sim.stop()


@batch()
def crashes(tmp_path_factory) -> dict[str, Crash]:
    with ThreadPoolExecutor(len(KILL_POINTS)) as pool:
        futures = {p: pool.submit(crash_then_resume, p, tmp_path_factory.mktemp(p)) for p in KILL_POINTS}
        return {p: f.result() for p, f in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_resume_after_kill_9_equals_the_truth(crashes, point):
    c = crashes[point]
    print(f"\n[crash] {point}: at kill {c.at_kill}; killed run {c.first}; resume {c.resumed}; "
          f"watcher: {c.watcher.polls} opens, complete parses {dict(c.watcher.reads)}; "
          f"temp files left after resume {c.leftovers_after_resume}")
    assert c.at_kill["reached"] and c.at_kill["exit"] == -9, f"the run was not killed at {point}: {c.at_kill}"
    assert not c.survivors, f"processes of the killed group still alive: {c.survivors}"
    if point == "during_scan":
        assert not c.at_kill["manifest"], c.at_kill  # the kill landed before the scan committed
    elif point == "mid_partitions":
        assert c.at_kill["manifest"] and not c.at_kill["orders.json"], c.at_kill
    # during_final_write: killed once sorted_orders began writing; whether orders.json was written by then
    # depends on a few milliseconds and is reported in the line above.

    assert c.resume.rc == 0, c.resume.stderr[-4000:]
    output = read_output(c.out)
    assert_equals_truth(output.orders, c.truth, f"after a kill {point} and a resume")
    assert output.doc["count"] == len(c.truth)
    assert_partitions_hold_truth(c.out, c.truth)
    assert c.resumed["with_symbol"] == 0, "the resume read symbols one by one"


@pytest.mark.slow
def test_no_reader_ever_saw_a_partial_object(crashes):
    reads = {p: dict(c.watcher.reads) for p, c in crashes.items()}
    bad = {p: c.watcher.bad[:3] for p, c in crashes.items() if c.watcher.bad}
    assert not bad, f"a reader saw a partial or unparsable object: {bad}"
    assert all(r.get("orders.json") and r.get("orders.parquet") for r in reads.values()), reads


@pytest.mark.slow
@pytest.mark.parametrize("point", ["mid_partitions", "during_final_write"])
def test_resume_does_not_fetch_again_what_the_killed_run_completed(crashes, point):
    """The killed run's account scan finished and is fresh (minutes old, max_scan_age_s is 15 min), and some
    or all partitions already took it in: a resume should finish the job from there, not re-read the 90 days."""
    c = crashes[point]
    assert c.at_kill["manifest"], c.at_kill
    assert c.resumed["requests"] < c.first["requests"] / 2, (
        f"the resume re-read the account from scratch: {c.resumed['requests']} order requests after the kill "
        f"vs {c.first['requests']} in the killed run (partitions done at the kill: {c.at_kill['partitions']})")


@pytest.mark.slow
def test_a_resume_leaves_no_temporary_file_of_the_killed_run_behind(crashes):
    """A kill inside an atomic write leaves its `.<name>.<random>.tmp` (a full-size copy); nothing removes
    it later and `Storage.list` hides it, so every crash leaks one copy per interrupted write, forever."""
    interrupted = {p: c.at_kill["temp_files"] for p, c in crashes.items() if c.at_kill["temp_files"]}
    if not interrupted:
        pytest.skip("no kill landed inside a write this time: nothing to check")
    left = {p: crashes[p].leftovers_after_resume for p in interrupted if crashes[p].leftovers_after_resume}
    assert not left, f"temporary files of killed writes still there after the resume: {left}"
