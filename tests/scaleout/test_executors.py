"""Executor selection by environment: the default stays multiprocess; celery reads its broker from the env."""

import dagster as dg
import pytest

from bitget_assets import executors
from tests.scaleout.cluster import require_module

BROKER = "amqp://bitget:s3cret@rabbit.internal:5672/bitget"


def test_default_is_the_multiprocess_executor(monkeypatch):
    monkeypatch.delenv(executors.EXECUTOR_ENV, raising=False)
    default = object()
    assert executors.selected_executor(default) is default


def test_unknown_executor_is_refused(monkeypatch):
    monkeypatch.setenv(executors.EXECUTOR_ENV, "slurm")
    with pytest.raises(ValueError, match="BITGET_EXECUTOR"):
        executors.selected_executor(object())


def test_celery_executor_keeps_the_broker_url_out_of_its_config(monkeypatch):
    require_module("dagster_celery")
    monkeypatch.setenv(executors.EXECUTOR_ENV, "celery")
    monkeypatch.setenv(executors.BROKER_ENV, BROKER)
    monkeypatch.delenv(executors.BACKEND_ENV, raising=False)
    executor = executors.selected_executor(object())
    assert executor.name == "bitget_celery_executor"
    config = executors.celery_executor_config()
    assert config["broker"] == {"env": executors.BROKER_ENV} and config["backend"] == "rpc://"
    assert "s3cret" not in repr(config)
    # Workers build their app from the same variables, with the secret resolved.
    assert executors.celery_app_settings()["broker"] == BROKER
    assert executors.celery_app_settings()["config_source"]["task_acks_late"] is True


def test_redis_broker_doubles_as_result_backend(monkeypatch):
    monkeypatch.setenv(executors.BROKER_ENV, "redis://127.0.0.1:6379/3")
    monkeypatch.delenv(executors.BACKEND_ENV, raising=False)
    assert executors.celery_app_settings()["backend"] == "redis://127.0.0.1:6379/3"
    assert executors.celery_executor_config()["backend"] == {"env": executors.BROKER_ENV}


@dg.op
def _emit() -> dict:
    return {"BTCUSDT:USDT-FUTURES": {"orders": 3}}


@dg.op
def _take(results: dict) -> None:
    assert results["BTCUSDT:USDT-FUTURES"]["orders"] == 3


@dg.job
def _handoff_job():
    _take(_emit())


def test_step_results_default_to_dagster_storage(monkeypatch):
    monkeypatch.delenv(executors.IO_MANAGER_ENV, raising=False)
    assert executors.step_io_manager() == {}


def test_step_results_go_to_s3_for_workers_on_other_machines(monkeypatch, s3_env):
    monkeypatch.setenv(executors.IO_MANAGER_ENV, f"s3://{s3_env['bucket']}/steps")
    monkeypatch.setenv("BITGET_S3_ENDPOINT_URL", s3_env["endpoint_url"])
    resources = executors.step_io_manager()
    result = _handoff_job.execute_in_process(resources=resources)
    assert result.success
    keys = [o["Key"] for o in s3_env["client"].list_objects_v2(Bucket=s3_env["bucket"])["Contents"]]
    assert any(k.startswith("steps/") and k.endswith(f"/{result.run_id}/_emit/result") for k in keys), keys


def test_step_results_in_a_shared_folder(monkeypatch, tmp_path):
    monkeypatch.setenv(executors.IO_MANAGER_ENV, str(tmp_path))
    result = _handoff_job.execute_in_process(resources=executors.step_io_manager())
    assert result.success
    assert (tmp_path / result.run_id / "_emit" / "result").exists()
