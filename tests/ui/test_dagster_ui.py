"""The Dagster UI, proven in a real browser: what `bitget-orders extract` recorded is what `dagster dev` shows.

An extraction runs first (CLI, against an in-process simulator) into a temporary DAGSTER_HOME; then
`dagster dev` serves that instance on 127.0.0.1 and headless Chromium (Debian's `chromium`, driven by
Playwright) loads the asset graph, the symbol partitions and the sorted_orders / order_scan pages.
Screenshots land in docs/images/ for the README when UPDATE_SCREENSHOTS=1, otherwise in a temporary folder,
so a test run leaves the work tree clean.

The browser may only talk to 127.0.0.1: every other request is aborted (and recorded), and Chromium's
host resolver answers "not found" for every name.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Error, expect, sync_playwright

from bitget_assets.simulator import AccountSpec, Simulator, SimulatorConfig
from tests.dagster_dev import _free_port, _graphql, _runs, _stop, _wait_until_served
from tests.simhelpers import sim_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PROJECT = Path(__file__).resolve().parents[2]
IMAGES = (PROJECT / "docs" / "images" if os.environ.get("UPDATE_SCREENSHOTS") == "1"
          else Path(tempfile.gettempdir()) / "bitget_assets-ui-screenshots")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
SPEC = AccountSpec(name="demo", seed=21, orders=2500, symbols=14, now_ms=1_790_000_000_000)
LOCATION = "bitget_assets.definitions"  # the code location's name under `dagster dev -m`
CHECKS = ("unique_order_ids", "sorted_by_ctime_then_order_id", "count_equals_sum_of_partitions")
UI_TIMEOUT_MS = 60_000  # generous: the 2-core CI machine also runs the webserver, code server and daemon


# --- the extraction the UI is going to show -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim():
    with Simulator([SPEC], SimulatorConfig(rate_limit=10, latency=(0.02, 0.06), frozen=True)) as server:
        yield server


@pytest.fixture(scope="module")
def extracted(sim, tmp_path_factory):
    """A temporary DAGSTER_HOME (the project's dagster.yaml) holding the runs of one CLI extraction."""
    root = tmp_path_factory.mktemp("ui")
    home, cwd, out = root / "dagster_home", root / "cwd", root / "out"
    home.mkdir()
    cwd.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    env = sim_env(sim, BITGET_OUTPUT=str(out), DAGSTER_HOME=str(home))
    began = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "bitget_assets.cli", "extract", "--quiet", "--output", str(out)],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=150,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["orders"] == 2500 and summary["symbols"] == 14, summary
    print(f"\n[ui] extraction: {time.time() - began:.1f} s")
    return {"env": env, "root": root, "home": home, "cwd": cwd, "out": out, "summary": summary}


@pytest.fixture(scope="module")
def dagster_ui(extracted):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = extracted["root"] / "dagster-dev.log"
    # `bitget-orders ui` is `dagster dev` on the instance the CLI extracted into (README).
    # Its code server's sockets and temp files go to the test's own folder, not /tmp, whatever the shutdown.
    tmp = extracted["root"] / "tmp"
    tmp.mkdir()
    # The refresh schedule (*/15, on by default) is stopped below once the server answers; a tick in the
    # seconds before that would launch a refresh run, so do not start right before a quarter hour.
    until_tick = 900 - time.time() % 900
    if until_tick < 60:
        print(f"[ui] waiting {until_tick:.0f} s for the schedule's quarter-hour tick to pass")
        time.sleep(until_tick + 2)
    began = time.time()
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bitget_assets.cli", "ui", "--host", "127.0.0.1", "--port", str(port)],
            env=extracted["env"] | {"TMPDIR": str(tmp)}, cwd=extracted["cwd"], stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_served(proc, base, log)
        print(f"[ui] dagster dev serving the code location after {time.time() - began:.1f} s")
        # The refresh schedule is on by default: a tick during the test would replace what the extraction
        # recorded with a refresh run. Stop it, in this throwaway instance only.
        state = _graphql(base, """query($s: ScheduleSelector!) { scheduleOrError(scheduleSelector: $s) {
            __typename ... on Schedule { scheduleState { id } } } }""", {"s": {
            "repositoryLocationName": LOCATION, "repositoryName": "__repository__",
            "scheduleName": "refresh_schedule"}})["scheduleOrError"]
        stopped = _graphql(base, """mutation($id: String) { stopRunningSchedule(id: $id) {
            __typename ... on ScheduleStateResult { scheduleState { status } } } }""",
                           {"id": state["scheduleState"]["id"]})["stopRunningSchedule"]
        assert stopped["scheduleState"]["status"] == "STOPPED", stopped
        # dagster dev on 127.0.0.1 greets a new instance with a "Join the Dagster community" dialog over
        # every page; mark it seen (stored in DAGSTER_HOME/.nux) as the dialog's own "Skip" would.
        assert _graphql(base, "mutation { setNuxSeen }")["setNuxSeen"] is True
        runs = _runs(base)
        assert sorted(runs) == ["scan_job", "update_symbols_job"], runs  # the CLI's two runs, in the same instance
        yield {"base": base, "proc": proc, "log": log, "runs": runs}
    finally:
        began = time.time()
        left = _stop(proc)
        print(f"[ui] dagster dev stopped in {time.time() - began:.1f} s")
    assert not left, f"dagster dev left processes running: {left}"


