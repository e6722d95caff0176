"""Which executor runs a job's steps, chosen by settings: one code location serves a laptop and a cluster.

- multiprocess (default): step processes on the machine of the run, forked from a preloaded forkserver.
- celery (BITGET_EXECUTOR=celery): every step is a task on dagster-celery workers, started on any machine with
  `celery -A bitget_assets.celery_app worker`, through BITGET_CELERY_BROKER (RabbitMQ or Redis URL); step results
  come back through BITGET_CELERY_BACKEND (default `rpc://` with RabbitMQ, the broker with Redis).

The workers build their Celery app from the same settings (`bitget_assets.celery_app`), so the run and its
workers cannot disagree about the broker or the delivery guarantees.
"""

import warnings

import dagster as dg

from bitget_assets.settings import ExecutorSettings, Settings

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
# Modules the step forkserver imports once, so every step is forked with dagster, polars and our assets loaded.
FORKSERVER_PRELOAD = ["dagster._core.executor.multiprocess", "bitget_assets.step_warmup"]
# forkserver starts a step process for about half the CPU that spawn needs (see docs/performance.md). As many
# steps at once as the machine has cores (Dagster's default): a chunk step applying scanned symbols is CPU and
# memory work, so more would only add a step's memory each (docs/performance.md, merge-3m), and its reads from
# the exchange overlap on threads inside it.
step_processes_executor = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": FORKSERVER_PRELOAD}}}
)


def celery_app_settings(settings: ExecutorSettings) -> dict:
    """Broker, backend, include and Celery settings, as resolved values (what a worker's app is made of)."""
    return {"broker": settings.broker_url, "backend": settings.backend_url, "include": CELERY_INCLUDE,
            "config_source": CELERY_SETTINGS}


def celery_executor_config(settings: ExecutorSettings) -> dict:
    """The celery executor's config; URLs set in the environment stay references, so no password is shown."""
    return {
        "broker": {"env": settings.broker_env} if settings.broker_env else settings.broker_default,
        "backend": {"env": settings.backend_env} if settings.backend_env else settings.backend_url,
        "include": CELERY_INCLUDE,
        "config_source": CELERY_SETTINGS,
    }


def selected_executor(settings: ExecutorSettings, default: dg.ExecutorDefinition) -> dg.ExecutorDefinition:
    """`default` unless the settings name celery."""
    if settings.kind == "celery":
        from celery.exceptions import DuplicateTaskNameWarning
        from dagster_celery import celery_executor  # optional extra: pip install 'bitget_assets[celery]'

        # dagster-celery re-declares its one task for every step it submits: harmless, but a warning per step.
        warnings.filterwarnings("ignore", category=DuplicateTaskNameWarning)
        return celery_executor.configured(celery_executor_config(settings), name="bitget_celery_executor")
    return default


def step_io_manager(settings: Settings) -> dict:
    """Where steps hand their results to the next step, for workers on several machines.

    By default Dagster keeps them under $DAGSTER_HOME/storage of the machine that runs each step, which only
    works while every step runs on one machine (or that folder is shared). BITGET_IO_MANAGER_BASE names an
    `s3://bucket/prefix` (through BITGET_S3_ENDPOINT_URL, like the output storage) or a folder every worker mounts.
    """
    base = settings.io_manager_base
    if not base:
        return {}
    if base.startswith("s3://"):
        from dagster_aws.s3 import S3PickleIOManager, S3Resource

        bucket, _, prefix = base.removeprefix("s3://").partition("/")
        s3 = S3Resource(endpoint_url=settings.s3_endpoint_url)
        prefix = prefix.strip("/") or "dagster"
        return {"io_manager": S3PickleIOManager(s3_resource=s3, s3_bucket=bucket, s3_prefix=prefix)}
    return {"io_manager": dg.FilesystemIOManager(base_dir=base)}
