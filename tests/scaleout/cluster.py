"""Processes the scale-out tests start: celery workers in process groups of their own, stopped for sure."""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require(ok: bool, what: str) -> None:
    """Skip without the service on a laptop; fail in CI."""
    if ok:
        return
    if in_ci():
        pytest.fail(f"{what} is not available, and CI is set: the scale-out tests must run in CI", pytrace=False)
    pytest.skip(f"{what} is not available (with CI set this fails)")


def require_module(name: str):
    try:
        return __import__(name)
    except ImportError:
        require(False, f"the Python package {name!r} (pip install -e '.[test]')")


def run_tag() -> str:
    return f"bitget_test_{uuid.uuid4().hex[:10]}"


def delete_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def kill_group(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    """Signal a process started with start_new_session=True and everything it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def stop_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    if proc.poll() is None:
        kill_group(proc, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    kill_group(proc, signal.SIGKILL)  # pool children outlive a worker whose main process already exited
    if proc.poll() is None:
        proc.wait(timeout=10)


class Worker:
    """One dagster-celery worker node (a main process and its pool processes) in a process group of its own."""

    def __init__(self, name: str, env: dict, folder: Path, concurrency: int = 2):
        self.name, self.log = name, folder / f"{name}.log"
        cmd = [sys.executable, "-m", "celery", "-A", "bitget_assets.celery_app", "worker", "-n", f"{name}@%h",
               "--concurrency", str(concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if " ready." in self.text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"celery worker {self.name} did not start:\n{self.text()[-3000:]}")

    def received(self) -> set[str]:
        return _task_ids(self.text(), "] received")

    def in_flight(self) -> set[str]:
        text = self.text()
        done = _task_ids(text, "] succeeded") | _task_ids(text, "] raised") | _task_ids(text, "] failed")
        return _task_ids(text, "] received") - done

    def kill(self) -> None:
        kill_group(self.proc)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        stop_group(self.proc)


def _task_ids(text: str, marker: str) -> set[str]:
    out = set()
    for line in text.splitlines():
        if "Task execute_plan[" in line and marker in line:
            out.add(line.split("Task execute_plan[", 1)[1].split("]", 1)[0])
    return out
