"""A faithful local simulator of Bitget's v2 futures ("mix") order API, for tests and benchmarks.

Facts follow the shared API notes (docs: bitget-api.md). Where those are unsure, the simulator picks:
- signature checked against the raw query string as received (any parameter order the client signed);
  auth checks in order 40001, 40003, 40005, 40011 (missing/invalid headers), then 40037 unknown key,
  40008 timestamp off the real wall clock by > 30 s, 40012 passphrase, 40009 HMAC;
- `limit` > 100 is capped at 100 (guess); errors answer HTTP 400, 429 answers HTTP 429 without Retry-After;
- the transient "HTTP 200 + error" fault uses code 40015 "System error, please try again later" (guess);
- empty pages vary between `entrustedList` []/null and `endId` ""/null (seeded per request when "mixed");
- hedge mode: `side` names the position direction (buy+close closes a long), one-way mode uses posSide net;
- contracts carry `supportMarginCoins` as a list of strings (as Bitget does); a few contracts are
  delisted (`symbolStatus` "off") and may still hold an account's old orders;
- serverTime/requestTime follow the DATA clock (anchored at the first account's now_ms), while signatures
  are checked against the real wall clock: clients must sign with their own clock but should compute
  time windows from serverTime;
- parameter checks and defaults (40019/40034/40020/40017/40707/40704/40705, 5-minute retention grace,
  empty page for a default window after an old endTime, pending without a window) are listed in `api.py`;
- the request log's `status` is None for a reset connection; `max_requests_per_window` counts HTTP 200
  entries unless `status=None` is given;
- faults are drawn after authentication and before the rate limit: a faulted request still uses rate-limit
  budget (except 429 bursts, which never count as accepted).

Typical use::

    with Simulator([AccountSpec(name="demo", orders=17000, symbols=40, now_ms=...)], SimulatorConfig()) as sim:
        creds = sim.credentials("demo"); url = sim.base_url; expected = sim.truth("demo")
"""

from .accounts import Account, AccountSpec, generate_account
from .admin import AdminClient
from .config import SimulatorConfig
from .faults import FaultConfig
from .server import Simulator
from .store import truth_for

__all__ = ["AccountSpec", "Account", "generate_account", "SimulatorConfig", "FaultConfig", "Simulator",
           "AdminClient", "truth_for"]
