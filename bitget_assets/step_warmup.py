"""Imported once by the step forkserver (jobs.FORKSERVER_PRELOAD), so that every step forked from it starts warm.

Besides the code location, a step opens the Dagster instance, which imports some 500 more modules (SQLite
storage, alembic, sqlalchemy dialects): 0.8 s in every step process when they are not loaded yet, once per
wave of steps on the critical path. Opening (and closing) the instance here loads them once for all steps.
"""

import gc
import os

import dagster as dg

import bitget_assets.definitions  # noqa: F401 - the code location itself

if os.environ.get("DAGSTER_HOME"):
    with dg.DagsterInstance.get() as instance:
        instance.get_runs(limit=1)

# Everything loaded so far lives as long as the process: out of the collector's sight, a full collection no
# longer walks (and, in a forked step, copies) the pages of a million long-lived objects.
gc.freeze()
