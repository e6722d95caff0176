"""Which executor runs a job's steps, chosen by environment: one code location serves a laptop and a cluster.

- `BITGET_EXECUTOR=multiprocess` (default): step processes on the machine of the run (forkserver).
- `BITGET_EXECUTOR=celery`: every step is a task on dagster-celery workers, started on any machine with
  `celery -A bitget_assets.celery_app worker`, through `BITGET_CELERY_BROKER` (RabbitMQ or Redis URL); step
  results come back through `BITGET_CELERY_BACKEND` (default `rpc://` with RabbitMQ, the broker with Redis).

The workers build their Celery app from the same variables (`bitget_assets.celery_app`), so the run and its
workers cannot disagree about the broker or the delivery guarantees.
"""

import os
import warnings

import dagster as dg

EXECUTOR_ENV = "BITGET_EXECUTOR"
BROKER_ENV = "BITGET_CELERY_BROKER"
BACKEND_ENV = "BITGET_CELERY_BACKEND"
DEFAULT_BROKER = "pyamqp://guest@127.0.0.1:5672//"

# A step is acknowledged only once it has finished, so a worker that dies mid-step hands its step back to
# the broker, which gives it to another worker (steps replace their partitions, so running twice is safe).
# One step per worker process at a time: a prefetched step would wait behind a long one.
CELERY_SETTINGS = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "broker_connection_retry_on_startup": True,
}
# Worker processes import the code location once at start, then fork per step with it loaded.
CELERY_INCLUDE = ["bitget_assets.definitions"]


def executor_kind() -> str:
    kind = os.environ.get(EXECUTOR_ENV, "multiprocess").strip().lower() or "multiprocess"
    if kind not in ("multiprocess", "celery"):
        raise ValueError(f"{EXECUTOR_ENV}={kind!r}: expected 'multiprocess' or 'celery'")
    return kind


def _backend_from_broker(broker: str) -> bool:
    return broker.startswith(("redis://", "rediss://"))


def celery_app_settings() -> dict:
    """Broker, backend, include and Celery settings, as resolved values (what a worker's app is made of)."""
    broker = os.environ.get(BROKER_ENV) or DEFAULT_BROKER
    backend = os.environ.get(BACKEND_ENV) or (broker if _backend_from_broker(broker) else "rpc://")
    return {"broker": broker, "backend": backend, "include": CELERY_INCLUDE, "config_source": CELERY_SETTINGS}


def celery_executor_config() -> dict:
    """The celery executor's config; URLs set in the environment stay references, so no password is shown."""
    broker = os.environ.get(BROKER_ENV) or DEFAULT_BROKER
    if os.environ.get(BACKEND_ENV):
        backend = {"env": BACKEND_ENV}
    elif _backend_from_broker(broker):
        backend = {"env": BROKER_ENV}
    else:
        backend = "rpc://"
    return {
        "broker": {"env": BROKER_ENV} if os.environ.get(BROKER_ENV) else DEFAULT_BROKER,
        "backend": backend,
        "include": CELERY_INCLUDE,
        "config_source": CELERY_SETTINGS,
    }


def selected_executor(default: dg.ExecutorDefinition) -> dg.ExecutorDefinition:
    """`default` unless BITGET_EXECUTOR names another engine."""
    if executor_kind() == "celery":
        from celery.exceptions import DuplicateTaskNameWarning
        from dagster_celery import celery_executor  # optional extra: pip install 'bitget_assets[celery]'

        # dagster-celery re-declares its one task for every step it submits: harmless, but a warning per step.
        warnings.filterwarnings("ignore", category=DuplicateTaskNameWarning)
        return celery_executor.configured(celery_executor_config(), name="bitget_celery_executor")
    return default


IO_MANAGER_ENV = "BITGET_IO_MANAGER_BASE"


def step_io_manager() -> dict:
    """Where steps hand their results to the next step, for workers on several machines.

    By default Dagster keeps them under $DAGSTER_HOME/storage of the machine that runs each step, which only
    works while every step runs on one machine (or that folder is shared). BITGET_IO_MANAGER_BASE names an
    `s3://bucket/prefix` (through BITGET_S3_ENDPOINT_URL, like the output storage) or a folder every worker mounts.
    """
    base = os.environ.get(IO_MANAGER_ENV, "").strip()
    if not base:
        return {}
    if base.startswith("s3://"):
        from dagster_aws.s3 import S3PickleIOManager, S3Resource

        bucket, _, prefix = base.removeprefix("s3://").partition("/")
        s3 = S3Resource(endpoint_url=os.environ.get("BITGET_S3_ENDPOINT_URL") or None)
        prefix = prefix.strip("/") or "dagster"
        return {"io_manager": S3PickleIOManager(s3_resource=s3, s3_bucket=bucket, s3_prefix=prefix)}
    return {"io_manager": dg.FilesystemIOManager(base_dir=base)}
