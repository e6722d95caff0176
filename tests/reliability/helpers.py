"""Tools of the reliability suite: the CLI started as a user starts it, the simulator's log read as an auditor.

Every server these tests talk to listens on 127.0.0.1; every CLI run gets its own process group, so a test can
kill -9 the whole extraction (step processes included) and check that nothing of it is left running.
"""

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from bitget_assets.simulator import AccountSpec, FaultConfig, Simulator, SimulatorConfig
from bitget_assets.simulator.faults import FaultInjector
from bitget_assets.simulator.ratelimit import max_in_window
from tests.simprocess import SimulatorProcess

NOW_MS = 1_790_000_000_000  # a fixed data clock: every run of a spec sees the same account
DAY_MS = 86_400_000
HISTORY = "/api/v2/mix/order/orders-history"
PENDING = "/api/v2/mix/order/orders-pending"
ORDER_ENDPOINTS = (HISTORY, PENDING)
PRODUCT_TYPES = 3

# Distinctive fake credentials: no other text of a run can contain these by chance.
SECRET = "zzSECRET-Quokka-7f3e9a1c-never-print-me"
PASSPHRASE = "zzPASS-Wombat-51d2-never-print-me"
WRONG_SECRET = "zzWRONGSECRET-Narwhal-0b8d-never-print-me"
WRONG_PASSPHRASE = "zzWRONGPASS-Axolotl-c4e6-never-print-me"
ALL_SECRETS = (SECRET, PASSPHRASE, WRONG_SECRET, WRONG_PASSPHRASE)

# The account most tests extract: a heavy USDT book, coin- and USDC-margined tails, open orders, cTime ties.
SPEC = AccountSpec(name="reliab", seed=77, orders=2400, symbols=10, now_ms=NOW_MS)


def _config(**config) -> SimulatorConfig:
    return SimulatorConfig(**{"rate_limit": 10, "latency": (0.01, 0.04), "frozen": True} | config)


def start_simulator(spec: AccountSpec = SPEC, **config) -> Simulator:
    """A started simulator whose account signs with the distinctive secret and passphrase above."""
    sim = Simulator([spec], _config(**config)).start()
    account = sim.accounts[spec.name]
    account.api_secret, account.passphrase = SECRET, PASSPHRASE  # read by the server on every request
    return sim


def start_simulator_process(spec: AccountSpec = SPEC, **config) -> SimulatorProcess:
    """As start_simulator, in a process of its own: for runs judged by the server's arrival stamps."""
    return SimulatorProcess([spec], _config(**config), {spec.name: (SECRET, PASSPHRASE)}).start()


def seed_with(faults: FaultConfig, need: dict[str, int], *, within: int = 20, cap: dict | None = None) -> int:
    """A simulator seed whose first `within` signed requests draw at least `need[kind]` faults of each kind
    (and, over the first 60, at most `cap[kind]`): the test then provably exercises every kind it names."""
    for seed in range(20_000):
        injector = FaultInjector(faults, seed)
        draws = []
        for _ in range(60):
            draws.append(injector.decide("account", True))
            if draws[-1] == "error_5xx":
                injector.pick((502, 503))  # the server draws the 5xx status from the same generator
        early = Counter(draws[:within])
        total = Counter(draws)
        if all(early[k] >= n for k, n in need.items()) and all(total[k] <= n for k, n in (cap or {}).items()):
            return seed
    raise AssertionError(f"no seed injects {need} within {within} requests")


# -- CLI runs ---------------------------------------------------------------------------------------------
def base_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that could point a run elsewhere than loopback."""
    drop = ("BITGET_", "DAGSTER_", "AWS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and "proxy" not in k.lower()}
    env |= {"NO_PROXY": "*", "AWS_EC2_METADATA_DISABLED": "true", "PYTHONUNBUFFERED": "1"}
    return env | extra


def cli_env(sim: Simulator, account: str, home: Path, **extra: str) -> dict[str, str]:
    c = sim.credentials(account)
    return base_env(**{
        "BITGET_API_KEY": c["api_key"],
        "BITGET_API_SECRET": c["api_secret"],
        "BITGET_API_PASSPHRASE": c["passphrase"],
        "BITGET_BASE_URL": sim.base_url,
        "DAGSTER_HOME": str(home),
        **extra,
    })


def s3_env(endpoint_url: str) -> dict[str, str]:
    """Fake AWS credentials for the local S3 server (never real ones), and its address."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "BITGET_S3_ENDPOINT_URL": endpoint_url,
    }


_STARTED: list["CliRun"] = []  # every group this suite started, so a session finalizer can reap leftovers


@dataclass
class CliResult:
    rc: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> dict:
        return json.loads(self.stdout.strip().splitlines()[-1])

    @property
    def failure_line(self) -> str:
        lines = [ln for ln in self.stderr.splitlines() if "extraction failed" in ln]
        return lines[-1] if lines else self.stderr[-2000:]


