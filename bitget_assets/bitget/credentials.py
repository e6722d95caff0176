"""API credentials that never print themselves."""

import os
from dataclasses import dataclass, field

DEFAULT_BASE_URL = "https://api.bitget.com"


@dataclass(frozen=True)
class Credentials:
    api_key: str
    api_secret: str = field(repr=False)
    passphrase: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL

    def __repr__(self) -> str:
        return f"Credentials(api_key={mask(self.api_key)!r}, base_url={self.base_url!r})"

    __str__ = __repr__

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, *, prefix: str = "BITGET_") -> "Credentials | None":
        """Credentials from <prefix>API_KEY/API_SECRET/API_PASSPHRASE (and <prefix>BASE_URL, else BITGET_BASE_URL);
        None when none of the three is set."""
        env = os.environ if environ is None else environ
        names = (f"{prefix}API_KEY", f"{prefix}API_SECRET", f"{prefix}API_PASSPHRASE")
        values = [env.get(n, "") for n in names]
        if not any(values):
            return None
        missing = [n for n, v in zip(names, values, strict=True) if not v]
        if missing:
            raise ValueError(f"incomplete Bitget credentials: {', '.join(missing)} not set")
        base_url = env.get(f"{prefix}BASE_URL") or env.get("BITGET_BASE_URL") or DEFAULT_BASE_URL
        return cls(*values, base_url=base_url)


def mask(key: str) -> str:
    """Enough of a key to tell accounts apart in logs, never the whole key."""
    return f"{key[:4]}…{key[-2:]}" if len(key) > 8 else "****"
