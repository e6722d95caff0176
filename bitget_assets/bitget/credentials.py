"""API credentials that never print themselves."""

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


def mask(key: str) -> str:
    """Enough of a key to tell accounts apart in logs, never the whole key."""
    return f"{key[:4]}…{key[-2:]}" if len(key) > 8 else "****"
