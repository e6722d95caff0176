"""Fixtures of the reliability suite (see batches.py for how the expensive ones run side by side).

`reference` is one fault-free extraction that other tests compare against. `matrix` then runs, side by side,
one extraction per API fault kind (and all kinds at once), a second fault-free full run into a fresh folder,
and an idle refresh of the reference folder. `bad_credential_runs` are extractions refused for their
credentials or clock, or stopped by a malformed order. Each simulator stands for its own machine (own TMPDIR,
so own file rate limiter) unless a test is about sharing one.
"""

from dataclasses import dataclass
from pathlib import Path

import pytest

from bitget_assets.simulator import FaultConfig
from bitget_assets.simulator.faults import KINDS
from tests.reliability import batches
from tests.reliability.batches import batch, on_session_end
from tests.reliability.helpers import (
    SPEC,
    WRONG_PASSPHRASE,
    WRONG_SECRET,
    CliResult,
    Output,
    account_log,
    audit,
    edit_served_order,
    order_log,
    read_output,
    reap_all,
    run_extract,
    seed_with,
    start_extract,
    start_simulator,
    start_simulator_process,
)
from tests.simprocess import SimulatorProcess

# Tests that wait for no batch run first (in the main thread, while the batches work in the background),
# then the others in about the order their batches finish.
BATCH_ORDER = ("bad_credential_runs", "fresh_home", "crashes", "s3world", "reference", "matrix", "eight")


def pytest_collection_modifyitems(session, config, items):
    here = Path(__file__).parent
    mine = [k for k, item in enumerate(items) if here in Path(str(item.fspath)).parents]

    def rank(item) -> int:
        return max((BATCH_ORDER.index(n) + 1 for n in item.fixturenames if n in BATCH_ORDER), default=0)

    ordered = sorted((items[k] for k in mine), key=rank)
    for k, item in zip(mine, ordered, strict=True):
        items[k] = item


@pytest.fixture(scope="session", autouse=True)
def _start_batches(request, tmp_path_factory):
    wanted = {name for item in request.session.items for name in item.fixturenames if name in batches.names()}
    tmp_path_factory.getbasetemp()  # created lazily and not thread-safe: create it before the batch threads
    batches.start(wanted, tmp_path_factory)
    yield
    batches.finish()
    reap_all()


def tmpdir_of(work: Path) -> str:
    """A TMPDIR of its own: the file rate limiter lives in the temp dir, so this run is alone on its 'machine'."""
    path = work / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


@dataclass
class Reference:
    sim: SimulatorProcess
    work: Path
    out: Path
    home: Path
    result: CliResult
    output: Output
    truth: list[dict]
    log: list[dict]  # the simulator's request log at the end of the reference run
    files: dict[str, bytes]  # the output folder right after the run (state included), by storage key


@batch()
def reference(tmp_path_factory) -> Reference:
    """A fault-free extraction of SPEC into a fresh folder and DAGSTER_HOME (the simulator stays up)."""
    sim = start_simulator_process()
    on_session_end(sim.stop)
    work = tmp_path_factory.mktemp("reference")
    result = run_extract(sim, work, work / "out", TMPDIR=tmpdir_of(work))
    assert result.rc == 0, result.stderr[-4000:]
    out = work / "out"
    files = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
             if p.is_file() and not p.name.startswith(".")}
    return Reference(sim, work, out, work / "home", result, read_output(out), sim.truth(SPEC.name),
                     sim.request_log(), files)


