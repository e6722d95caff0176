"""Which Bitget accounts this deployment serves, and the names each one's Dagster objects get.

The default account comes from BITGET_API_KEY / BITGET_API_SECRET / BITGET_API_PASSPHRASE (or the embedded
demo exchange when none is set) and keeps the plain names: `order_scan`, `symbol_orders`, `sorted_orders`,
the `symbols` partitions, the `bitget` and `storage` resources. Several accounts are listed in
BITGET_ACCOUNTS (e.g. `alpha,beta`): each reads BITGET_<NAME>_API_KEY / _API_SECRET / _API_PASSPHRASE and
gets its own asset-key prefix, partitions, jobs, sensor, schedule, resources, output folder (BITGET_OUTPUT/<name>
unless BITGET_<NAME>_OUTPUT says otherwise) and rate budget, so one account's trouble never touches another.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

ACCOUNTS_ENV = "BITGET_ACCOUNTS"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


@dataclass(frozen=True)
class Account:
    name: str = ""  # "" is the default account

    @property
    def label(self) -> str:
        return self.name or "default"

    def object_name(self, base: str) -> str:
        """Name of one of this account's jobs, ops, sensors, schedules, partition sets or resources."""
        return f"{self.name}__{base}" if self.name else base

    def asset_key(self, base: str) -> dg.AssetKey:
        return dg.AssetKey([self.name, base] if self.name else [base])

    @property
    def key_prefix(self) -> list[str]:
        return [self.name] if self.name else []

    @property
    def bitget_key(self) -> str:
        return self.object_name("bitget")

    @property
    def storage_key(self) -> str:
        return self.object_name("storage")

    @property
    def partitions_name(self) -> str:
        return self.object_name("symbols")

    def env_var(self, setting: str) -> str:
        """BITGET_<SETTING> for the default account, BITGET_<NAME>_<SETTING> for a named one."""
        return f"BITGET_{self.name.upper()}_{setting}" if self.name else f"BITGET_{setting}"

    def setting(self, setting: str, environ: Mapping[str, str] | None = None, *, shared: bool = True) -> str | None:
        """The account's own value of a setting, else (when `shared`) the deployment-wide BITGET_<SETTING>."""
        env = os.environ if environ is None else environ
        own = env.get(self.env_var(setting))
        return own if own or not shared else env.get(f"BITGET_{setting}")

    def output(self, environ: Mapping[str, str] | None = None) -> str:
        """Where its history lives: its own BITGET_<NAME>_OUTPUT, else a sub-folder/prefix of BITGET_OUTPUT."""
        own = self.setting("OUTPUT", environ, shared=False)
        if own:
            return own
        base = (os.environ if environ is None else environ).get("BITGET_OUTPUT") or "data"
        return f"{base.rstrip('/')}/{self.name}" if self.name else base


DEFAULT_ACCOUNT = Account()


def configured_accounts(environ: Mapping[str, str] | None = None) -> list[Account]:
    """The accounts BITGET_ACCOUNTS lists, or the default account alone; a bad list is refused by name."""
    env = os.environ if environ is None else environ
    names = [n.strip() for n in env.get(ACCOUNTS_ENV, "").split(",") if n.strip()]
    if not names:
        return [DEFAULT_ACCOUNT]
    bad = [n for n in names if not _NAME.match(n)]
    if bad:
        raise ValueError(f"{ACCOUNTS_ENV}: account names must be lower-case letters, digits and _, "
                         f"starting with a letter: {', '.join(bad)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{ACCOUNTS_ENV}: an account is listed twice: {','.join(names)}")
    return [Account(n) for n in names]


def account_named(name: str, environ: Mapping[str, str] | None = None) -> Account:
    accounts = {a.name: a for a in configured_accounts(environ)}
    if name not in accounts:
        known = ", ".join(a.label for a in accounts.values())
        raise ValueError(f"unknown account {name!r}: {ACCOUNTS_ENV} lists {known}")
    return accounts[name]