@dataclass
class CliRun:
    """`bitget-orders extract` in its own session (process group), output captured to files."""

    proc: subprocess.Popen
    stdout_path: Path
    stderr_path: Path
    _result: CliResult | None = field(default=None, repr=False)

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session: the child leads its own group

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = 280) -> CliResult:
        if self._result is None:
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_group(self.pgid)
                self.proc.wait()
                raise AssertionError(f"the extraction did not end within {timeout} s") from None
            finally:
                kill_group(self.pgid)  # a step process that outlived the CLI would be a leak
            self._result = CliResult(rc, self.stdout_path.read_text(), self.stderr_path.read_text())
        return self._result

    def kill9(self) -> list[int]:
        """SIGKILL the whole group at once; returns members still alive afterwards (should be none)."""
        survivors = kill_group(self.pgid)
        self.proc.wait()
        self._result = CliResult(self.proc.returncode, self.stdout_path.read_text(), self.stderr_path.read_text())
        return survivors


# `python -c` program: `bitget-orders ARGS` once GO exists, with the slow imports done before (then READY is
# written), so that several runs reach their first own step at the same instant.
SYNCHRONIZED_CLI = """
import os, sys, time
import dagster, bitget_assets.assets, bitget_assets.cli, bitget_assets.demo, bitget_assets.jobs
ready, go = sys.argv[1:3]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.0005)
sys.exit(bitget_assets.cli.main(sys.argv[3:]))
"""


