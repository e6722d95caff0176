"""`dagster dev` started by a test on 127.0.0.1 and always stopped, and its GraphQL API."""

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import requests

LOCATION = "bitget_assets.definitions"  # the code location's name under `dagster dev -m`


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- dagster dev, started and always stopped -----------------------------------------------------------------


def _graphql(base: str, query: str, variables: dict | None = None) -> dict:
    resp = requests.post(f"{base}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
    resp.raise_for_status()
    body = resp.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def _runs(base: str) -> dict[str, str]:
    """job name -> run id of every run in the instance (each job ran once), all of which must have succeeded."""
    results = _graphql(base, "{ runsOrError { ... on Runs { results { runId jobName status } } } }")
    results = results["runsOrError"]["results"]
    assert all(r["status"] == "SUCCESS" for r in results), results
    runs = {r["jobName"]: r["runId"] for r in results}
    assert len(runs) == len(results), results
    return runs


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def _wait_until_served(proc: subprocess.Popen, base: str, log: Path, timeout_s: float = 120) -> None:
    """/server_info answers, then the code location has loaded (or its load error is shown)."""
    deadline = time.time() + timeout_s
    while True:
        assert proc.poll() is None, f"dagster dev exited with {proc.returncode}:\n{_log_tail(log)}"
        assert time.time() < deadline, f"dagster dev did not serve within {timeout_s} s:\n{_log_tail(log)}"
        try:
            if requests.get(f"{base}/server_info", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        time.sleep(0.25)
    query = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
        name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"""
    while True:
        assert time.time() < deadline, f"the code location did not load within {timeout_s} s:\n{_log_tail(log)}"
        entries = _graphql(base, query)["workspaceOrError"].get("locationEntries", [])
        entry = next((e for e in entries if e["name"] == LOCATION), None)
        if entry and entry["loadStatus"] == "LOADED" and entry["locationOrLoadError"]:
            loaded = entry["locationOrLoadError"]
            assert loaded["__typename"] == "RepositoryLocation", loaded
            return
        time.sleep(0.25)


def _processes_in_group(pgid: int) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return found


def _family(proc: subprocess.Popen) -> set[psutil.Process]:
    """The group's processes and every descendant (a run worker may have left the group)."""
    family = set(_processes_in_group(proc.pid))
    with contextlib.suppress(psutil.NoSuchProcess):
        family |= set(psutil.Process(proc.pid).children(recursive=True))
    return family


def _alive(p: psutil.Process) -> bool:
    try:  # is_running() also compares the creation time, so a recycled pid does not count
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _stop(proc: subprocess.Popen) -> list[str]:
    """SIGTERM the group, wait a little, then SIGKILL the group and any straggler; what survived, if anything."""
    family = _family(proc)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)  # dagster dev rarely finishes its own shutdown this quickly
    psutil.wait_procs([p for p in family if _alive(p)], timeout=2)
    family |= {p for p in _family(proc) if _alive(p)}  # anything spawned during shutdown
    survivors = []
    for p in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            if _alive(p):
                survivors.append(" ".join(p.cmdline()[1:4]))
    print(f"\n[ui] {len(survivors)} of {len(family)} dagster dev processes outlived SIGTERM: {survivors}")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for p in family:  # descendants that moved to a session of their own (code server, daemon, run workers)
        if _alive(p):
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
    if proc.poll() is None:
        proc.wait(timeout=10)
    psutil.wait_procs(list(family), timeout=10)
    left = [p for p in family if _alive(p)] + [p for p in _processes_in_group(proc.pid) if p not in family]
    described = []
    for p in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            described.append(f"{p.pid} {' '.join(p.cmdline())[:160]}")
    return described


