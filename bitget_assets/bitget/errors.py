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
# Server-side trouble that Bitget reports with a code instead of an HTTP status; 45001, 40725, 40015 and 40200 are
# what the weekly release window answers, "please retry" (docs/api-notes.md, "Live exchange").
TRANSIENT_CODES = {"429", "40010", "40015", "40200", "40725", "45001"}
# Also a release-window answer, but equally a real "parameter verification exception": retried only a little.
AMBIGUOUS_CODES = {"40808": "parameter verification exception"}
# The account's mode does not serve this API family: the caller must switch families, never retry.
UNIFIED_ACCOUNT_CODES = {
    "40085": "the account is a Unified Trading Account: the classic v2 API is not supported",
    "40731": "the account is a Unified Trading Account (copy trading): the classic v2 API is not supported",
}
CLASSIC_ACCOUNT_CODES = {"40084": "the account is a classic account: the v3 (unified) API is not supported"}
# What order endpoints answer while an account is upgrading/switching (a guess: docs/api-notes.md).
ACCOUNT_TRANSITION_CODES = {"25007": "the account is switching between classic and unified: run again in a minute"}


class BitgetError(Exception):
    """Base of everything this client raises."""


class BitgetAPIError(BitgetError):
    """Bitget answered with an error code."""

    def __init__(self, code: str, msg: str, endpoint: str, http_status: int | None = None):
        self.code, self.msg, self.endpoint, self.http_status = code, msg, endpoint, http_status
        meaning = (AUTH_CODES.get(code) or PARAMETER_CODES.get(code) or AMBIGUOUS_CODES.get(code)
                   or UNIFIED_ACCOUNT_CODES.get(code) or CLASSIC_ACCOUNT_CODES.get(code)
                   or ACCOUNT_TRANSITION_CODES.get(code))
        text = f"{meaning}: {msg}" if meaning and msg and meaning.lower() != msg.lower() else (meaning or msg)
        super().__init__(f"{text} ({code}) on {endpoint}")


class BitgetAuthError(BitgetAPIError):
    """Credentials, passphrase or clock rejected: fail fast, do not retry."""


class BitgetParameterError(BitgetAPIError):
    """The request itself is wrong (unknown symbol, bad window, ...): do not retry."""


class BitgetTransientError(BitgetAPIError):
    """Rate limited or a server-side hiccup reported by code: retried with backoff."""


class BitgetRateLimitError(BitgetTransientError):
    """HTTP 429 (or code 429): the budget of the UID or the IP is used up; the client pauses and retries."""


class BitgetRateLimitExhaustedError(BitgetRateLimitError):
    """Still rate limited after the client's whole patience: Bitget's lock-out outlasted the wait."""


class BitgetAccountModeError(BitgetAPIError):
    """The API family does not match the account's mode (classic v2 vs unified v3)."""


class BitgetUnifiedAccountError(BitgetAccountModeError):
    """40085/40731 from a v2 endpoint: the account is unified, use the v3 endpoints."""


class BitgetClassicAccountError(BitgetAccountModeError):
    """40084 from a v3 endpoint: the account is classic, use the v2 endpoints."""


class BitgetResponseError(BitgetError):
    """The answer was not a Bitget envelope (HTML error page, truncated JSON, 5xx): retried."""


def api_error(code: str, msg: str, endpoint: str, http_status: int | None) -> BitgetAPIError:
    """The typed error for a Bitget code."""
    if code == "429" or http_status == 429:
        cls = BitgetRateLimitError
    elif code in AUTH_CODES:
        cls = BitgetAuthError
    elif code in UNIFIED_ACCOUNT_CODES:
        cls = BitgetUnifiedAccountError
    elif code in CLASSIC_ACCOUNT_CODES:
        cls = BitgetClassicAccountError
    elif code in ACCOUNT_TRANSITION_CODES:
        cls = BitgetAccountModeError
    elif code in PARAMETER_CODES:
        cls = BitgetParameterError
    elif code in TRANSIENT_CODES or code in AMBIGUOUS_CODES or (http_status or 0) >= 500:
        cls = BitgetTransientError
    else:
        cls = BitgetAPIError
    return cls(code, msg, endpoint, http_status)