def start_cli(env: dict[str, str], workdir: Path, *args: str, launcher: list[str] | None = None) -> CliRun:
    """`python -m bitget_assets.cli ARGS` (or `python LAUNCHER... ARGS`) in a new session."""
    workdir.mkdir(parents=True, exist_ok=True)
    n = len(list(workdir.glob("cli-*.out")))
    out, err = workdir / f"cli-{n}.out", workdir / f"cli-{n}.err"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(
            [sys.executable, *(launcher or ["-m", "bitget_assets.cli"]), *args],
            env=env, cwd=workdir, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    run = CliRun(proc, out, err)
    _STARTED.append(run)
    return run


def start_extract(sim: Simulator, workdir: Path, output, *args: str, account: str | None = None,
                  home: Path | None = None, launcher: list[str] | None = None, **extra_env: str) -> CliRun:
    env = cli_env(sim, account or next(iter(sim.accounts)), home or workdir / "home", **extra_env)
    return start_cli(env, workdir, "extract", "--quiet", "--output", str(output), *args, launcher=launcher)


def run_extract(*args, timeout: float = 280, **kwargs) -> CliResult:
    return start_extract(*args, **kwargs).wait(timeout)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, read from /proc."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def kill_group(pgid: int, settle_s: float = 15) -> list[int]:
    """SIGKILL one process group this suite started (by its id); wait until its members are gone."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return []
    deadline = time.monotonic() + settle_s
    while (left := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def reap_all() -> None:
    for run in _STARTED:
        if run.alive() or group_members(run.pgid):
            kill_group(run.pgid)
            run.proc.wait()


def wait_until(condition, run: CliRun, poll_s: float = 0.002, timeout: float = 240) -> bool:
    """Poll `condition()` until it holds (True) or the run ends first (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if not run.alive():
            return bool(condition())
        time.sleep(poll_s)
    return False


# -- the server's log, read as an auditor ---------------------------------------------------------------
def order_log(sim: Simulator, account: str | None = None, start: int = 0, stop: int | None = None) -> list[dict]:
    """Signed order-endpoint entries (of one account when given), by position in the log."""
    return order_entries(sim.request_log()[start:stop], sim.credentials(account)["uid"] if account else None)


def order_entries(log: list[dict], uid: str | None = None) -> list[dict]:
    return [e for e in log if e["endpoint"] in ORDER_ENDPOINTS and (uid is None or e["account"] == uid)]


def account_log(sim: Simulator, account: str, start: int = 0) -> list[dict]:
    """Every request of one account (signed: every endpoint but the public ones), by position in the log."""
    uid = sim.credentials(account)["uid"]
    return [e for e in sim.request_log()[start:] if e["account"] == uid]


def audit(entries: list[dict], everything: list[dict] | None = None) -> dict:
    """What the server saw: requests, faults injected, 429s of our own making, the busiest 1-s windows.

    Accepted = admitted by the server's rate limiter (every status but 429: a 5xx, a reset or a slow answer
    was admitted and counted). A 429 not drawn as an injected burst is one the client caused.
    """
    accepted = [e for e in entries if e["status"] != 429]
    failed = [e for e in entries if e["fault"] or e["status"] != 200]
    # Faults and 429s over every request of the account when given (faults land on any signed endpoint).
    every = entries if everything is None else everything
    return {
        "requests": len(entries),
        "faults": dict(Counter(e["fault"] for e in every if e["fault"])),
        "answered_429": sum(1 for e in every if e["status"] == 429),
        "our_429": sum(1 for e in every if e["status"] == 429 and e["fault"] != "burst_429"),
        "retried": len(failed),  # every failed attempt of a run that succeeded was retried once
        "max_per_s": {ep.rsplit("/", 1)[1]: max_in_window([e["t"] for e in accepted if e["endpoint"] == ep])
                      for ep in ORDER_ENDPOINTS},
        "max_per_s_account": max_in_window([e["t"] for e in accepted]),
        "with_symbol": sum(1 for e in entries if e["params"].get("symbol")),
    }


# -- outputs --------------------------------------------------------------------------------------------
@dataclass
class Output:
    doc: dict
    json_bytes: bytes
    parquet: bytes

    @property
    def orders(self) -> list[dict]:
        return self.doc["orders"]


def read_output(folder: Path) -> Output:
    raw = (Path(folder) / "orders.json").read_bytes()
    return Output(json.loads(raw), raw, (Path(folder) / "orders.parquet").read_bytes())


def assert_equals_truth(orders: list[dict], truth: list[dict], what: str = "output") -> None:
    ids = [o["orderId"] for o in orders]
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    assert not dupes, f"{what}: {len(dupes)} duplicated orderIds, e.g. {dupes[:3]}"
    want = {o["orderId"] for o in truth}
    missing, extra = want - set(ids), set(ids) - want
    assert not missing and not extra, f"{what}: {len(missing)} orders missing, {len(extra)} not in the truth"
    assert orders == truth, f"{what}: same ids, but order or field values differ from the truth"


def partition_files(folder: Path) -> list[Path]:
    return sorted(Path(folder).glob("partitions/*/*.parquet"))


def assert_partitions_hold_truth(folder: Path, truth: list[dict]) -> None:
    """Every symbol of the truth has a partition holding exactly its orders, each once."""
    want: dict[str, set[str]] = {}
    for o in truth:
        want.setdefault(o["symbol"], set()).add(o["orderId"])
    got = {}
    for path in partition_files(folder):
        ids = pl.read_parquet(path)["orderId"].to_list()
        assert len(ids) == len(set(ids)), f"partition {path.name}: duplicated orderIds"
        got[path.stem] = set(ids)
    assert set(got) >= set(want), f"partitions missing for {sorted(set(want) - set(got))}"
    wrong = [s for s in want if got[s] != want[s]]
    assert not wrong, f"partitions not equal to the truth: {wrong}"


def temp_leftovers(folder: Path) -> list[str]:
    """Temporary files of interrupted atomic writes (LocalStorage names them .<name>.<pid>.<random>.tmp) and
    staging folders of interrupted publishes (.staging-<pid>-<random>/), each with the files staged in it."""
    folder = Path(folder)
    found = [p for p in folder.rglob(".*.tmp") if ".staging-" not in str(p.relative_to(folder))]
    for staging in folder.rglob(".staging-*"):
        found += [staging, *staging.rglob("*")]
    return sorted(str(p.relative_to(folder)) + ("/" if p.is_dir() else "") for p in found)


class OutputWatcher(threading.Thread):
    """Reads the published files over and over while runs write them: every read must parse completely."""

    NAMES = ("orders.json", "orders.parquet", "scan/manifest.json", "scan/applied.json")

    def __init__(self, folder: Path, pause_s: float = 0.003):
        super().__init__(daemon=True)
        self.folder, self.pause_s = Path(folder), pause_s
        self.stop_event = threading.Event()
        self.reads: Counter = Counter()  # complete parses, one per distinct object seen
        self.polls = 0  # times a published file was opened
        self.bad: list[tuple[str, int, str]] = []

    def run(self) -> None:
        seen: dict[str, tuple] = {}
        while not self.stop_event.is_set():
            for name in self.NAMES:
                try:
                    with open(self.folder / name, "rb") as f:
                        self.polls += 1
                        st = os.fstat(f.fileno())
                        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
                        if seen.get(name) == stamp:
                            continue  # the very object already parsed: reading it again proves nothing
                        data = f.read()
                except (FileNotFoundError, NotADirectoryError):
                    continue
                seen[name] = stamp
                try:
                    if name.endswith(".parquet"):
                        pl.read_parquet(io.BytesIO(data))
                    else:
                        doc = json.loads(data)
                        if name == "orders.json" and doc["count"] != len(doc["orders"]):
                            raise ValueError("count does not match the orders")
                    self.reads[name] += 1
                except Exception as exc:  # noqa: BLE001 - every failure is the finding
                    self.bad.append((name, len(data), repr(exc)[:200]))
            self.stop_event.wait(self.pause_s)

    def finish(self) -> "OutputWatcher":
        self.stop_event.set()
        self.join()
        return self


def edit_served_order(sim: Simulator, account: str, order_id: str, change) -> dict:
    """Rewrite one order exactly as the server will serve it (the simulator keeps only known fields when
    adding orders, so unknown or missing fields are made by editing the stored bytes)."""
    store = sim.stores[account]

    def job():
        pos = next(p for p in range(len(store.oids)) if str(store.oids[p]) == order_id)
        order = json.loads(store.blobs[pos])
        change(order)
        store.blobs[pos] = json.dumps(order, separators=(",", ":")).encode()
        return order

    return sim._call(job)  # on the server's loop thread, the only one touching the stores
