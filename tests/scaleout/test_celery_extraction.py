"""The scaled-out deployment end to end: two Bitget accounts in one deployment, Dagster on PostgreSQL, steps on
two celery workers (RabbitMQ), and one Redis rate budget per account shared by every worker process, against the
simulator. Each account's output == its ground truth, the server never sees more than 10 requests of an account
per endpoint in a second, and a worker killed mid-run loses nothing."""

import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bitget_assets.bitget import PRODUCT_TYPES
from bitget_assets.lineage import DIRECT_READ, SCAN_RUN_TAG
from bitget_assets.simulator import AccountSpec, SimulatorConfig
from tests.scaleout.cluster import Worker, delete_prefix, require_module, run_tag, stop_group
from tests.simhelpers import HISTORY, NOW_MS, PENDING, sim_env
from tests.simprocess import SimulatorProcess

pytestmark = pytest.mark.slow

# alpha is big enough that re-reading every symbol takes ~10 s at 9.5 requests/s: time to kill a worker mid-step.
SPECS = {"alpha": AccountSpec(name="alpha", seed=21, orders=6000, symbols=20, now_ms=NOW_MS),
         "beta": AccountSpec(name="beta", seed=22, orders=2500, symbols=8, now_ms=NOW_MS)}
SPEC = SPECS["alpha"]
INSTANCE_YAML = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "dagster.postgres.yaml"
# The run tag that makes every symbol chunk of alpha read its symbols from the API instead of a staged scan, so
# four steps in the worker processes draw on the rate budget at the same time.
DIRECT_READS = {SCAN_RUN_TAG: DIRECT_READ}


@dataclass
class Cluster:
    sim: SimulatorProcess
    env: dict
    folder: Path
    output: Path
    workers: list[Worker]
    redis_url: str
    redis_prefix: str
    pg: dict
    notes: dict = field(default_factory=dict)

    def history_requests(self, account: str = "alpha") -> list[dict]:
        uid = self.sim.credentials(account)["uid"]
        return [r for r in self.sim.request_log() if r["endpoint"] == HISTORY and r["account"] == uid]

    def pg_query(self, sql: str) -> list[tuple]:
        import psycopg2

        with psycopg2.connect(**self.pg) as conn, conn.cursor() as cur:
            cur.execute(sql)
            rows = cur.fetchall()
        conn.close()
        return rows


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, redis_url, pg_database, rabbit_broker):
    require_module("dagster_celery")
    folder = tmp_path_factory.mktemp("cluster")
    home = folder / "dagster_home"
    home.mkdir()
    shutil.copy(INSTANCE_YAML, home / "dagster.yaml")
    prefix = f"{run_tag()}:"
    cfg = SimulatorConfig(rate_limit=10, latency=(0.02, 0.06), frozen=True)
    with SimulatorProcess(list(SPECS.values()), cfg) as sim:
        # What every process of the deployment shares: the CLI/run process and each worker.
        accounts = {"BITGET_ACCOUNTS": ",".join(SPECS), "BITGET_BASE_URL": sim.base_url}
        for name in SPECS:
            c = sim.credentials(name)
            accounts |= {f"BITGET_{name.upper()}_API_KEY": c["api_key"],
                         f"BITGET_{name.upper()}_API_SECRET": c["api_secret"],
                         f"BITGET_{name.upper()}_API_PASSPHRASE": c["passphrase"]}
        env = {k: v for k, v in sim_env(sim, "alpha").items() if not k.startswith("BITGET_API_")} | accounts | {
            "BITGET_OUTPUT": str(folder / "out"),
            "BITGET_PRODUCT_TYPES": ",".join(PRODUCT_TYPES),
            "BITGET_RATE_LIMIT_BACKEND": "redis",
            "BITGET_REDIS_URL": redis_url,
            "BITGET_REDIS_KEY_PREFIX": prefix,
            "BITGET_EXECUTOR": "celery",
            "BITGET_CELERY_BROKER": rabbit_broker,
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": pg_database["host"],
            "DAGSTER_PG_PORT": str(pg_database["port"]),
            "DAGSTER_PG_USERNAME": pg_database["user"],
            "DAGSTER_PG_PASSWORD": pg_database["password"],
            "DAGSTER_PG_DB": pg_database["dbname"],
        }
        workers: list[Worker] = []
        try:
            tag = prefix.rstrip(":")[-6:]
            workers = [Worker(f"w{i}-{tag}", env, folder) for i in range(2)]
            for w in workers:
                w.wait_ready()
            yield Cluster(sim, env, folder, folder / "out", workers, redis_url, prefix, pg_database)
        finally:
            for w in workers:
                w.stop()
            delete_prefix(redis_url, prefix)