# --- the browser -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def browser_context(browser, dagster_ui):
    """One context for the module (its HTTP cache spares reloading the UI's scripts), loopback only."""
    expect.set_options(timeout=UI_TIMEOUT_MS)
    blocked = []

    def loopback_only(route):
        if urlparse(route.request.url).hostname == "127.0.0.1" or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    # Wide enough that the graph of six assets is drawn at full size (zoomed out, nodes lose their text).
    context = browser.new_context(viewport={"width": 2200, "height": 1300}, base_url=dagster_ui["base"])
    context.set_default_timeout(UI_TIMEOUT_MS)
    context.route("**/*", loopback_only)
    yield context
    context.close()
    if blocked:
        print(f"\n[ui] requests to other hosts the pages tried (aborted): {sorted(set(blocked))}")


@pytest.fixture
def page(browser_context):
    pg = browser_context.new_page()
    yield pg
    pg.close()


def _screenshot(pg, name: str) -> None:
    """Once nothing on the page is still loading (no skeleton placeholder, no spinner)."""
    loading = pg.locator('[class*="Skeleton_skeleton"]:visible, [class*="Spinner_spinner"]:visible')
    try:
        expect(loading).to_have_count(0, timeout=15_000)
    except (AssertionError, Error):
        print(f"\n[ui] {name}: still loading after 15 s; screenshot taken anyway")
    IMAGES.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(IMAGES / name))


def _run_link(pg, run_id: str):
    return pg.locator(f'a[href^="/runs/{run_id}"]').first


def _metadata_value(pg, key: str, column: int):
    """The value cell of the metadata row whose key cell is exactly `key`.

    An asset's overview lists key, timestamp, value (column 2); a partition's detail key, value (column 1).
    """
    return pg.locator("tr").filter(has=pg.get_by_text(key, exact=True)).locator("td").nth(column)


# --- what the UI shows ---------------------------------------------------------------------------------------


def test_asset_graph_shows_the_three_assets_in_order(page):
    page.goto("/asset-groups/bitget")
    nodes = {}
    for name in ("order_scan", "symbol_orders", "sorted_orders"):
        # Each graph node is an HTML box inside an SVG foreignObject, named by its tooltip.
        node = page.locator("foreignObject").filter(has=page.locator(f'[data-tooltip="{name}"]'))
        expect(node).to_have_count(1)
        nodes[name] = node
    expect(nodes["order_scan"]).to_contain_text("Materialized")
    expect(nodes["sorted_orders"]).to_contain_text("Materialized")
    expect(nodes["symbol_orders"]).to_contain_text("14 partitions")
    expect(nodes["symbol_orders"]).to_contain_text("100% filled")
    expect(nodes["symbol_orders"]).to_contain_text("1 / 1 Passed")  # partitions_hold_only_their_symbol
    expect(nodes["sorted_orders"]).to_contain_text("6 / 6 Passed")
    # The lineage is laid out left to right: order_scan → symbol_orders → sorted_orders.
    xs = [nodes[n].bounding_box()["x"] for n in ("order_scan", "symbol_orders", "sorted_orders")]
    assert xs == sorted(xs) and len(set(xs)) == 3, xs
    _screenshot(page, "ui-asset-graph.png")


