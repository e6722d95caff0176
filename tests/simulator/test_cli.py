import json
import os
import signal
import subprocess
import sys

import requests

from .conftest import NOW
from .helpers import HISTORY, PENDING, TYPES, page_all

FLAGS = ["--seed", "4", "--orders", "1500", "--symbols", "15", "--now", str(NOW), "--history-days", "100"]
BIN = os.path.join(os.path.dirname(sys.executable), "bitget-sim")


def test_serve_prints_credentials_answers_and_matches_truth_bytes():
    proc = subprocess.Popen([BIN, "serve", *FLAGS, "--freeze", "--rate-limit", "0", "--admin-token", "t0k"],
                            stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert set(info) == {"base_url", "api_key", "api_secret", "passphrase", "uid", "admin_token", "now_ms"}
        assert info["base_url"].startswith("http://127.0.0.1:") and info["admin_token"] == "t0k"
        assert info["now_ms"] == NOW
        s = requests.Session()
        got, raw = [], []
        for pt in TYPES:
            for path in (HISTORY, PENDING):
                got += page_all(info["base_url"], info, path, f"productType={pt}", session=s, raw=raw)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    truth = subprocess.run([BIN, "truth", *FLAGS], capture_output=True, check=True).stdout.splitlines()
    assert len(truth) == 1500
    served = sorted(got, key=lambda o: (int(o["cTime"]), int(o["orderId"])))
    assert [json.loads(line) for line in truth] == served
    # byte for byte: every truth line appears verbatim in the raw pages, once
    pages = b"\n".join(raw)
    assert all(pages.count(line) == 1 for line in truth)
