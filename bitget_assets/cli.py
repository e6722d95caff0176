"""`bitget-orders extract`: the whole pipeline in one command, through the same Dagster assets as the UI."""

import argparse
import fcntl
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from contextlib import ExitStack
from pathlib import Path

from bitget_assets.bitget import DEMO_PRODUCT_TYPES, PRODUCT_TYPES
from bitget_assets.progress import PROGRESS_ENV, read_progress
from bitget_assets.storage import parse_location


def account_job(job_name: str):
    """One of the code location's jobs, by name: how every process of a run (step processes, celery workers on
    other machines) rebuilds the job the CLI launched (see `_job`)."""
    from bitget_assets.definitions import defs

    return defs.resolve_job_def(job_name)


def _job(account, base: str):
    import dagster as dg

    return dg.build_reconstructable_job("bitget_assets.cli", "account_job", (account.object_name(base),))


def _parse_args(argv):
    from bitget_assets.accounts import account_named, configured_accounts

    parser = argparse.ArgumentParser(prog="bitget-orders", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="extract every futures order into sorted JSON and Parquet")
    ex.add_argument("--output", default=None,
                    help="folder or s3://bucket/prefix (default $BITGET_OUTPUT or data; each of several "
                         "accounts gets a sub-folder named after it)")
    ex.add_argument("--account", default=None, help="only this account of $BITGET_ACCOUNTS")
    ex.add_argument("--product-types", nargs="+", default=None, metavar="TYPE")
    ex.add_argument("--s3-endpoint-url", default=os.environ.get("BITGET_S3_ENDPOINT_URL"))
    ex.add_argument("--demo-orders", type=int, default=None, help="size of the demo account (no credentials)")
    ex.add_argument("--demo-symbols", type=int, default=None)
    ex.add_argument("--demo-seed", type=int, default=None)
    ex.add_argument("--demo-now", type=int, default=None, help="the demo exchange's data clock (ms)")
    ex.add_argument("--quiet", action="store_true", help="no live progress line")
    ui = sub.add_parser("ui", help="the Dagster UI (dagster dev) on the instance `extract` records its runs in")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    if args.command == "ui":
        return args
    try:
        args.accounts = [account_named(args.account)] if args.account else configured_accounts()
        for account in args.accounts:
            parse_location(_output_of(args, account))
    except ValueError as exc:
        parser.error(str(exc))
    for account in args.accounts:
        types = args.product_types or (account.setting("PRODUCT_TYPES") or ",".join(PRODUCT_TYPES)).split(",")
        unknown = [t for t in types if t not in PRODUCT_TYPES + DEMO_PRODUCT_TYPES]
        if unknown:
            parser.error(f"unknown product type(s) {', '.join(unknown)}; known: {', '.join(PRODUCT_TYPES)}")
    return args


def _output_of(args, account) -> str:
    if args.output is None:
        return account.output()
    return f"{args.output.rstrip('/')}/{account.name}" if account.name and len(args.accounts) > 1 else args.output


