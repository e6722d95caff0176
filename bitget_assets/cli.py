"""`bitget-orders`: resolve the settings, start the demo exchange when no key is set, launch, report.

`extract` runs the same jobs the schedule and sensor run, in the same order: `scan_job`, then (once the new
symbols are registered as partitions) `update_symbols_job` over every partition, tagged with the scan run it
takes in. Its flags reach the steps as run config, never through the environment.
"""

import argparse
import fcntl
import functools
import gc
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from contextlib import ExitStack
from pathlib import Path

INTERRUPTED = 130  # what a shell reports for a command stopped by Ctrl-C


def account_job(job_name: str, account_name: str = "", streams: str = ""):
    """One of the code location's jobs, by name: how every process of a run (step processes, celery workers on
    other machines) rebuilds the job the CLI launched. `streams` (comma-separated) is the CLI's --streams: which
    datasets an account reads decides which assets its jobs hold, so it is part of the job, not of run config."""
    return _definitions(account_name, streams).resolve_job_def(job_name)


@functools.cache
def _definitions(account_name: str, streams: str):
    from bitget_assets.definitions import build_definitions, defs
    from bitget_assets.settings import load_settings, with_overrides

    settings = load_settings()
    wanted = with_overrides(settings, account_name, streams=tuple(streams.split(","))) if streams else settings
    # The code location's own definitions whenever the flags change nothing: a step process forked from the warm
    # forkserver then starts without building them again.
    return defs if wanted == settings else build_definitions(wanted)


def _job(account, base: str):
    import dagster as dg

    return dg.build_reconstructable_job("bitget_assets.cli", "account_job",
                                        (account.object_name(base), account.name, ",".join(account.streams)))


def _extract_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", default=None,
                   help="folder or s3://bucket/prefix (default $BITGET_OUTPUT or data; each of several "
                        "accounts gets a sub-folder named after it)")
    p.add_argument("--account", default=None, help="only this account of $BITGET_ACCOUNTS")
    p.add_argument("--product-types", nargs="+", default=None, metavar="TYPE")
    p.add_argument("--streams", nargs="+", default=None, metavar="STREAM",
                   help="datasets to read besides orders: plan_orders (default on), fills (default off)")
    p.add_argument("--s3-endpoint-url", default=None, help="any S3-compatible server")
    p.add_argument("--demo-orders", type=int, default=None, help="size of the demo account (no credentials)")
    p.add_argument("--demo-symbols", type=int, default=None)
    p.add_argument("--demo-seed", type=int, default=None)
    p.add_argument("--demo-now", type=int, default=None, help="the demo exchange's data clock (ms)")
    p.add_argument("--quiet", action="store_true", help="no live progress line")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bitget-orders", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("extract", help="extract every futures order into sorted JSON, Parquet and CSV")
    _extract_options(ex)
    im = sub.add_parser("import", help="add Bitget website exports (futures order history) to the history, "
                        "then extract")
    im.add_argument("files", nargs="+", metavar="FILE", help="`Export futures order history-….csv` files")
    im.add_argument("--tz", default=None, help="the time zone the files' dates are in, e.g. Europe/Berlin "
                    "(Bitget's website shows it in your account settings; default $BITGET_IMPORT_TZ)")
    _extract_options(im)
    ui = sub.add_parser("ui", help="the Dagster UI (dagster dev) on the instance `extract` records its runs in")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    return parser


def _resolve(args, parser):
    """The settings, with the accounts this command runs and what its flags change on each."""
    from bitget_assets.settings import SettingsError, load_settings, parse_product_types, parse_streams, with_overrides
    from bitget_assets.storage import parse_location

    try:
        settings = load_settings()
        accounts = [settings.account(args.account)] if args.account else list(settings.accounts)
        for account in accounts:
            changes = {}
            if args.output is not None:
                several = account.name and len(settings.accounts) > 1 and not args.account
                changes["output"] = f"{args.output.rstrip('/')}/{account.name}" if several else args.output
            if args.product_types:
                changes["product_types"] = parse_product_types(args.product_types, "--product-types")
            if args.streams:
                changes["streams"] = parse_streams(args.streams, "--streams")
            settings = with_overrides(settings, account.name, **changes)
        accounts = [settings.account(a.name) for a in accounts]
        for account in accounts:
            parse_location(account.output)
    except (SettingsError, ValueError) as exc:
        parser.error(str(exc))
    return settings, accounts