class RedisWatch(threading.Thread):
    """Samples the limiter's keys while a run works: proof the run's budget lives in Redis, with TTLs."""

    def __init__(self, url: str, prefix: str):
        import redis

        super().__init__(daemon=True)
        self.client, self.prefix = redis.Redis.from_url(url), prefix
        self.keys: set[str] = set()
        self.ttls: list[int] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.05):
            for key in self.client.scan_iter(match=f"{self.prefix}*"):
                self.keys.add(key.decode())
                self.ttls.append(self.client.pttl(key))

    def stop(self) -> None:
        self.halt.set()
        self.join()
        self.client.close()


def output_ids(cluster: Cluster, account: str = "alpha") -> list[str]:
    doc = json.loads((cluster.output / account / "orders.json").read_bytes())
    return [o["orderId"] for o in doc["orders"]]


def truth_ids(cluster: Cluster, account: str = "alpha") -> list[str]:
    return [o["orderId"] for o in cluster.sim.truth(account)]


def assert_server_saw_no_burst(cluster: Cluster) -> int:
    """No 429 at all, and at most 10 arrivals (accepted or not) per account and endpoint in any 1-s window."""
    worst = max(cluster.sim.max_requests_per_window(account=a, endpoint=e, status=None)
                for a in SPECS for e in (HISTORY, PENDING))
    assert worst <= 10, worst
    log = cluster.sim.request_log()
    rejected = [r for r in log if r["status"] == 429]
    if rejected:  # show the second before the first 429, as the server stamped it
        t = rejected[0]["t"]
        arrivals = [f"{r['t'] - t:+.3f} {r['status']}" for r in log if t - 1.0 <= r["t"] <= t]
        pytest.fail(f"{len(rejected)} request(s) answered 429; arrivals before the first: {arrivals}")
    return worst


def forget_partitions(cluster: Cluster) -> None:
    """Drop every symbol's stored orders of alpha, so a direct run reads each symbol's whole history again."""
    shutil.rmtree(cluster.output / "alpha" / "partitions")


def direct_run(cluster: Cluster, log_name: str) -> subprocess.Popen:
    """`dagster job execute` of alpha's update_symbols_job over its registered symbols, each chunk reading from
    the API."""
    keys = [k for (k,) in cluster.pg_query(
        "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'alpha__symbols' ORDER BY id")]
    assert keys, "no symbol partitions registered"
    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1],
            **DIRECT_READS}
    cmd = [sys.executable, "-m", "dagster", "job", "execute", "-m", "bitget_assets.definitions",
           "-j", "alpha__update_symbols_job", "--tags", json.dumps(tags)]
    log = open(cluster.folder / log_name, "wb")  # noqa: SIM115 - handed to the child, closed by the caller
    proc = subprocess.Popen(cmd, env=cluster.env, cwd=cluster.folder, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    proc.log = log
    return proc


def finish(proc: subprocess.Popen, timeout_s: float = 240) -> int:
    try:
        return proc.wait(timeout=timeout_s)
    finally:
        stop_group(proc)
        proc.log.close()


@pytest.fixture(scope="module")
def extracted(cluster):
    """`bitget-orders extract` with BITGET_EXECUTOR=celery: the scan and every step run on the workers."""
    before = {w.name: w.received() for w in cluster.workers}
    watch = RedisWatch(cluster.redis_url, cluster.redis_prefix)
    watch.start()
    began = time.time()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "bitget_assets.cli", "extract", "--quiet", "--output", str(cluster.output)],
            env=cluster.env, cwd=cluster.folder, capture_output=True, text=True, timeout=240,
        )
    finally:
        watch.stop()
    assert proc.returncode == 0, proc.stderr[-4000:]
    tasks = {w.name: len(w.received() - before[w.name]) for w in cluster.workers}
    summaries = {s["account"]: s for s in map(json.loads, proc.stdout.strip().splitlines())}
    return {"summaries": summaries, "tasks": tasks, "watch": watch, "seconds": time.time() - began}


