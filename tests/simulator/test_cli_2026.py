import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import requests

from bitget_assets.simulator.faults import RELEASE_CODES

from .signing import TIME, V2_HISTORY, V3_HISTORY, V3_SETTINGS, clock_offset_ms, code_of, get

BIN = os.path.join(os.path.dirname(sys.executable), "bitget-sim")
FLAGS = ["--seed", "4", "--orders", "200", "--symbols", "4", "--rate-limit", "0", "--public-rate-limit", "0"]


@contextmanager
def serve(*flags):
    proc = subprocess.Popen([BIN, "serve", *FLAGS, *flags], stdout=subprocess.PIPE, text=True)
    try:
        yield json.loads(proc.stdout.readline())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_unified_with_a_skewed_strict_clock():
    with serve("--unified", "--clock-skew-s", "90", "--strict-clock", "--v3-rate-limit", "0") as info:
        url = info["base_url"]
        assert abs(info["now_ms"] - (time.time() + 90) * 1000) < 10_000
        offset = clock_offset_ms(url)
        assert abs(offset - 90_000) < 5_000
        q = {"category": "USDT-FUTURES", "limit": "100"}
        assert code_of(get(url, info, V3_HISTORY, q)) == (400, "40008")  # this machine's clock
        r = get(url, info, V3_HISTORY, q, offset_ms=offset)
        assert code_of(r) == (200, "00000") and r.json()["data"]["list"]
        assert code_of(get(url, info, V2_HISTORY, {"productType": "USDT-FUTURES"}, offset_ms=offset)) == \
            (400, "40085")
        assert get(url, info, V3_SETTINGS, offset_ms=offset).json()["data"]["uid"] == info["uid"]


def test_serve_ip_lockout_and_release_window_flags():
    with serve("--ip-limit", "6", "--ip-window-s", "30", "--ip-lockout-s", "60", "--release-window", "1",
               "--release-http400", "0", "--now", "1790000000000", "--freeze") as info:
        url, s = info["base_url"], requests.Session()
        answers = [get(url, info, V2_HISTORY, {"productType": "USDT-FUTURES"}, session=s) for _ in range(5)]
        assert {r.status_code for r in answers} == {200}
        assert {r.json()["code"] for r in answers} <= set(dict(RELEASE_CODES))
        assert s.get(url + TIME, timeout=10).status_code == 200  # the 6th request, public: no release error
        assert s.get(url + TIME, timeout=10).status_code == 429  # the 7th: locked out


def test_skew_and_now_exclude_each_other():
    r = subprocess.run([BIN, "serve", *FLAGS, "--clock-skew-s", "5", "--now", "1790000000000"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--clock-skew-s" in r.stderr
