"""Test instrumentation for the crash suite: holds sorted_orders in the middle of its final write.

Put this folder on PYTHONPATH and set BITGET_TEST_HOLD_FINAL_WRITE to a marker path: every Python process of
that run (the CLI, the step forkserver and the step processes it forks) then writes orders.json only half
way into the staging folder, creates the marker, and waits there, so the test's kill -9 provably lands
inside the final write instead of by luck. Without the variable, this module does nothing.
"""

import os

_MARKER = os.environ.get("BITGET_TEST_HOLD_FINAL_WRITE")
_HOLD_S = 120.0  # far longer than the test takes to notice the marker and kill the group

if _MARKER:
    import io
    import time

    import bitget_assets.orders as _orders  # before bitget_assets.extraction imports the name

    _original = _orders.write_json_document

    def _held_write_json_document(df, out, **kwargs):
        buf = io.BytesIO()
        _original(df, buf, **kwargs)
        data = buf.getvalue()
        out.write(data[: len(data) // 2])
        out.flush()
        with open(_MARKER, "w") as marker:
            marker.write(str(os.getpid()))
        time.sleep(_HOLD_S)
        out.write(data[len(data) // 2:])

    _orders.write_json_document = _held_write_json_document
