"""Secrets: the API secret and passphrase appear nowhere a user or operator can look.

The simulator's account signs with a distinctive secret and passphrase (helpers.SECRET / PASSPHRASE), and the
failing runs use distinctive wrong ones. After a successful run (the reference), two runs refused for their
credentials and one that failed mid-scan with valid credentials (an order without cTime), everything is
searched, as bytes and base64: stdout and stderr, every file under each DAGSTER_HOME and output folder (SQLite
databases row by row, compressed snapshots decompressed), every event and run (config, tags, metadata,
errors) read back through DagsterInstance, and the simulator's request log.
"""

import base64
import sqlite3
import zlib
from pathlib import Path

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from bitget_assets.bitget import BitgetClient, Credentials
from bitget_assets.bitget.errors import api_error
from bitget_assets.ratelimit import ThreadLimiter
from bitget_assets.resources import BitgetResource
from tests.reliability.helpers import ALL_SECRETS, PASSPHRASE, SECRET

NEEDLES = [s.encode() for s in ALL_SECRETS] + [base64.b64encode(s.encode()) for s in ALL_SECRETS]


def found_in(data: bytes) -> list[str]:
    return [n.decode() for n in NEEDLES if n in data]


def sqlite_values(path: Path):
    """Every cell of every table, compressed blobs (Dagster's snapshots) decompressed."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in db.execute(f'select * from "{table}"'):
                for value in row:
                    if isinstance(value, str):
                        yield value.encode()
                    elif isinstance(value, bytes):
                        yield value
                        try:
                            inflated = zlib.decompress(value)
                        except zlib.error:
                            continue
                        yield inflated


def leaks_in_tree(root: Path) -> dict[str, list[str]]:
    leaks = {}
    for path in sorted(Path(root).rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        hits = found_in(data)
        if data.startswith(b"SQLite format 3"):
            hits += [h for value in sqlite_values(path) for h in found_in(value)]
        if hits:
            leaks[str(path.relative_to(root))] = sorted(set(hits))
    return leaks


def leaks_in_instance(home: Path) -> dict[str, list[str]]:
    leaks = {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for run in instance.get_runs():
            texts = {"run": serialize_value(run)}
            for i, record in enumerate(instance.all_logs(run.run_id)):
                texts[f"event {i}"] = serialize_value(record)
            for what, text in texts.items():
                if hits := found_in(text.encode()):
                    leaks[f"{run.job_name} {run.run_id[:8]} {what}"] = hits
    return leaks


@pytest.fixture(scope="module")
def artifacts(reference, matrix, bad_credential_runs) -> dict:
    runs = {"success (reference)": (reference.work, reference.result, reference.sim.request_log())}
    assert matrix["idle_refresh"].result.rc == 0  # its records are in the reference's home and output too
    for case in ("wrong_secret", "wrong_passphrase", "order_without_ctime"):
        r = bad_credential_runs[case]
        runs[f"failure ({case})"] = (r.work, r.result, r.log)
    return runs


@pytest.mark.slow
def test_no_secret_in_what_the_user_sees(artifacts):
    for name, (_, result, _) in artifacts.items():
        assert not found_in((result.stdout + result.stderr).encode()), f"{name}: a secret on stdout/stderr"


@pytest.mark.slow
def test_no_secret_in_any_file_of_dagster_home_or_the_output(artifacts):
    checked = 0
    for name, (work, _, _) in artifacts.items():
        for sub in ("home", "out"):
            if (work / sub).exists():
                checked += sum(1 for p in (work / sub).rglob("*") if p.is_file())
                assert not (leaks := leaks_in_tree(work / sub)), f"{name}: secrets in {sub}/: {leaks}"
    assert checked > 20, f"only {checked} files were searched"


@pytest.mark.slow
def test_no_secret_in_the_event_log_run_config_or_metadata(artifacts):
    events = 0
    for name, (work, _, _) in artifacts.items():
        assert not (leaks := leaks_in_instance(work / "home")), f"{name}: secrets in Dagster's records: {leaks}"
        with dg.DagsterInstance.from_config(str(work / "home")) as instance:
            events += sum(len(instance.all_logs(r.run_id)) for r in instance.get_runs())
    assert events > 50, events


@pytest.mark.slow
def test_no_secret_in_the_exchange_request_log(artifacts):
    for name, (_, _, log) in artifacts.items():
        assert not found_in(repr(log).encode()), f"{name}: a secret in the simulator's request log"


def test_reprs_and_error_texts_mask_the_secret_and_passphrase():
    resource = BitgetResource(api_key="sim-reliab-key-0001", api_secret=SECRET, api_passphrase=PASSPHRASE,
                              base_url="http://127.0.0.1:9")
    creds = Credentials("sim-reliab-key-0001", SECRET, PASSPHRASE, base_url="http://127.0.0.1:9")
    client = BitgetClient(creds, ThreadLimiter(5))
    error = api_error("40009", "sign signature error", "/api/v2/mix/order/orders-history", 400)
    texts = {
        "repr(resource)": repr(resource),
        "str(resource)": str(resource),
        "repr(credentials)": repr(creds),
        "str(credentials)": str(creds),
        "repr(client)": repr(client),
        "repr(resource.credentials())": repr(resource.credentials()),
        "error": f"{error} {error!r}",
    }
    leaked = {k: found_in(v.encode()) for k, v in texts.items() if found_in(v.encode())}
    assert not leaked, leaked
    assert "****" in repr(resource)
