"""Which API family serves the account (classic v2 or unified v3), and its UID, learned from the exchange.

One probe decides (as ccxt's `handleUTAAndParams` does): `GET /api/v3/account/settings` answers a unified
account with its `uid` and `accountMode`, and a classic one with 40084; a classic account's UID then comes from
`GET /api/v2/spot/account/info` → `data.userId` (Bitget's "Get Account Information", 1 request/s per UID). While
an account is `upgrading`/`switching` the probe waits, bounded, and asks again. Sources: docs/api-notes.md,
"Live exchange".
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from bitget_assets.bitget.errors import BitgetClassicAccountError, BitgetError, BitgetResponseError

log = logging.getLogger("bitget_assets.client")

SETTINGS_PATH = "/api/v3/account/settings"
ACCOUNT_INFO_PATH = "/api/v2/spot/account/info"
SETTINGS_RATE_PER_S = 19.0  # 20/s per UID, less a margin
ACCOUNT_INFO_RATE_PER_S = 0.9  # 1/s per UID
UNIFIED_MODES = {"unified", "hybrid"}  # hybrid: a unified account still serving some classic features (v3 docs)
TRANSITION_MODES = {"upgrading", "switching"}
# What is kept of the probe's answer with the account's state: modes, never IP whitelists or referral data.
_SETTINGS_KEPT = ("uid", "accountMode", "assetMode", "holdMode", "accountLevel")
_INFO_KEPT = ("userId", "parentId", "traderType", "authorities")


@dataclass(frozen=True)
class AccountMode:
    mode: Literal["classic", "unified"]
    uid: str
    raw_state: dict = field(default_factory=dict)  # the probe's answer, the fields listed above only

    def as_dict(self) -> dict:
        return {"mode": self.mode, "uid": self.uid, "raw_state": dict(self.raw_state)}


class AccountModeTimeoutError(BitgetError):
    """The account stayed `upgrading`/`switching` longer than the caller was willing to wait."""


def detect_account_mode(
    client,
    *,
    transition_wait_s: float = 300.0,
    poll_s: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
) -> AccountMode:
    """Probe the account's mode and UID, set `client.uid` (the limiter then keys its budgets by it) and return them.

    An upgrade or switch takes about a minute on Bitget: the probe asks again every `poll_s` for up to
    `transition_wait_s`, logging what it waits for, then raises AccountModeTimeoutError.
    """
    began = time.monotonic()
    while True:
        try:
            settings = client.request(SETTINGS_PATH, rate_per_s=SETTINGS_RATE_PER_S)
        except BitgetClassicAccountError:
            return _classic(client)
        if not isinstance(settings, dict) or not settings.get("accountMode"):
            raise BitgetResponseError(f"{SETTINGS_PATH}: no accountMode in the answer")
        mode = str(settings["accountMode"])
        if mode in UNIFIED_MODES:
            return _found(client, "unified", settings.get("uid"), settings, _SETTINGS_KEPT)
        waited = time.monotonic() - began
        if mode not in TRANSITION_MODES:
            raise BitgetResponseError(f"{SETTINGS_PATH}: unknown accountMode {mode!r}")
        if waited >= transition_wait_s:
            raise AccountModeTimeoutError(
                f"Bitget account still {mode} after {waited:.0f} s ({SETTINGS_PATH}); run again once it has finished"
            )
        log.warning("Bitget account is %s (between classic and unified): asking again in %.0f s "
                    "(waited %.0f of %.0f s)", mode, poll_s, waited, transition_wait_s)
        sleep(poll_s)


def _classic(client) -> AccountMode:
    info = client.request(ACCOUNT_INFO_PATH, rate_per_s=ACCOUNT_INFO_RATE_PER_S)
    if not isinstance(info, dict):
        raise BitgetResponseError(f"{ACCOUNT_INFO_PATH}: data is {type(info).__name__}, expected an object")
    return _found(client, "classic", info.get("userId"), info, _INFO_KEPT)


def _found(client, mode: str, uid, answer: dict, kept: tuple[str, ...]) -> AccountMode:
    if uid in (None, ""):
        raise BitgetResponseError(f"no UID in the {mode} account's answer")
    client.uid = str(uid)
    log.info("Bitget account is %s, UID %s: rate budgets are keyed by the UID", mode, client.uid)
    return AccountMode(mode, str(uid), {k: answer[k] for k in kept if k in answer})