def _dagster_home() -> Path:
    """$DAGSTER_HOME, or ./.dagster_home seeded with the project's dagster.yaml, so `dagster dev` sees runs."""
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    project_yaml = Path.cwd() / "dagster.yaml"
    if not (home / "dagster.yaml").exists():
        if project_yaml.exists():
            shutil.copy(project_yaml, home / "dagster.yaml")
        else:
            (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    # Creating the SQLite storages (and migrating them) must not race another run starting at the same time:
    # the loser dies on the schema set-up and the instance can be left with two alembic heads for good.
    import dagster as dg

    with open(home / ".instance.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with dg.DagsterInstance.get() as instance:
            instance.get_runs(limit=1)
    return home


class _ProgressLine(threading.Thread):
    """Shows orders read, requests/s and symbols done / total on stderr while the runs work."""

    def __init__(self, folder: str, started: float):
        super().__init__(daemon=True)
        self.folder, self.started, self.stop = folder, started, threading.Event()
        self.total_symbols = 0
        self.recent: deque[tuple[float, float]] = deque(maxlen=8)  # (time, requests) over the last ~4 s

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.render()

    def render(self) -> None:
        p = read_progress(self.folder)
        now, requests = time.time(), p.get("requests", 0)
        self.recent.append((now, requests))
        (t0, r0), (t1, r1) = self.recent[0], self.recent[-1]
        rate = (r1 - r0) / (t1 - t0) if t1 > t0 else 0.0
        total = self.total_symbols or int(p.get("symbols", 0)) or "?"
        print(
            f"\r[{now - self.started:5.1f}s] {int(p.get('orders', 0)):>7} orders read, {int(requests)} requests "
            f"({rate:4.1f}/s) | symbols done {int(p.get('symbols_done', 0))}/{total}  ",
            end="", file=sys.stderr, flush=True,
        )

    def finish(self) -> None:
        self.stop.set()
        self.join()
        self.render()
        print(file=sys.stderr)


def _failure_text(result) -> str:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            err = event.step_failure_data.error
            while err.cause is not None and err.cls_name in ("DagsterExecutionStepExecutionError",):
                err = err.cause
            # "pkg.module.BitgetAuthError: text" -> "BitgetAuthError: text"
            head, sep, text = err.message.strip().partition(": ")
            return f"{event.step_key}: {head.rsplit('.', 1)[-1]}{sep}{text}"
    return "the Dagster run failed (see the run's logs in the UI)"


def _metadata(result, asset_key) -> list[dict]:
    out = []
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            if mat.asset_key == asset_key:
                out.append({k: getattr(v, "value", v) for k, v in mat.metadata.items()})
    return out


def extract(args) -> int:
    if len(args.accounts) > 1:
        return extract_accounts(args)
    return extract_account(args, args.accounts[0])


def extract_accounts(args) -> int:
    """Every account in its own process, side by side: one account's 429s, bad key or crash cannot stall another.

    Each prints its summary line; this adds the account's name to it. Exit code 1 if any account failed.
    """
    passthrough = ["--quiet"]
    if args.product_types:
        passthrough += ["--product-types", *args.product_types]
    if args.s3_endpoint_url:
        passthrough += ["--s3-endpoint-url", args.s3_endpoint_url]
    procs = {}
    for account in args.accounts:
        cmd = [sys.executable, "-m", "bitget_assets.cli", "extract", "--account", account.name, *passthrough]
        if args.output is not None:
            cmd += ["--output", _output_of(args, account)]
        procs[account.name] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    print(f"extracting {len(procs)} accounts side by side: {', '.join(procs)}", file=sys.stderr)
    failed = []
    for name, proc in procs.items():
        out, err = proc.communicate()
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        if proc.returncode == 0 and lines:
            print(json.dumps({"account": name, **json.loads(lines[-1])}), flush=True)
        else:
            failed.append(name)
            last = err.strip().splitlines()[-1] if err.strip() else f"exit code {proc.returncode}"
            print(f"bitget-orders: account {name}: {last.removeprefix('bitget-orders: ')}", file=sys.stderr)
    return 1 if failed else 0


def _start_step_forkserver() -> None:
    """Start the forkserver that step processes are forked from now, while the scan reads, not after it.

    It imports dagster, polars and our code location (2-3 s); the multiprocess executor reuses a running
    forkserver with the same preload list. It inherits this process's environment, so call it once that is set.
    Steps forked from it write nothing to our stdout and stderr (they hold the summary line's reader, and
    Dagster's step processes print their debug events regardless of the run's log level): their output goes to
    $DAGSTER_HOME/logs/steps.log, while failures reach the user through the run's events.
    """
    import multiprocessing
    from multiprocessing import forkserver

    from bitget_assets.executors import executor_kind
    from bitget_assets.jobs import FORKSERVER_PRELOAD

    if executor_kind() != "multiprocess":
        return
    multiprocessing.get_context("forkserver").set_forkserver_preload(FORKSERVER_PRELOAD)
    log = Path(os.environ["DAGSTER_HOME"]) / "logs" / "steps.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    targets = os.open(os.devnull, os.O_WRONLY), os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.dup2(targets[0], 1)
        os.dup2(targets[1], 2)
        forkserver.ensure_running()
    finally:
        for fd, original in zip((1, 2), saved, strict=True):
            os.dup2(original, fd)
            os.close(original)
        for fd in targets:
            os.close(fd)


def extract_account(args, account) -> int:
    import dagster as dg

    from bitget_assets.assets import EXTRACTION_STARTED_TAG
    from bitget_assets.demo import DemoExchange
    from bitget_assets.jobs import partition_range_tags

    started = time.time()
    _dagster_home()
    with ExitStack() as stack:
        if not account.name and not os.environ.get("BITGET_API_KEY"):
            flags = {k: v for k, v in {"orders": args.demo_orders, "symbols": args.demo_symbols,
                                       "seed": args.demo_seed}.items() if v is not None}
            demo = stack.enter_context(DemoExchange(now_ms=args.demo_now, **flags))
            os.environ.update(demo.environment())
            print(f"no BITGET_API_KEY set: using the embedded demo exchange at {demo.info['base_url']}",
                  file=sys.stderr)
        progress_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="bitget-progress-"))
        os.environ |= {
            PROGRESS_ENV: progress_dir,
            account.env_var("OUTPUT"): _output_of(args, account),
        }
        if args.product_types:
            os.environ[account.env_var("PRODUCT_TYPES")] = ",".join(args.product_types)
        if args.s3_endpoint_url:
            os.environ["BITGET_S3_ENDPOINT_URL"] = args.s3_endpoint_url
        _start_step_forkserver()
        instance = stack.enter_context(dg.DagsterInstance.get())
        import bitget_assets.definitions  # noqa: F401 - loaded before the freeze below, not during the scan

        # What is loaded now lives as long as the command: kept out of the cyclic collector's walks, a full
        # collection during the scan no longer stalls every thread (and with it a request past its slot).
        gc.freeze()
        line = _ProgressLine(progress_dir, started)
        if not args.quiet:
            line.start()
        tags = {EXTRACTION_STARTED_TAG: str(started)}
        # Failures are summarised in one line below; the full event log stays in the instance for the UI.
        quiet_logs = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
        partitions = account.partitions_name
        try:
            scan = dg.execute_job(
                _job(account, "scan_job"), instance=instance, tags=tags, run_config=quiet_logs
            )
            if not scan.success:
                raise RuntimeError(_failure_text(scan))
            scan_meta = _metadata(scan, account.asset_key("order_scan"))[-1]
            registered = set(instance.get_dynamic_partitions(partitions))
            new = [k for k in scan_meta["new_symbols"] if k not in registered]
            if new:
                instance.add_dynamic_partitions(partitions, new)
            keys = instance.get_dynamic_partitions(partitions)
            line.total_symbols = len(keys)
            if not keys:
                raise RuntimeError("the account has no orders in any configured product type")
            run = dg.execute_job(
                _job(account, "extract_job"),
                instance=instance,
                tags=tags | partition_range_tags(keys),
                run_config=quiet_logs,
            )
            if not run.success:
                raise RuntimeError(_failure_text(run))
        except RuntimeError as exc:
            if line.is_alive():
                line.finish()
            print(f"bitget-orders: extraction failed: {exc}", file=sys.stderr)
            return 1
        if line.is_alive():
            line.finish()
        out = _metadata(run, account.asset_key("sorted_orders"))[-1]
        per_symbol = _metadata(run, account.asset_key("symbol_orders"))
        summary = {
            "orders": out["count"],
            "symbols": out["symbols"],
            "requests": scan_meta["requests"] + sum(m.get("requests", 0) for m in per_symbol),
            "rate_limited": scan_meta["rate_limited_429"] + sum(m.get("rate_limited_429", 0) for m in per_symbol),
            "elapsed_s": round(time.time() - started, 2),
            "output": out["json_uri"],
        }
        print(f"{summary['orders']} orders of {summary['symbols']} symbols in {summary['elapsed_s']} s -> "
              f"{summary['output']} (and orders.parquet beside it)", file=sys.stderr)
        print(json.dumps(summary), flush=True)
        return 0


def ui(args) -> int:
    """`dagster dev` on the same instance as `extract` ($DAGSTER_HOME, else ./.dagster_home with dagster.yaml)."""
    _dagster_home()
    cmd = [sys.executable, "-m", "dagster", "dev", "-m", "bitget_assets.definitions", "-h", args.host,
           "-p", str(args.port)]
    sys.stdout.flush()
    os.execv(sys.executable, cmd)  # its signals and exit code are the user's, as if they had typed it


def main(argv=None) -> int:
    args = _parse_args(argv)
    if args.command == "extract":
        return extract(args)
    if args.command == "ui":
        return ui(args)
    return 2


def console() -> None:
    """The `bitget-orders` command: run, then exit without the interpreter's teardown.

    Finalizing a heap that holds dagster, sqlalchemy and polars takes ~2 s after the work is done
    (docs/performance.md); by then every file is written and closed, the instance closed and the demo
    exchange stopped, so nothing is lost by skipping it.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    console()
