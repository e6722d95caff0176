"""Imported once by the step forkserver (executors.FORKSERVER_PRELOAD), so that every step forked from it starts
warm: the code location, and the SQLite storage modules a step imports when it opens the instance (some 500
modules: sqlalchemy dialects, alembic), which would otherwise load in every step process."""

import gc
import tempfile
from pathlib import Path

import dagster as dg

import bitget_assets.definitions  # noqa: F401 - the code location itself

with tempfile.TemporaryDirectory(prefix="bitget-warmup-") as _home:  # a throwaway SQLite instance
    (Path(_home) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(_home) as _instance:
        _instance.get_runs(limit=1)

# Everything loaded so far lives as long as the process: out of the collector's sight, a full collection no
# longer walks (and, in a forked step, copies) the pages of a million long-lived objects.
gc.freeze()
