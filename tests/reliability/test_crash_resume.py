"""Crash and resume: kill -9 the whole extraction at the worst moments, run again, lose and duplicate nothing.

Three runs are killed (SIGKILL to the process group: CLI, forkserver and step processes at once) at points
read off the simulator's request log and the output folder: during the account scan and while the symbol
partitions are being written (both first runs into fresh folders), and inside sorted_orders' final write. For
the last, a complete extraction has published an orders.json/orders.parquet pair first and the exchange has
changed since (new orders, open orders finished); the next run is held by test instrumentation
(hold_final_write/sitecustomize.py) with orders.parquet staged and orders.json half written in its
`.staging-*` folder, and killed there: the kill provably lands inside the write, and the previous pair must
be left exactly as it was. The same command is then run again. A watcher thread reads the published files
over and over during all runs: every read must parse completely (atomic writes). The three scenarios run side
by side, each against its own simulator (same account, latency 50-120 ms so the scan lasts a few seconds).
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from bitget_assets.simulator import AccountSpec
from tests.reliability.batches import batch
from tests.reliability.helpers import (
    NOW_MS,
    CliResult,
    Output,
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
HOLD_HOOK = Path(__file__).parent / "hold_final_write"
HELD = "held"  # marker file (in the scenario's work folder) the held final write creates

KILL_POINTS = {
    "during_scan": lambda sim, out, start: len(order_log(sim, CRASH.name, start)) >= 10,
    "mid_partitions": lambda sim, out, start: len(partition_files(out)) >= 1,
    "during_final_write": lambda sim, out, start: (out.parent / HELD).exists(),
}


@dataclass
class Crash:
    truth: list[dict]
    previous: Output | None  # the pair published before the killed run (during_final_write only)
    killed: CliResult
    survivors: list[int]
    at_kill: dict
    left_at_kill: Output | None  # the published pair right after the kill
    first: dict  # audit of the killed run's order requests
    resume: CliResult
    resumed: dict  # audit of the second run's order requests
    watcher: OutputWatcher
    out: Path
    leftovers_after_resume: list[str]


def json_and_parquet_ids(output: Output) -> tuple[list[str], list[str]]:
    return [o["orderId"] for o in output.orders], pl.read_parquet(output.parquet)["orderId"].to_list()


def crash_then_resume(point: str, work: Path) -> Crash:
    sim = start_simulator(CRASH, latency=(0.05, 0.12))
    out, tmp = work / "out", work / "tmp"
    tmp.mkdir(parents=True)
    watcher = OutputWatcher(out)
    watcher.start()
    try:
        previous, hold = None, {}
        if point == "during_final_write":
            done = run_extract(sim, work, out, TMPDIR=str(tmp))
            assert done.rc == 0, done.stderr[-4000:]
            previous = read_output(out)
            sim.close_open_orders(CRASH.name)  # existing orders change state...
            sim.add_orders(CRASH.name, generate=60, open=5)  # ...and new ones arrive: the next pair differs
            hold = {"PYTHONPATH": str(HOLD_HOOK), "BITGET_TEST_HOLD_FINAL_WRITE": str(work / HELD)}
        start = len(sim.request_log())
        run = start_extract(sim, work, out, TMPDIR=str(tmp), **hold)
        reached = wait_until(lambda: KILL_POINTS[point](sim, out, start), run)
        survivors = run.kill9() if reached else []
        if not reached:
            run.wait()  # never let the resume overlap the first run
        mid = len(sim.request_log())
        at_kill = {
            "reached": reached,
            "exit": run.proc.returncode,
            "order_requests": len(order_log(sim, CRASH.name, start, mid)),
            "manifest": (out / "scan" / "manifest.json").exists(),
            "partitions": len(partition_files(out)),
            "orders.parquet": (out / "orders.parquet").exists(),
            "orders.json": (out / "orders.json").exists(),
            "temp_files": temp_leftovers(out) if out.exists() else [],
        }
        left = read_output(out) if at_kill["orders.json"] and at_kill["orders.parquet"] else None
        resume = run_extract(sim, work, out, TMPDIR=str(tmp))
        return Crash(sim.truth(CRASH.name), previous, run.wait(), survivors, at_kill, left,
                     audit(order_log(sim, CRASH.name, start, mid)), resume, audit(order_log(sim, CRASH.name, mid)),
                     watcher.finish(), out, temp_leftovers(out))
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

    assert c.resume.rc == 0, c.resume.stderr[-4000:]
    output = read_output(c.out)
    assert_equals_truth(output.orders, c.truth, f"after a kill {point} and a resume")
    assert output.doc["count"] == len(c.truth)
    json_ids, parquet_ids = json_and_parquet_ids(output)
    assert json_ids == parquet_ids, "orders.json and orders.parquet disagree after the resume"
    assert pl.read_parquet(output.parquet).to_dicts() == output.orders
    assert_partitions_hold_truth(c.out, c.truth)
    assert c.resumed["with_symbol"] == 0, "the resume read symbols one by one"


@pytest.mark.slow
def test_a_kill_inside_the_final_write_leaves_the_previous_pair_intact(crashes):
    c = crashes["during_final_write"]
    assert c.at_kill["reached"] and c.at_kill["exit"] == -9, c.at_kill
    staged = [f for f in c.at_kill["temp_files"] if f.startswith(".staging-")]
    print(f"\n[crash] during_final_write: staged at the kill {staged}; previous pair "
          f"{c.previous.doc['count']} orders, truth after the change {len(c.truth)}")
    # The kill landed inside sorted_orders' write: its staging folder holds orders.parquet and part of orders.json.
    assert any(f.endswith("/orders.parquet") for f in staged) and any(f.endswith("/orders.json") for f in staged), (
        staged)
    assert len(c.truth) > c.previous.doc["count"], "the exchange did not change: the new pair would be the old one"
    # The published pair is the previous one, byte for byte, and its two files agree.
    assert c.left_at_kill is not None, c.at_kill
    assert c.left_at_kill.json_bytes == c.previous.json_bytes, "orders.json changed under a killed write"
    assert c.left_at_kill.parquet == c.previous.parquet, "orders.parquet changed under a killed write"
    json_ids, parquet_ids = json_and_parquet_ids(c.left_at_kill)
    assert json_ids == parquet_ids and len(json_ids) == c.previous.doc["count"]


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
    or all partitions already took it in: a resume should finish the job from there, not read it again."""
    c = crashes[point]
    assert c.at_kill["manifest"], c.at_kill
    if point == "during_final_write":
        # Every partition had taken the scan in: the resume reads only what is new since, as an idle refresh does
        # (one history and one pending page per product type), and publishes.
        assert c.resumed["requests"] <= 2 * 3, c.resumed
        return
    assert c.resumed["requests"] < c.first["requests"] / 2, (
        f"the resume read the account again: {c.resumed['requests']} order requests after the kill "
        f"vs {c.first['requests']} in the killed run (partitions done at the kill: {c.at_kill['partitions']})")


@pytest.mark.slow
def test_a_resume_leaves_no_temporary_file_of_the_killed_run_behind(crashes):
    """A kill inside an atomic write leaves its `.<name>.<pid>.<random>.tmp` or `.staging-<pid>-*/` folder (full-
    size copies); `Storage.list` hides them, so unless a later run removes them every crash leaks them forever.
    The held final write guarantees one kill inside a write, so this never depends on where a kill happened."""
    interrupted = {p: c.at_kill["temp_files"] for p, c in crashes.items() if c.at_kill["temp_files"]}
    print(f"\n[crash] temporary files at the kill: {interrupted}")
    assert any(f.startswith(".staging-") for f in interrupted.get("during_final_write", [])), interrupted
    left = {p: c.leftovers_after_resume for p, c in crashes.items() if c.leftovers_after_resume}
    assert not left, f"temporary files of killed writes still there after the resume: {left}"