def test_symbol_partitions_are_all_materialized(page, sim, extracted, dagster_ui):
    truth = Counter(o["symbol"] for o in sim.truth("demo"))
    page.goto("/assets/symbol_orders?view=partitions")
    expect(page.get_by_text("14 Partitions Selected")).to_be_visible()
    expect(page.get_by_text("Materialized (14)")).to_be_visible()
    expect(page.get_by_text("Missing (0)")).to_be_visible()
    expect(page.get_by_text("Failed (0)")).to_be_visible()
    for key in ("BTCUSDT:USDT-FUTURES", "ETHUSD:COIN-FUTURES", "BTCPERP:USDC-FUTURES", "AVAXUSDT:USDT-FUTURES"):
        # (a hidden copy of each name measures it for middle truncation)
        expect(page.get_by_text(key, exact=True).filter(visible=True)).to_have_count(1)

    # One partition's own materialization: from the CLI's update_symbols_job, with the figures the run attached.
    page.get_by_text("BTCUSDT:USDT-FUTURES", exact=True).filter(visible=True).click()
    expect(page).to_have_url(re.compile(r"partition=BTCUSDT"))
    expect(page.get_by_text("update_symbols_job", exact=True)).to_be_visible()
    expect(_run_link(page, dagster_ui["runs"]["update_symbols_job"])).to_be_visible()
    expect(_metadata_value(page, "orders", 1)).to_have_text(str(truth["BTCUSDT"]))  # 1393 of the 2500
    scan_run = dagster_ui["runs"]["scan_job"]
    expect(_metadata_value(page, "source", 1)).to_have_text(f"account scan {scan_run[:8]}")  # the CLI's scan
    expect(_metadata_value(page, "rate_limited_429", 1)).to_have_text("0")
    expect(_metadata_value(page, "uri", 1)).to_have_text(
        str(extracted["out"] / "partitions" / "USDT-FUTURES" / "BTCUSDT.parquet"))
    _screenshot(page, "ui-partitions.png")


def test_sorted_orders_shows_its_metadata_and_passing_checks(page, extracted, dagster_ui):
    page.goto("/assets/sorted_orders")
    expect(_run_link(page, dagster_ui["runs"]["update_symbols_job"])).to_be_visible()  # latest materialization
    expect(_metadata_value(page, "count", 2)).to_have_text("2500")
    expect(_metadata_value(page, "symbols", 2)).to_have_text("14")
    expect(_metadata_value(page, "json_uri", 2)).to_have_text(str(extracted["out"] / "orders.json"))
    expect(_metadata_value(page, "parquet_uri", 2)).to_have_text(str(extracted["out"] / "orders.parquet"))
    # Times read as dates, not as milliseconds (1789952950606 once stood there).
    expect(_metadata_value(page, "last_cTime", 2)).to_contain_text("Sep 21")
    expect(_metadata_value(page, "last_cTime", 2)).not_to_have_text(re.compile(r"^\d+$"))
    expect(page.get_by_text("Row count")).to_be_visible()
    expect(page.get_by_text("2,500", exact=True)).to_be_visible()  # dagster/row_count in the status bar
    _screenshot(page, "ui-sorted-orders.png")

    page.goto("/assets/sorted_orders?view=checks")
    expect(page.get_by_text("Checks (6)")).to_be_visible()
    for name in CHECKS:
        # A check row: the (possibly middle-truncated) name carries the full name as its title.
        row = page.locator(f'span:has(> [title="{name}"])')
        expect(row).to_contain_text("Succeeded")
    # The selected check (the first, count_equals_sum_of_partitions) shows its latest evaluation.
    expect(page.get_by_text("Passed", exact=True)).to_be_visible()
    expect(_metadata_value(page, "output_rows", 1)).to_have_text("2500")
    expect(_metadata_value(page, "partition_rows", 1)).to_have_text("2500")
    _screenshot(page, "ui-sorted-orders-checks.png")


def test_order_scan_names_the_simulator_as_its_source(page, sim, dagster_ui):
    page.goto("/assets/order_scan")
    expect(_run_link(page, dagster_ui["runs"]["scan_job"])).to_be_visible()  # latest materialization
    # The UI must say where the data came from: here the local simulator, not a live account.
    expect(_metadata_value(page, "exchange", 2)).to_have_text(f"Bitget simulator at {sim.base_url}")
    expect(_metadata_value(page, "orders", 2)).to_have_text("2500")
    expect(_metadata_value(page, "rate_limited_429", 2)).to_have_text("0")
    _screenshot(page, "ui-order-scan.png")

    # Everything shown came from the CLI's two runs: the stopped schedule and the sensors launched none.
    assert _runs(dagster_ui["base"]) == dagster_ui["runs"]
