"""`bitget-sim truth --dataset/--all` and the admin truth route agree with what a running server serves."""

import json
import os
import signal
import subprocess
import sys

import requests

from bitget_assets.simulator import AccountSpec, AdminClient, Simulator, SimulatorConfig
from bitget_assets.simulator.store import truth_blobs_for

from .activity import FILL_HISTORY, FILLS, PLAN_HISTORY, PLAN_PENDING, PLAN_TYPES, walk
from .conftest import NOW
from .helpers import TYPES, signed_get

DAY = 86_400_000

BIN = os.path.join(os.path.dirname(sys.executable), "bitget-sim")
FLAGS = ["--account", "tr", "--seed", "5", "--orders", "700", "--symbols", "21", "--now", str(NOW)]
SPEC = AccountSpec(name="tr", seed=5, orders=700, symbols=21, now_ms=NOW)


def _cli(*args):
    return subprocess.run([BIN, "truth", *FLAGS, *args], capture_output=True, check=True).stdout.splitlines()


def test_cli_datasets_match_a_served_walk_byte_for_byte():
    with Simulator([SPEC], SimulatorConfig(rate_limit=None, frozen=True, admin_token="tok")) as sim:
        creds, s = sim.credentials("tr"), requests.Session()
        plans, fills = [], []
        for pt in TYPES:
            fills += walk(sim.base_url, creds, FILLS, f"productType={pt}", session=s)
            for group in PLAN_TYPES:
                for path in (PLAN_HISTORY, PLAN_PENDING):
                    plans += walk(sim.base_url, creds, path, f"productType={pt}&planType={group}", session=s)
        admin = AdminClient(sim.base_url, "tok")
        served = {"plan_orders": admin.truth("tr", dataset="plan_orders"), "fills": admin.truth("tr", dataset="fills")}
        every = {d: admin.truth("tr", dataset=d, include_expired=True) for d in ("orders", "plan_orders", "fills")}
        orders = admin.truth("tr")
    plan_lines, fill_lines = _cli("--dataset", "plan_orders"), _cli("--dataset", "fills")
    assert [json.loads(x) for x in plan_lines] == sorted(plans, key=lambda p: (int(p["cTime"]), int(p["orderId"])))
    assert [json.loads(x) for x in fill_lines] == sorted(fills, key=lambda f: (int(f["cTime"]), int(f["tradeId"])))
    assert [json.loads(x) for x in plan_lines] == served["plan_orders"]
    assert [json.loads(x) for x in fill_lines] == served["fills"]
    assert plan_lines == truth_blobs_for(SPEC, dataset="plan_orders")
    # the default output stays the orders' API bytes
    assert _cli() == truth_blobs_for(SPEC) and [json.loads(x) for x in _cli()] == orders
    for dataset in ("orders", "plan_orders", "fills"):
        lines = _cli("--dataset", dataset, "--all")
        assert [json.loads(x) for x in lines] == every[dataset]
        assert len(lines) > len(truth_blobs_for(SPEC, dataset=dataset))
    assert len(every["orders"]) == 700 + 70  # returnable plus the 10% expired


def test_serve_span_flags():
    proc = subprocess.Popen([BIN, "serve", *FLAGS, "--freeze", "--fill-history-span-days", "3",
                             "--fills-span-days", "30"], stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        short = signed_get(info["base_url"], info, FILL_HISTORY, f"productType=USDT-FUTURES&startTime={NOW - 4 * DAY}")
        assert short.json()["msg"] == "startTime and endTime interval cannot be greater than 3 days"
        long = signed_get(info["base_url"], info, FILLS, f"productType=USDT-FUTURES&startTime={NOW - 31 * DAY}")
        assert long.json()["code"] == "40705"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