def _open_instance(home: Path):
    """The Dagster instance in `home`, seeded with the project's dagster.yaml so `dagster dev` sees the runs."""
    import dagster as dg

    home.mkdir(parents=True, exist_ok=True)
    project_yaml = Path.cwd() / "dagster.yaml"
    if not (home / "dagster.yaml").exists():
        if project_yaml.exists():
            shutil.copy(project_yaml, home / "dagster.yaml")
        else:
            (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    # Creating the SQLite storages (and migrating them) must not race another run starting at the same time:
    # the loser dies on the schema set-up and the instance can be left with two alembic heads for good.
    with open(home / ".instance.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        instance = dg.DagsterInstance.from_config(str(home))
        instance.get_runs(limit=1)
    return instance


class _ProgressLine(threading.Thread):
    """Orders read, requests/s and symbols done / total on stderr: repainted in place on a terminal, a plain
    line every few seconds elsewhere (CI logs, `2> file`)."""

    def __init__(self, listener, started: float):
        super().__init__(daemon=True)
        self.listener, self.started, self.stop = listener, started, threading.Event()
        self.total_symbols = 0
        self.tty = sys.stderr.isatty()
        # (time, requests) over the last few seconds; the start counts, so the first line has a true rate
        self.recent: deque[tuple[float, float]] = deque([(started, 0.0)], maxlen=8)

    def run(self) -> None:
        while not self.stop.wait(0.5 if self.tty else 5.0):
            self.render()

    def text(self) -> str:
        p = self.listener.snapshot()
        now, requests = time.time(), p.get("requests", 0)
        self.recent.append((now, requests))
        (t0, r0), (t1, r1) = self.recent[0], self.recent[-1]
        rate = (r1 - r0) / (t1 - t0) if t1 > t0 else 0.0
        total = self.total_symbols or int(p.get("symbols", 0)) or "?"
        return (f"[{now - self.started:5.1f}s] {int(p.get('orders', 0)):>7} orders read, {int(requests)} requests "
                f"({rate:4.1f}/s) | symbols done {int(p.get('symbols_done', 0))}/{total}")

    def render(self) -> None:
        if self.tty:
            print(f"\r{self.text()}  ", end="", file=sys.stderr, flush=True)
        else:
            print(self.text(), file=sys.stderr, flush=True)

    def finish(self) -> None:
        if not self.is_alive():
            return
        self.stop.set()
        self.join()
        self.render()
        if self.tty:
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


def extract_accounts(settings, accounts, args) -> int:
    """Every account in its own process, side by side: one account's 429s, bad key or crash cannot stall another.

    Each prints its summary line; this adds the account's name to it. Exit code 1 if any account failed.
    """
    from bitget_assets.settings import child_environment

    procs = {}
    for account in accounts:
        cmd = [sys.executable, "-m", "bitget_assets.cli", "extract", "--account", account.name, "--quiet",
               "--output", account.output, "--product-types", *account.product_types, "--streams", *account.streams]
        if args.s3_endpoint_url:
            cmd += ["--s3-endpoint-url", args.s3_endpoint_url]
        procs[account.name] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                               env=child_environment())
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


def _start_step_forkserver(home: Path) -> None:
    """Start the forkserver that step processes are forked from now, while the scan reads, not after it.

    It imports dagster, polars and our code location; the multiprocess executor reuses a running forkserver
    with the same preload list. Steps forked from it write nothing to our stdout and stderr (they hold the summary
    line's reader, and Dagster's step processes print their debug events regardless of the run's log level):
    their output goes to DAGSTER_HOME/logs/steps.log, while failures reach the user through the run's events.
    It runs in a session of its own, so Ctrl-C reaches this command alone, which then stops the run.
    """
    import multiprocessing
    from multiprocessing import forkserver

    from bitget_assets.executors import FORKSERVER_PRELOAD

    multiprocessing.get_context("forkserver").set_forkserver_preload(FORKSERVER_PRELOAD)
    log = home / "logs" / "steps.log"
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


def _children_off_the_terminal(home: Path) -> None:
    """Point file descriptor 2, which every process this command starts inherits, at a log file, and keep the
    terminal for this command's own lines (sys.stderr). On Ctrl-C the terminal interrupts every process of the
    command; Dagster's helper processes (log tailers, orphan watchers) then print tracebacks of their own,
    which belong in the log, not under the message that says what happened."""
    log = home / "logs" / "children.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    terminal = os.dup(2)
    target = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(target, 2)
    os.close(target)
    sys.stderr = os.fdopen(terminal, "w", buffering=1, encoding="utf-8", errors="replace")
    # Our own warnings (a 429 pause, an account mid-upgrade) are for the user: they stay on the terminal. Other
    # libraries' records that no handler takes (SQLAlchemy's pool logs, with a traceback, a Ctrl-C that lands
    # while it closes a connection) reach logging's last-resort handler: it writes them to the log instead.
    ours = logging.getLogger("bitget_assets")
    ours.addHandler(logging.StreamHandler(sys.stderr))
    ours.setLevel(logging.WARNING)
    ours.propagate = False
    logging.lastResort = logging.StreamHandler(sys.__stderr__)
    logging.lastResort.setLevel(logging.WARNING)


def _interrupted_run(result) -> bool:
    """A run Dagster stopped because this command was interrupted (it reports that as a step failure)."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            err = event.step_failure_data.error
            while err is not None:
                if err.cls_name in ("DagsterExecutionInterruptedError", "KeyboardInterrupt"):
                    return True
                err = err.cause
    return False


def _demo_file(stack: ExitStack, args) -> str:
    """Start a demo exchange for this command and describe it in a private file the steps read."""
    from bitget_assets.demo import DemoExchange

    flags = {k: v for k, v in {"orders": args.demo_orders, "symbols": args.demo_symbols,
                               "seed": args.demo_seed}.items() if v is not None}
    demo = stack.enter_context(DemoExchange(now_ms=args.demo_now, **flags))
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="bitget-demo-"))
    path = Path(folder) / "exchange.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(demo.info, f)
    print(f"no BITGET_API_KEY set: using the embedded demo exchange at {demo.info['base_url']}", file=sys.stderr)
    return str(path)


def run_config(account, *, demo_file: str, progress_address: str, s3_endpoint_url: str | None) -> dict:
    """What the command's flags change, as run config: the UI shows it on the run, secrets never are in it."""
    from bitget_assets.resources import bitget_run_config

    bitget = bitget_run_config(account, demo_file)
    storage = {"location": account.output}
    if s3_endpoint_url:
        storage["s3_endpoint_url"] = s3_endpoint_url
    return {
        "resources": {
            account.bitget_key: {"config": bitget},
            account.storage_key: {"config": storage},
            "progress": {"config": {"address": progress_address}},
        },
        # Failures are summarised in one line; the full event log stays in the instance for the UI.
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
    }


def extract_account(settings, account, args) -> int:
    from bitget_assets.early_scan import EARLY_SCAN_TAG, start_early_scan
    from bitget_assets.progress import ProgressListener
    from bitget_assets.settings import default_dagster_home

    started = time.time()
    home = default_dagster_home(settings)
    _children_off_the_terminal(home)
    s3_endpoint_url = args.s3_endpoint_url or settings.s3_endpoint_url
    with ExitStack() as stack:
        demo_file = "" if account.credential_vars else _demo_file(stack, args)
        listener = stack.enter_context(ProgressListener())
        # Shown from the start: Dagster's import and instance take seconds the scan is already reading in.
        line = _ProgressLine(listener, started)
        if not args.quiet:
            line.start()
            stack.callback(line.stop.set)  # an error before the run (instance, code location) ends it too
        # The scan needs no Dagster: it reads while Dagster is imported and its run is started.
        early = (start_early_scan(settings, account, demo_file=demo_file, progress_address=listener.address,
                                  s3_endpoint_url=s3_endpoint_url)
                 if settings.executor.kind == "multiprocess" else None)  # celery runs the scan step elsewhere
        if early is not None:
            stack.callback(early.cancel)  # a run that never took it over (failed, interrupted) stops it
        import dagster as dg

        from bitget_assets.assets import EXTRACTION_STARTED_TAG
        from bitget_assets.jobs import partition_range_tags
        from bitget_assets.lineage import SCAN_RUN_TAG, scan_of_run
        from bitget_assets.sensors import APPLIED_BY_LAUNCHER_TAG

        instance = stack.enter_context(_open_instance(home))
        if settings.executor.kind == "multiprocess":
            _start_step_forkserver(home)
        import bitget_assets.definitions  # noqa: F401 - loaded before the freeze below, not during the scan

        # What is loaded now lives as long as the command: kept out of the cyclic collector's walks, a full
        # collection during the scan no longer stalls every thread (and with it a request past its slot).
        gc.freeze()
        config = run_config(account, demo_file=demo_file, progress_address=listener.address,
                            s3_endpoint_url=s3_endpoint_url)
        tags = {EXTRACTION_STARTED_TAG: str(started)}
        try:
            early_tag = {EARLY_SCAN_TAG: early.scan_id} if early is not None else {}
            scan = dg.execute_job(_job(account, "scan_job"), instance=instance, run_config=config,
                                  tags=tags | early_tag | {APPLIED_BY_LAUNCHER_TAG: "bitget-orders"})
            if not scan.success:
                raise KeyboardInterrupt if _interrupted_run(scan) else RuntimeError(_failure_text(scan))
            scan_meta = _metadata(scan, account.asset_key("order_scan"))[-1]
            found = scan_of_run(instance, scan.run_id, account.asset_key("order_scan"))
            registered = set(instance.get_dynamic_partitions(account.partitions_name))
            new = [k for k in found.symbols if k not in registered]
            if new:
                instance.add_dynamic_partitions(account.partitions_name, new)
            keys = instance.get_dynamic_partitions(account.partitions_name)
            line.total_symbols = len(keys)
            if not keys:
                raise RuntimeError("the account has no orders in any configured product type")
            run = dg.execute_job(_job(account, "update_symbols_job"), instance=instance, run_config=config,
                                 tags=tags | partition_range_tags(keys) | {SCAN_RUN_TAG: scan.run_id})
            if not run.success:
                raise KeyboardInterrupt if _interrupted_run(run) else RuntimeError(_failure_text(run))
        except KeyboardInterrupt:
            line.stop.set()
            raise
        except RuntimeError as exc:
            line.finish()
            print(f"bitget-orders: extraction failed: {exc}", file=sys.stderr)
            return 1
        line.finish()
        out = _metadata(run, account.asset_key("sorted_orders"))[-1]
        per_symbol = _metadata(run, account.asset_key("symbol_orders"))
        others = {ds: _metadata(run, account.asset_key(f"sorted_{ds}"))[-1]["count"]
                  for ds in account.streams if ds != "orders"}
        failed_checks = sorted({f"{e.asset_key.to_user_string()}:{e.check_name}"
                                for e in run.get_asset_check_evaluations() if not e.passed})
        summary = {
            "orders": out["count"],
            **others,
            "symbols": out["symbols"],
            "requests": scan_meta["requests"] + sum(m.get("requests", 0) for m in per_symbol),
            "rate_limited": scan_meta["rate_limited_429"] + sum(m.get("rate_limited_429", 0) for m in per_symbol),
            "elapsed_s": round(time.time() - started, 2),
            "output": out["json_uri"],
        }
        counts = [f"{summary['orders']} orders", *(f"{n} {ds.replace('_', ' ')}" for ds, n in others.items())]
        print(f"{', '.join(counts)} of {summary['symbols']} symbols in {summary['elapsed_s']} s -> "
              f"{summary['output']} (.parquet and .csv beside it, and each other dataset's files)", file=sys.stderr)
        if failed_checks:
            summary["failed_checks"] = failed_checks
            print(f"bitget-orders: checks not passed (see the UI): {', '.join(failed_checks)}", file=sys.stderr)
        print(json.dumps(summary), flush=True)
        return 0


def ui(settings, args) -> int:
    """`dagster dev` on the same instance as `extract` ($DAGSTER_HOME, else ./.dagster_home with dagster.yaml)."""
    from bitget_assets.settings import child_environment, default_dagster_home

    home = default_dagster_home(settings)
    _open_instance(home).dispose()
    cmd = [sys.executable, "-m", "dagster", "dev", "-m", "bitget_assets.definitions", "-h", args.host,
           "-p", str(args.port)]
    sys.stdout.flush()
    # its signals and exit code are the user's, as if they had typed it
    os.execve(sys.executable, cmd, child_environment(DAGSTER_HOME=str(home)))


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "ui":
        from bitget_assets.settings import load_settings

        return ui(load_settings(), args)
    settings, accounts = _resolve(args, parser)
    if args.command == "import":
        if len(accounts) > 1:
            parser.error("import into one account at a time: name it with --account")
        code = import_files(accounts[0], args)
        if code:
            return code
    if len(accounts) > 1:
        return extract_accounts(settings, accounts, args)
    return extract_account(settings, accounts[0], args)


def import_files(account, args) -> int:
    """Check every file first (a file that does not parse is refused whole, and then none is kept), then keep
    them under imports/ at the account's output location with the zone they were exported in."""
    from bitget_assets.imported import stage_import
    from bitget_assets.imports import ExportFileError, MissingTimeZoneError, parse_export
    from bitget_assets.resources import StorageResource

    tz = args.tz or account.import_tz
    checked = []
    for path in map(Path, args.files):
        try:
            data = path.read_bytes()
            rows = parse_export(data, tz=tz, file_name=path.name)
        except (OSError, ExportFileError, MissingTimeZoneError) as exc:
            print(f"bitget-orders: nothing imported: {exc}", file=sys.stderr)
            return 1
        checked.append((path.name, data, rows.height))
    storage = StorageResource(location=account.output, s3_endpoint_url=args.s3_endpoint_url).get_storage()
    for name, data, n in checked:
        stage_import(storage, name, data, tz)
        print(f"imported {n} orders from {name} (dates read in {tz})", file=sys.stderr)
    return 0


def _interrupted() -> None:
    # Every step writes atomically and the next run resumes from what was committed, so stopping is safe.
    print("\nbitget-orders: interrupted. Nothing written so far is lost, and no file is left half-written; "
          "run the same command again to resume.", file=sys.stderr, flush=True)


def console() -> None:
    """The `bitget-orders` command: run, then exit without the interpreter's teardown.

    Finalizing a heap that holds dagster, sqlalchemy and polars takes seconds after the work is done
    (docs/performance.md); by then every file is written and closed, the instance closed and the demo
    exchange stopped, so nothing is lost by skipping it.
    """
    try:
        code = main()
    except KeyboardInterrupt:
        _interrupted()
        code = INTERRUPTED
    except Exception as exc:  # Dagster reports a Ctrl-C inside a run as its own interruption error
        if type(exc).__name__ != "DagsterExecutionInterruptedError":
            raise
        _interrupted()
        code = INTERRUPTED
    sys.stdout.flush()
    sys.stderr.flush()
    # Threads still printing (progress, Dagster's orphan watcher) must not add a traceback after our last line.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os._exit(code)


if __name__ == "__main__":
    console()
