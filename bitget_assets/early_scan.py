"""The CLI's account scan, started before Dagster is imported.

Importing Dagster, opening its instance and starting a run take seconds, and the scan needs none of it: only
the client, the shared limiter and the output location (connections.py). So `bitget-orders extract` starts the
scan in a thread first, then launches its scan run with the scan's id in the run tag EARLY_SCAN_TAG; that run's
`order_scan` step takes the scan over (`take`) instead of reading again, waits for it and records it. It is the
step's own code (extraction.run_account_scan) on the same limiter and storage, so what is read, staged and
committed is the same; only its start moves. This module must not import Dagster.
"""

import os
import threading
import uuid
from dataclasses import dataclass

from bitget_assets.accounts import Account
from bitget_assets.bitget import Credentials
from bitget_assets.connections import demo_credentials, open_client, open_settings_limiter, open_storage
from bitget_assets.extraction import AccountScan, run_account_scan
from bitget_assets.progress import ProgressSender
from bitget_assets.scan import DEFAULT_CONCURRENCY
from bitget_assets.settings import Settings

EARLY_SCAN_TAG = "bitget/early_scan_id"

_STARTED: dict[str, "EarlyScan"] = {}  # scan id -> the scan this process started and no step has taken yet
_STARTED_LOCK = threading.Lock()


class ScanCancelled(Exception):
    """The command stopped before its scan run took the early scan over."""


@dataclass(frozen=True)
class ScanPlan:
    """What decides which requests a scan makes: the step checks it matches its own resources."""

    product_types: tuple[str, ...]
    streams: tuple[str, ...]
    concurrency: int
    base_url: str


class _Messages:
    """A log for the scan's thread: what it says reaches the step's log once the step takes the scan over."""

    def __init__(self):
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)


class EarlyScan:
    def __init__(self, plan: ScanPlan, run):
        self.plan = plan
        self.scan_id = str(uuid.uuid4())
        self.log = _Messages()
        self._run = run  # (scan id, on_page, log) -> AccountScan
        self._stop = threading.Event()
        self._outcome: AccountScan | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="early-scan", daemon=True)

    def start(self) -> "EarlyScan":
        with _STARTED_LOCK:
            _STARTED[self.scan_id] = self
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            self._outcome = self._run(self.scan_id, self._on_page, self.log)
        except BaseException as exc:  # handed to the step that takes the scan over
            self._error = exc

    def _on_page(self, chain, rows) -> None:
        if self._stop.is_set():
            raise ScanCancelled("the command stopped")

    def result(self, plan: ScanPlan) -> AccountScan:
        """Wait for the scan; its error, if it failed, is raised here as if the step had met it."""
        if plan != self.plan:
            self.cancel()
            raise ValueError(f"the early scan read {self.plan}, but this run's resources say {plan}")
        while self._thread.is_alive():
            self._thread.join(0.2)  # a timed join: Ctrl-C still reaches the waiting thread
        if self._error is not None:
            raise self._error
        assert self._outcome is not None
        return self._outcome

    def cancel(self, wait_s: float = 10.0) -> None:
        """Stop at the next page; the scan's spool is removed as it unwinds, and nothing is committed."""
        self._stop.set()
        self._thread.join(wait_s)


def take(scan_id: str) -> EarlyScan | None:
    """The early scan `scan_id` if this process started it; a scan is taken over once."""
    with _STARTED_LOCK:
        return _STARTED.pop(scan_id, None)


def account_credentials(account: Account, demo_file: str) -> Credentials | None:
    """The account's credentials as its `bitget` resource will read them, or None when they are incomplete
    (the step then reports which are missing, as it would without an early scan)."""
    if not account.credential_vars:
        return demo_credentials(demo_file)
    values = [os.environ.get(var, "") for var in account.credential_vars]
    if not all(values):
        return None
    return Credentials(*values, base_url=account.base_url)


def start_early_scan(settings: Settings, account: Account, *, demo_file: str, progress_address: str,
                     s3_endpoint_url: str | None) -> EarlyScan | None:
    """Start reading `account` now, on the limiter and storage its steps use; None if it cannot start early."""
    credentials = account_credentials(account, demo_file)
    if credentials is None:
        return None
    limiter = open_settings_limiter(settings.rate_limit)
    client = open_client(credentials, limiter, read_timeout_s=account.read_timeout_s,
                         ip_requests_per_second=account.ip_requests_per_second,
                         rate_limited_patience_s=account.rate_limited_patience_s)
    storage = open_storage(account.output, s3_endpoint_url)
    plan = ScanPlan(tuple(account.product_types), tuple(account.streams), DEFAULT_CONCURRENCY, credentials.base_url)
    progress = ProgressSender(progress_address, "scan")

    def run(scan_id: str, on_page, log) -> AccountScan:
        def page(chain, rows):
            on_page(chain, rows)
            progress.add(requests=1, orders=len(rows))

        try:
            return run_account_scan(client, storage, list(plan.product_types), plan.streams, scan_id=scan_id,
                                    concurrency=plan.concurrency, on_page=page, log=log)
        finally:
            progress.close()

    return EarlyScan(plan, run).start()
