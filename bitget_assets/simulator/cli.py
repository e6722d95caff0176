"""`bitget-sim`: run the simulator (`serve`), print an account's ground truth (`truth`) or write its website
export files (`export`)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from .accounts import AccountSpec
from .config import EMPTY_STYLES, SimulatorConfig
from .faults import FaultConfig
from .server import Simulator
from .store import DATASETS, truth_blobs_for

EXPORT_HELP = "write the account's full history as Bitget's futures order-history export files (one per product type)"


def _add_spec_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("account generation (same flags -> same orders)")
    g.add_argument("--account", default="demo", help="account name (default demo)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--orders", type=int, default=1000, help="orders the API can return at --now")
    g.add_argument("--symbols", type=int, default=10)
    g.add_argument("--now", type=int, default=None, help="data clock anchor, ms (default: wall clock)")
    g.add_argument("--history-days", type=int, default=120)
    g.add_argument("--expired-fraction", type=float, default=0.1)
    g.add_argument("--open-orders", type=int, default=None)
    g.add_argument("--tail-max", type=int, default=5)
    g.add_argument("--product-types", default="USDT-FUTURES,COIN-FUTURES,USDC-FUTURES")
    g.add_argument("--retention-days", type=int, default=90)
    g.add_argument("--no-exotic-symbols", dest="exotic_symbols", action="store_false",
                   help="no 龙虾USDT / $DEGENUSDT among the symbols (they appear from 20 symbols on)")
    g.add_argument("--plan-fraction", type=float, default=0.12, help="history plan orders per order")
    g.add_argument("--open-plans", type=int, default=None, help="live plan orders")


def _spec(a: argparse.Namespace) -> AccountSpec:
    return AccountSpec(name=a.account, seed=a.seed, orders=a.orders, symbols=a.symbols, now_ms=a.now,
                       history_days=a.history_days, expired_fraction=a.expired_fraction,
                       open_orders=a.open_orders, tail_max=a.tail_max,
                       product_types=tuple(t.strip() for t in a.product_types.split(",") if t.strip()),
                       retention_days=a.retention_days, exotic_symbols=a.exotic_symbols,
                       plan_fraction=a.plan_fraction, open_plans=a.open_plans)


def _latency(text: str) -> tuple[float, float] | None:
    if text in ("0", "", "off"):
        return None
    lo, _, hi = text.partition("-")
    return (float(lo), float(hi or lo))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bitget-sim", description="Bitget v2 futures API simulator")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="serve the API on 127.0.0.1; prints one JSON line with credentials")
    _add_spec_args(s)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0, help="0 = random free port")
    s.add_argument("--rate-limit", type=int, default=10, help="per account and endpoint per second, 0 = off")
    s.add_argument("--public-rate-limit", type=int, default=20, help="per IP per second, 0 = off")
    s.add_argument("--max-span-days", type=float, default=90)
    s.add_argument("--fills-span-days", type=float, default=90, help="/mix/order/fills span (40705 beyond)")
    s.add_argument("--fill-history-span-days", type=float, default=7, help="fill-history span (00001 beyond)")
    s.add_argument("--latency", default="0", help="seconds, e.g. 0.08-0.2 (0 = off)")
    for name, help_ in (("5xx", "HTTP 502/503 HTML"), ("429", "start a 429 burst"), ("reset", "connection reset"),
                        ("slow", "answer late"), ("truncated", "body cut in half"),
                        ("200", "HTTP 200 with error code 40015")):
        s.add_argument(f"--fault-{name}", type=float, default=0.0, help=f"probability per request: {help_}")
    s.add_argument("--fault-burst-len", type=int, default=5)
    s.add_argument("--fault-slow-seconds", type=float, default=15.0)
    s.add_argument("--fault-public", action="store_true", help="faults on public endpoints too")
    s.add_argument("--request-log", default=None, help="append the request log here as JSONL")
    s.add_argument("--admin-token", default=None)
    s.add_argument("--freeze", action="store_true", help="freeze the data clock at --now")
    s.add_argument("--timestamp-tolerance", type=float, default=30)
    s.add_argument("--empty-style", choices=EMPTY_STYLES, default="mixed")
    _add_2026_args(s)
    t = sub.add_parser("truth", help="print the ground truth as JSONL sorted by (cTime, orderId | tradeId)")
    _add_spec_args(t)
    t.add_argument("--dataset", choices=DATASETS, default="orders", help="rows to print (default orders)")
    t.add_argument("--all", action="store_true", help="every row ever created, expired ones included")
    e = sub.add_parser("export", help=EXPORT_HELP)
    _add_spec_args(e)
    e.add_argument("--tz", required=True, help="IANA zone the dates are written in, e.g. Europe/Berlin")
    e.add_argument("--out", required=True, help="directory for the files")
    e.add_argument("--from-month", help="first month exported, YYYY-MM in --tz (with --to-month)")
    e.add_argument("--to-month", help="last month exported, YYYY-MM in --tz (inclusive)")
    e.add_argument("--start-ms", type=int, help="export orders with cTime >= this (instead of months)")
    e.add_argument("--end-ms", type=int, help="export orders with cTime < this (instead of months)")
    e.add_argument("--no-cancelled", action="store_true", help="leave cancelled orders out")
    e.add_argument("--semicolon", action="store_true", help="separate fields with ';' instead of ','")
    return p


def _add_2026_args(s: argparse.ArgumentParser) -> None:
    g = s.add_argument_group("live-exchange behaviour (issue 12)")
    g.add_argument("--clock-skew-s", type=float, default=None,
                   help="server clock = this machine's clock + N s (anchors the data there; excludes --now)")
    g.add_argument("--strict-clock", action="store_true",
                   help="check signature timestamps against the server clock only (not this machine's)")
    g.add_argument("--unified", action="store_true", help="the account is in unified (UTA, v3) mode")
    g.add_argument("--mode-transition-s", type=float, default=60.0, help="upgrading/switching lasts this long")
    g.add_argument("--v3-rate-limit", type=int, default=20, help="v3 per account and endpoint per second, 0 = off")
    g.add_argument("--ip-limit", type=int, default=0, help="requests per IP per --ip-window-s (Bitget 6000), 0 = off")
    g.add_argument("--ip-window-s", type=float, default=60.0)
    g.add_argument("--ip-lockout-s", type=float, default=300.0, help="HTTP 429 this long after the ceiling is hit")
    g.add_argument("--release-window", type=float, default=0.0,
                   help="probability per signed request of a release-window error (45001/40725/40808/40015/40200)")
    g.add_argument("--release-http400", type=float, default=0.5, help="share of those sent with HTTP 400")


def _config_2026(a: argparse.Namespace) -> dict:
    if a.clock_skew_s is not None and a.now is not None:
        raise SystemExit("bitget-sim: --clock-skew-s anchors the clock at this machine's + N s; drop --now")
    return {"clock_skew_s": a.clock_skew_s, "accept_wall_clock": not a.strict_clock,
            "account_modes": {a.account: "unified"} if a.unified else {},
            "mode_transition_s": a.mode_transition_s, "v3_rate_limit": a.v3_rate_limit or None,
            "ip_limit": a.ip_limit or None, "ip_window_s": a.ip_window_s, "ip_lockout_s": a.ip_lockout_s}


def _serve(a: argparse.Namespace) -> int:
    faults = FaultConfig(error_5xx=a.fault_5xx, burst_429=a.fault_429, reset=a.fault_reset, slow=a.fault_slow,
                         truncated=a.fault_truncated, error_200=a.fault_200, burst_len=a.fault_burst_len,
                         slow_seconds=a.fault_slow_seconds, only_signed=not a.fault_public,
                         release_window=a.release_window, release_http400=a.release_http400)
    cfg = SimulatorConfig(rate_limit=a.rate_limit or None, public_rate_limit=a.public_rate_limit or None,
                          max_span_days=a.max_span_days, retention_days=a.retention_days,
                          fills_span_days=a.fills_span_days, fill_history_span_days=a.fill_history_span_days,
                          latency=_latency(a.latency), faults=faults, seed=a.seed,
                          request_log_path=a.request_log, admin_token=a.admin_token, frozen=a.freeze,
                          timestamp_tolerance_s=a.timestamp_tolerance, empty_style=a.empty_style,
                          host=a.host, port=a.port, **_config_2026(a))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sim = Simulator([_spec(a)], cfg).start()
    try:
        info = {"base_url": sim.base_url, **sim.credentials(a.account), "admin_token": sim.admin_token,
                "now_ms": sim.now_ms()}
        print(json.dumps(info), flush=True)
        while not stop.wait(0.2):
            pass
    finally:
        sim.stop()
    return 0


def _truth(a: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    for blob in truth_blobs_for(_spec(a), a.retention_days, a.dataset, a.all):
        out.write(blob + b"\n")
    out.flush()
    return 0


def _export(a: argparse.Namespace) -> int:
    from .accounts import generate_account
    from .export import month_range_ms, write_exports

    start, end = a.start_ms, a.end_ms
    if a.from_month or a.to_month:
        if start is not None or end is not None or not (a.from_month and a.to_month):
            raise SystemExit("give --from-month and --to-month together, or --start-ms/--end-ms")
        start, end = month_range_ms(a.from_month, a.to_month, a.tz)
    files = write_exports(generate_account(_spec(a)), a.out, tz=a.tz, start_ms=start, end_ms=end,
                          include_cancelled=not a.no_cancelled, delimiter=";" if a.semicolon else ",")
    print(json.dumps({pt: str(p) for pt, p in files.items()}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    return {"serve": _serve, "truth": _truth, "export": _export}[a.cmd](a)


def console() -> None:
    """The `bitget-sim` command. A reader that stops early (`bitget-sim truth ... | head`) ends it quietly."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would report the pipe again while flushing stdout at exit: point it at nothing first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)


if __name__ == "__main__":
    console()
