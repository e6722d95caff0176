"""Account modes: classic (v2 API) or unified (UTA, v3 API), and the minute-long switch between them.

Bitget (docs/api-notes.md, unified accounts): a unified account's key gets `40085` on the classic v2 private
endpoints, a classic account's key gets `40084` on v3. An upgrade (classic -> unified) shows `accountMode`
`upgrading` in `/api/v3/account/settings` for about a minute, a switch back shows `switching`. What the order
endpoints answer meanwhile is undocumented; the simulator answers `25007` "Account in an irregular status"
(a v3 error code, guess) on the order endpoints of both families. The orders themselves never change: an
upgraded account keeps its history.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .api import ApiError

MODES = ("classic", "unified")
TRANSITIONAL = {"unified": "upgrading", "classic": "switching"}
ORDER_PREFIXES = ("/api/v2/mix/order/", "/api/v3/trade/")


@dataclass
class _State:
    mode: str
    target: str | None = None
    until: float = 0.0  # wall time the switch completes


class AccountModes:
    def __init__(self, names, initial: dict[str, str] | None = None, transition_s: float = 60.0):
        names = list(names)
        initial = dict(initial or {})
        unknown = set(initial) - set(names)
        if unknown:
            raise ValueError(f"account_modes names unknown accounts {sorted(unknown)}")
        for mode in initial.values():
            _check_mode(mode)
        self.transition_s = float(transition_s)
        self._states = {n: _State(initial.get(n, "classic")) for n in names}

    def _state(self, name: str, now: float) -> _State:
        st = self._states[name]
        if st.target is not None and now >= st.until:
            st.mode, st.target = st.target, None
        return st

    def mode(self, name: str, now: float | None = None) -> str:
        """`classic`, `unified`, or while switching `upgrading` / `switching`."""
        st = self._state(name, time.time() if now is None else now)
        return TRANSITIONAL[st.target] if st.target is not None else st.mode

    def set(self, name: str, mode: str, transition_s: float | None = None, now: float | None = None) -> dict:
        """Start a switch to `mode` (instant with transition_s=0); a no-op when already there."""
        _check_mode(mode)
        if name not in self._states:
            raise ValueError(f"unknown account {name!r}")
        now = time.time() if now is None else now
        st = self._state(name, now)
        wait = self.transition_s if transition_s is None else float(transition_s)
        if wait < 0:
            raise ValueError("transition_s must be >= 0")
        if (st.target or st.mode) != mode:
            if wait == 0:
                st.mode, st.target = mode, None
            else:
                st.target, st.until = mode, now + wait
        return self.state(name, now)

    def state(self, name: str, now: float | None = None) -> dict:
        now = time.time() if now is None else now
        st = self._state(name, now)
        return {"account": name, "mode": self.mode(name, now), "target": st.target,
                "seconds_left": max(0.0, st.until - now) if st.target else 0.0}

    def check(self, name: str, path: str, now: float | None = None) -> None:
        """Raise the ApiError a signed request to `path` gets in the account's current mode."""
        mode = self.mode(name, now)
        if mode in TRANSITIONAL.values():
            if path.startswith(ORDER_PREFIXES):
                raise ApiError("25007", "Account in an irregular status")
            return
        if mode == "unified" and path.startswith("/api/v2/"):
            raise ApiError("40085", "You are in Unified Account mode, and the Classic Account API is not "
                                    "supported")
        if mode == "classic" and path.startswith("/api/v3/"):
            raise ApiError("40084", "You are in Classic Account mode, and the Unified Account API is not "
                                    "supported")

def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"account mode must be one of {MODES}, not {mode!r}")
