"""The deployment's settings, read from the environment in ONE place, once, into typed objects.

`load_settings()` is called by the definitions entry point (and by the CLI, which then overrides what its flags
say through run config, never by writing the environment). No other module of the pipeline reads the environment;
the demo exchange and the simulator are separate programs with their own flags.

Variables (unchanged from earlier releases): BITGET_ACCOUNTS; per account BITGET_[<NAME>_]API_KEY / _API_SECRET /
_API_PASSPHRASE / _BASE_URL / _PRODUCT_TYPES / _STREAMS / _OUTPUT / _READ_TIMEOUT_S / _IMPORT_TZ (a named account
falls back to the plain BITGET_<SETTING> for all but credentials and output); BITGET_OUTPUT, BITGET_S3_ENDPOINT_URL,
BITGET_REFRESH_CRON, BITGET_STALE_AFTER_MINUTES, BITGET_REQUESTS_PER_SECOND, BITGET_RATE_LIMIT_BACKEND,
BITGET_REDIS_URL, BITGET_REDIS_KEY_PREFIX, BITGET_EXECUTOR, BITGET_CELERY_BROKER, BITGET_CELERY_BACKEND,
BITGET_IO_MANAGER_BASE; DAGSTER_HOME. Per account also _IP_REQUESTS_PER_SECOND (0 = no IP budget) and
_RATE_LIMITED_PATIENCE_S.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from bitget_assets.accounts import Account, account_env_var
from bitget_assets.bitget import DEMO_PRODUCT_TYPES, PRODUCT_TYPES
from bitget_assets.bitget.credentials import DEFAULT_BASE_URL

ACCOUNTS_ENV = "BITGET_ACCOUNTS"
STREAMS = ("orders", "plan_orders", "fills")
DEFAULT_STREAMS = ("orders", "plan_orders")
EXECUTORS = ("multiprocess", "celery")
RATE_LIMIT_BACKENDS = ("file", "redis", "memory")
DEFAULT_BROKER = "pyamqp://guest@127.0.0.1:5672//"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class RateLimitSettings:
    backend: str = "file"
    requests_per_second: float = 9.5
    redis_url_env: str | None = None  # the variable holding the URL (it may carry a password)
    redis_key_prefix: str = "bitget_assets:ratelimit:"


@dataclass(frozen=True)
class ExecutorSettings:
    kind: str = "multiprocess"
    broker_env: str | None = None  # variables, not values: URLs may carry passwords
    backend_env: str | None = None
    broker_default: str = DEFAULT_BROKER
    broker_url: str = DEFAULT_BROKER  # resolved, for the workers' own Celery app
    backend_url: str = "rpc://"


@dataclass(frozen=True)
class Settings:
    accounts: tuple[Account, ...]
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    io_manager_base: str = ""
    s3_endpoint_url: str | None = None
    dagster_home: str | None = None

    def account(self, name: str) -> Account:
        for account in self.accounts:
            if account.name == name:
                return account
        known = ", ".join(a.label for a in self.accounts)
        raise SettingsError(f"unknown account {name!r}: {ACCOUNTS_ENV} lists {known}")


def _split(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def parse_product_types(values, source: str) -> tuple[str, ...]:
    types = tuple(values)
    unknown = [t for t in types if t not in (*PRODUCT_TYPES, *DEMO_PRODUCT_TYPES)]
    if unknown or not types:
        raise SettingsError(f"{source}: unknown product type(s) {', '.join(unknown) or '(none given)'}; "
                            f"known: {', '.join(PRODUCT_TYPES)}")
    return types


def parse_streams(values, source: str) -> tuple[str, ...]:
    """The streams to read; `orders` is always among them (every other dataset is checked against it)."""
    streams = tuple(values)
    unknown = [s for s in streams if s not in STREAMS]
    if unknown:
        raise SettingsError(f"{source}: unknown stream(s) {', '.join(unknown)}; known: {', '.join(STREAMS)}")
    return tuple(s for s in STREAMS if s in {"orders", *streams})


def _number(text: str, variable: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SettingsError(f"{variable} must be a number, not {text!r}") from None


def _account(name: str, env: Mapping[str, str], base_output: str) -> Account:
    def own(setting: str) -> str | None:
        return env.get(account_env_var(name, setting)) or None

    def value(setting: str) -> str | None:
        return own(setting) or env.get(f"BITGET_{setting}") or None

    cred_vars = tuple(account_env_var(name, s) for s in ("API_KEY", "API_SECRET", "API_PASSPHRASE"))
    present = [v for v in cred_vars if env.get(v)]
    if present and len(present) != 3:
        missing = [v for v in cred_vars if not env.get(v)]
        raise SettingsError(f"incomplete Bitget credentials: {', '.join(missing)} not set")
    if name and not present:
        raise SettingsError(f"account {name!r}: set {', '.join(cred_vars)}")
    stale = value("STALE_AFTER_MINUTES") or "60"
    try:
        stale_minutes = int(stale)
        timeout = float(value("READ_TIMEOUT_S") or "10")
    except ValueError as exc:
        raise SettingsError(f"account {name or 'default'}: {exc}") from None
    ip_rate = _number(value("IP_REQUESTS_PER_SECOND") or "90", account_env_var(name, "IP_REQUESTS_PER_SECOND"))
    patience = _number(value("RATE_LIMITED_PATIENCE_S") or "360", account_env_var(name, "RATE_LIMITED_PATIENCE_S"))
    if ip_rate < 0:
        raise SettingsError(f"{account_env_var(name, 'IP_REQUESTS_PER_SECOND')} must be 0 (no IP budget) or "
                            f"positive, not {ip_rate:g}")
    if patience <= 0:
        raise SettingsError(f"{account_env_var(name, 'RATE_LIMITED_PATIENCE_S')} must be positive, not {patience:g}")
    if stale_minutes < 2:
        raise SettingsError(f"BITGET_STALE_AFTER_MINUTES must be at least 2, not {stale_minutes}")
    output = own("OUTPUT") or (f"{base_output.rstrip('/')}/{name}" if name else base_output)
    return Account(
        name=name,
        credential_vars=cred_vars if present else None,
        base_url=own("BASE_URL") or env.get("BITGET_BASE_URL") or DEFAULT_BASE_URL,
        product_types=parse_product_types(_split(value("PRODUCT_TYPES") or ",".join(PRODUCT_TYPES)),
                                          account_env_var(name, "PRODUCT_TYPES")),
        streams=parse_streams(_split(value("STREAMS") or ",".join(DEFAULT_STREAMS)), account_env_var(name, "STREAMS")),
        output=output,
        read_timeout_s=timeout,
        refresh_cron=value("REFRESH_CRON") or "*/15 * * * *",
        stale_after_minutes=stale_minutes,
        ip_requests_per_second=ip_rate,
        rate_limited_patience_s=patience,
        import_tz=value("IMPORT_TZ"),
    )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Every setting of the deployment, validated; a bad value is refused naming its variable."""
    env = os.environ if environ is None else environ
    names = list(_split(env.get(ACCOUNTS_ENV, "")))
    bad = [n for n in names if not _NAME.match(n)]
    if bad:
        raise SettingsError(f"{ACCOUNTS_ENV}: account names must be lower-case letters, digits and _, "
                            f"starting with a letter: {', '.join(bad)}")
    if len(set(names)) != len(names):
        raise SettingsError(f"{ACCOUNTS_ENV}: an account is listed twice: {','.join(names)}")
    base_output = env.get("BITGET_OUTPUT") or "data"
    accounts = tuple(_account(n, env, base_output) for n in (names or [""]))

    backend = (env.get("BITGET_RATE_LIMIT_BACKEND") or "file").strip().lower()
    if backend not in RATE_LIMIT_BACKENDS:
        raise SettingsError(f"BITGET_RATE_LIMIT_BACKEND={backend!r}: expected one of {', '.join(RATE_LIMIT_BACKENDS)}")
    try:
        rate = float(env.get("BITGET_REQUESTS_PER_SECOND") or "9.5")
    except ValueError:
        raise SettingsError("BITGET_REQUESTS_PER_SECOND must be a number") from None
    if rate <= 0:
        raise SettingsError("BITGET_REQUESTS_PER_SECOND must be positive")
    rate_limit = RateLimitSettings(
        backend=backend,
        requests_per_second=rate,
        redis_url_env="BITGET_REDIS_URL" if env.get("BITGET_REDIS_URL") else None,
        redis_key_prefix=env.get("BITGET_REDIS_KEY_PREFIX") or "bitget_assets:ratelimit:",
    )

    kind = (env.get("BITGET_EXECUTOR") or "multiprocess").strip().lower()
    if kind not in EXECUTORS:
        raise SettingsError(f"BITGET_EXECUTOR={kind!r}: expected 'multiprocess' or 'celery'")
    broker = env.get("BITGET_CELERY_BROKER") or DEFAULT_BROKER
    own_backend = env.get("BITGET_CELERY_BACKEND")
    redis_broker = broker.startswith(("redis://", "rediss://"))
    executor = ExecutorSettings(
        kind=kind,
        broker_env="BITGET_CELERY_BROKER" if env.get("BITGET_CELERY_BROKER") else None,
        backend_env="BITGET_CELERY_BACKEND" if own_backend else ("BITGET_CELERY_BROKER" if redis_broker else None),
        broker_url=broker,
        backend_url=own_backend or (broker if redis_broker else "rpc://"),
    )
    return Settings(
        accounts=accounts,
        rate_limit=rate_limit,
        executor=executor,
        io_manager_base=(env.get("BITGET_IO_MANAGER_BASE") or "").strip(),
        s3_endpoint_url=env.get("BITGET_S3_ENDPOINT_URL") or None,
        dagster_home=env.get("DAGSTER_HOME") or None,
    )


def with_overrides(settings: Settings, name: str, **changes) -> Settings:
    """The settings with one account's fields replaced (what the CLI's flags say)."""
    accounts = tuple(replace(a, **changes) if a.name == name else a for a in settings.accounts)
    return replace(settings, accounts=accounts)


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment plus `extra`, for programs the CLI starts (dagster dev, per-account runs)."""
    return {**os.environ, **extra}


def default_dagster_home(settings: Settings) -> Path:
    """$DAGSTER_HOME, else ./.dagster_home (where `bitget-orders ui` finds the runs `extract` recorded)."""
    return Path(settings.dagster_home or Path.cwd() / ".dagster_home").resolve()
