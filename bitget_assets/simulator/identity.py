"""Who the key belongs to: the account-info endpoint of each mode (docs/api-notes.md, UID).

- classic: `GET /api/v2/spot/account/info` -> `data.userId` (Bitget API docs, spot/account/Get-Account-Info,
  1 request/s per UID; also how Bitget.Net's GetAccountInfoAsync reads it);
- unified: `GET /api/v3/account/settings` -> `data.uid`, `accountMode` (`unified`, or `upgrading`/`switching`
  during a switch), 20 requests/s per UID (docs uta/account/Get-Account-Setting).
"""

from __future__ import annotations

import json

from .accounts import Account
from .api import ok_body

INFO_PATH = "/api/v2/spot/account/info"
SETTINGS_PATH = "/api/v3/account/settings"


def account_info(account: Account, now_ms: int) -> bytes:
    data = {"userId": account.uid, "inviterId": "", "ips": "", "authorities": ["coor", "cpor", "stor"],
            "parentId": int(account.uid), "traderType": "not_trader", "channelCode": "", "channel": "",
            "regisTime": str(account.now_ms - 400 * 86_400_000)}
    return ok_body(json.dumps(data, separators=(",", ":")).encode(), now_ms)


def account_settings(account: Account, mode: str, now_ms: int) -> bytes:
    data = {"uid": account.uid, "accountMode": mode, "assetMode": "multi_assets", "holdMode": "hedge_mode",
            "stpMode": "none", "accountLevel": "basic", "symbolConfigList": [], "coinConfigList": []}
    return ok_body(json.dumps(data, separators=(",", ":")).encode(), now_ms)