# kind -> (faults, minimum of each kind among the first 20 signed requests, cap over the first 60)
FAULTS = {
    "5xx_html": (FaultConfig(error_5xx=0.05), {"error_5xx": 2}, {}),
    "429_bursts": (FaultConfig(burst_429=0.05, burst_len=5), {"burst_429": 6}, {}),
    "conn_resets": (FaultConfig(reset=0.05), {"reset": 2}, {}),
    "slow_12s": (FaultConfig(slow=0.03, slow_seconds=12), {"slow": 1}, {"slow": 2}),
    "truncated_json": (FaultConfig(truncated=0.05), {"truncated": 2}, {}),
    "http200_40015": (FaultConfig(error_200=0.05), {"error_200": 2}, {}),
    "all_at_once": (
        # with Bitget's weekly release window (45001, 40725, 40808, 40015, 40200, HTTP 400 or 200); each of its
        # codes on its own: tests/test_live_exchange.py
        FaultConfig(error_5xx=0.05, burst_429=0.03, reset=0.03, slow=0.02, slow_seconds=12, truncated=0.03,
                    error_200=0.03, release_window=0.03),
        dict.fromkeys(KINDS, 1),
        {"slow": 2},
    ),
}


@dataclass
class MatrixRun:
    result: CliResult
    output: Output | None
    audit: dict
    truth: list[dict]
    log: list[dict]  # every request of the run (signed or not), as the server logged it


@batch(needs=("reference",))
def matrix(tmp_path_factory, reference: Reference) -> dict[str, MatrixRun]:
    sims: dict[str, SimulatorProcess] = {}
    for kind, (faults, need, cap) in FAULTS.items():
        sims[kind] = start_simulator_process(faults=faults, seed=seed_with(faults, need, cap=cap))
    sims["second_full_run"] = start_simulator_process()
    try:
        runs = {}
        for kind, sim in sims.items():
            work = tmp_path_factory.mktemp(kind)
            # Each fault kind on the orders stream, eight runs at once on two cores; every stream under every
            # fault kind at once: tests/test_datasets_pipeline.py.
            streams = {} if kind == "second_full_run" else {"BITGET_STREAMS": "orders"}
            runs[kind] = (sim, work / "out", 0, start_extract(sim, work, work / "out", TMPDIR=tmpdir_of(work),
                                                              **streams))
        # The refresh of the reference folder, nothing having changed on the exchange since.
        runs["idle_refresh"] = (reference.sim, reference.out, len(reference.sim.request_log()),
                                start_extract(reference.sim, reference.work, reference.out,
                                              TMPDIR=tmpdir_of(reference.work)))
        done = {}
        for kind, (sim, out, start, run) in runs.items():
            result = run.wait()
            done[kind] = MatrixRun(result, read_output(out) if result.rc == 0 else None,
                                   audit(order_log(sim, SPEC.name, start), account_log(sim, SPEC.name, start)),
                                   sim.truth(SPEC.name),
                                   sim.request_log()[start:])
        return done
    finally:
        for sim in sims.values():
            sim.stop()


@dataclass
class FailedRun:
    result: CliResult
    log: list[dict]  # every request of the run, as the server logged it
    work: Path


@batch()
def bad_credential_runs(tmp_path_factory) -> dict[str, FailedRun]:
    """`bitget-orders extract` with bad credentials or clock, and with an order the API sent without cTime:
    four runs side by side, each against its own simulator of SPEC and with its own rate limiter. Answers
    take 250-300 ms, as from a distant exchange, so how many requests go out before the first refusal comes
    back depends on the client alone, not on how busy this machine is."""
    cases = {
        "wrong_key": {"BITGET_API_KEY": "sim-reliab-nobody0000"},
        "wrong_secret": {"BITGET_API_SECRET": WRONG_SECRET},
        "wrong_passphrase": {"BITGET_API_PASSPHRASE": WRONG_PASSPHRASE},
        "order_without_ctime": {},
    }
    sims = {case: start_simulator(latency=(0.25, 0.3)) for case in cases}
    try:
        newest = sims["order_without_ctime"].truth(SPEC.name)[-1]["orderId"]
        edit_served_order(sims["order_without_ctime"], SPEC.name, newest, lambda o: o.pop("cTime"))
        runs = {}
        for case, env in cases.items():
            work = tmp_path_factory.mktemp(case)
            runs[case] = (work, start_extract(sims[case], work, work / "out", TMPDIR=tmpdir_of(work), **env))
        return {case: FailedRun(run.wait(), sims[case].request_log(), work) for case, (work, run) in runs.items()}
    finally:
        for sim in sims.values():
            sim.stop()
