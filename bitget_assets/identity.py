"""Which Bitget account an output location belongs to, kept with its state: UID and mode (classic or unified).

The scan learns both from the exchange every run (one cheap probe, bitget.account), keys the shared rate budget by
the UID (Bitget counts per UID, whatever the key), and ties the output folder to that UID: a rotated API key keeps
working on the same history, another account's key is refused. An account upgraded from classic to unified between
two refreshes keeps its history and marks: only the endpoints it is read from change.
"""

from bitget_assets import history_store as hs
from bitget_assets.bitget.account import detect_account_mode
from bitget_assets.storage import Storage

ACCOUNT_FILE = "account.json"


class AnotherAccountError(ValueError):
    """The output location holds the history of another Bitget account."""


def account_identity(storage: Storage) -> dict:
    """What the last scan learnt ({} before the first)."""
    return hs.read_json(storage, ACCOUNT_FILE) or {}


def api_version_of(identity: dict) -> int:
    return 3 if identity.get("mode") == "unified" else 2


def learn_identity(client, storage: Storage, log=None) -> dict:
    """Probe the account's mode and UID (setting `client.uid`), check them against the location's, record them."""
    mode = detect_account_mode(client)
    stored = account_identity(storage)
    if stored.get("uid") and stored["uid"] != mode.uid:
        raise AnotherAccountError(
            f"this output location holds the order history of Bitget UID {stored['uid']}, and this API key "
            f"belongs to UID {mode.uid}; choose another --output (mixing accounts would corrupt both histories)")
    if stored.get("mode") and stored["mode"] != mode.mode and log is not None:
        log.info(f"the account is {mode.mode} now (was {stored['mode']}): reading its "
                 f"{'v3' if mode.mode == 'unified' else 'v2'} endpoints; history and marks are kept")
    identity = {"uid": mode.uid, "mode": mode.mode, "state": mode.raw_state}
    if identity != stored:
        hs.write_json(storage, ACCOUNT_FILE, identity)
    return identity