def test_cli_extraction_on_celery_postgres_and_redis(cluster, extracted):
    assert set(extracted["summaries"]) == set(SPECS)
    for name, spec in SPECS.items():
        summary, truth = extracted["summaries"][name], truth_ids(cluster, name)
        assert summary["orders"] == len(truth) == spec.orders, name
        assert summary["rate_limited"] == 0, name
        assert summary["output"] == str(cluster.output / name / "orders.json")
        assert output_ids(cluster, name) == truth, name  # the same ids, in (cTime, orderId) order
    worst = assert_server_saw_no_burst(cluster)

    # Both workers ran steps of the runs (per account: the scan, four symbol chunks, the merge and its check).
    assert all(n >= 1 for n in extracted["tasks"].values()), extracted["tasks"]
    assert sum(extracted["tasks"].values()) >= 2 * 7, extracted["tasks"]
    # The budgets lived in Redis under this run's prefix, every key with a TTL, none named after an account;
    # one budget per account and endpoint.
    watch = extracted["watch"]
    assert len(watch.keys) >= 2 * 2, watch.keys
    assert all(t != -1 for t in watch.ttls)
    for name in SPECS:
        c = cluster.sim.credentials(name)
        assert not any(c["uid"] in k or c["api_key"] in k for k in watch.keys)
    # The instance is PostgreSQL: all four runs and their events are in this test's database, none in SQLite.
    runs = cluster.pg_query("SELECT pipeline_name, status FROM runs ORDER BY create_timestamp")
    jobs = ("scan_job", "update_symbols_job")
    assert sorted(runs) == sorted((f"{a}__{j}", "SUCCESS") for a in SPECS for j in jobs), runs
    assert cluster.pg_query("SELECT count(*) FROM event_logs")[0][0] > 0
    assert not (Path(cluster.env["DAGSTER_HOME"]) / "history").exists()
    orders = {n: s["orders"] for n, s in extracted["summaries"].items()}
    print(f"\nCLI on celery, two accounts side by side: orders {orders}, {extracted['seconds']:.1f} s, "
          f"tasks per worker {extracted['tasks']}, max/1-s window {worst}, redis keys {len(watch.keys)}")


def test_direct_reads_on_both_workers_share_one_budget(cluster, extracted):
    forget_partitions(cluster)
    before = {w.name: w.received() for w in cluster.workers}
    n0 = len(cluster.history_requests())
    began = time.time()
    rc = finish(direct_run(cluster, "direct.log"))
    assert rc == 0, (cluster.folder / "direct.log").read_text()[-4000:]
    made = len(cluster.history_requests()) - n0
    tasks = {w.name: len(w.received() - before[w.name]) for w in cluster.workers}
    assert made >= SPEC.orders // 100  # every order was read again, by four steps at once
    assert all(n >= 2 for n in tasks.values()), tasks
    assert output_ids(cluster) == truth_ids(cluster)
    worst = assert_server_saw_no_burst(cluster)
    print(f"\ndirect reads on celery: {made} history requests in {time.time() - began:.1f} s, "
          f"tasks per worker {tasks}, max/1-s window {worst}")


def test_killed_worker_loses_nothing(cluster, extracted):
    victim, survivor = cluster.workers
    forget_partitions(cluster)
    n0 = len(cluster.history_requests())
    proc = direct_run(cluster, "killed.log")
    killed_tasks: set[str] = set()
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            # Mid-run: the symbol chunks are reading (requests flow) and the victim holds steps in flight.
            if len(cluster.history_requests()) - n0 >= 15 and victim.in_flight():
                killed_tasks = victim.in_flight()
                victim.kill()
                break
            time.sleep(0.2)
    except BaseException:
        finish(proc, 0)
        raise
    assert killed_tasks, "the run ended before a worker could be killed mid-step"
    rc = finish(proc)
    retried = rc != 0
    if retried:  # the operator's retry: the same run again, on the worker that is left
        rc = finish(direct_run(cluster, "retry.log"))
    assert rc == 0, (cluster.folder / ("retry.log" if retried else "killed.log")).read_text()[-4000:]
    assert output_ids(cluster) == truth_ids(cluster)
    assert output_ids(cluster, "beta") == truth_ids(cluster, "beta")  # the other account untouched
    worst = assert_server_saw_no_burst(cluster)
    redelivered = killed_tasks & survivor.received()
    if not retried:  # late acks: the broker handed the dead worker's steps to the survivor
        assert redelivered == killed_tasks
    print(f"\nkilled {victim.name} holding {len(killed_tasks)} step(s): "
          f"{'re-run needed' if retried else f'{len(redelivered)} redelivered to {survivor.name}, run succeeded'}; "
          f"max/1-s window {worst}")
