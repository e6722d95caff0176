"""Typed errors named after Bitget's codes. Messages never carry secrets: only code, text and endpoint."""

# Codes that mean "your credentials or clock are wrong": retrying cannot help.
AUTH_CODES = {
    "40001": "ACCESS-KEY header missing",
    "40003": "ACCESS-SIGN header missing",
    "40005": "invalid ACCESS-TIMESTAMP",
    "40006": "invalid ACCESS-KEY",
    "40008": "request timestamp expired (check the machine's clock)",
    "40009": "signature does not match (wrong API secret?)",
    "40011": "ACCESS-PASSPHRASE header missing",
    "40012": "API key or passphrase is incorrect",
    "40037": "API key does not exist",
}
# Codes that describe a bad request; 40705 is handled by the client (shorter windows).
PARAMETER_CODES = {
    "40017": "parameter verification failed",
    "40019": "a required parameter is empty",
    "40020": "parameter type error",
    "40034": "parameter does not exist (unknown symbol or productType)",
    "40704": "only the last 90 days can be queried",
    "40705": "start and end time span too long",
    "40707": "start time is after end time",
}
# Server-side trouble that Bitget reports with a code instead of an HTTP status (guesses: see docs/api-notes.md).
TRANSIENT_CODES = {"429", "40010", "40015", "45001"}


class BitgetError(Exception):
    """Base of everything this client raises."""


class BitgetAPIError(BitgetError):
    """Bitget answered with an error code."""

    def __init__(self, code: str, msg: str, endpoint: str, http_status: int | None = None):
        self.code, self.msg, self.endpoint, self.http_status = code, msg, endpoint, http_status
        meaning = AUTH_CODES.get(code) or PARAMETER_CODES.get(code)
        text = f"{meaning}: {msg}" if meaning and msg and meaning.lower() != msg.lower() else (meaning or msg)
        super().__init__(f"{text} ({code}) on {endpoint}")


class BitgetAuthError(BitgetAPIError):
    """Credentials, passphrase or clock rejected: fail fast, do not retry."""


class BitgetParameterError(BitgetAPIError):
    """The request itself is wrong (unknown symbol, bad window, ...): do not retry."""


class BitgetTransientError(BitgetAPIError):
    """Rate limited or a server-side hiccup reported by code: retried with backoff."""


class BitgetResponseError(BitgetError):
    """The answer was not a Bitget envelope (HTML error page, truncated JSON, 5xx): retried."""


def api_error(code: str, msg: str, endpoint: str, http_status: int | None) -> BitgetAPIError:
    """The typed error for a Bitget code."""
    if code in AUTH_CODES:
        cls = BitgetAuthError
    elif code in PARAMETER_CODES:
        cls = BitgetParameterError
    elif code in TRANSIENT_CODES or (http_status or 0) >= 500:
        cls = BitgetTransientError
    else:
        cls = BitgetAPIError
    return cls(code, msg, endpoint, http_status)
