"""Executor selection by settings: the default stays multiprocess; celery reads its broker from the env."""

import dagster as dg
import pytest

from bitget_assets import executors
from bitget_assets.settings import SettingsError, load_settings
from tests.scaleout.cluster import require_module

BROKER = "amqp://bitget:s3cret@rabbit.internal:5672/bitget"


def test_default_is_the_multiprocess_executor():
    default = object()
    assert executors.selected_executor(load_settings({}).executor, default) is default


def test_unknown_executor_is_refused():
    with pytest.raises(SettingsError, match="BITGET_EXECUTOR"):
        load_settings({"BITGET_EXECUTOR": "slurm"})


def test_celery_executor_keeps_the_broker_url_out_of_its_config():
    require_module("dagster_celery")
    settings = load_settings({"BITGET_EXECUTOR": "celery", "BITGET_CELERY_BROKER": BROKER}).executor
    executor = executors.selected_executor(settings, object())
    assert executor.name == "bitget_celery_executor"
    config = executors.celery_executor_config(settings)
    assert config["broker"] == {"env": "BITGET_CELERY_BROKER"} and config["backend"] == "rpc://"
    assert "s3cret" not in repr(config)
    # Workers build their app from the same settings, with the secret resolved.
    assert executors.celery_app_settings(settings)["broker"] == BROKER
    assert executors.celery_app_settings(settings)["config_source"]["task_acks_late"] is True


def test_redis_broker_doubles_as_result_backend():
    settings = load_settings({"BITGET_CELERY_BROKER": "redis://127.0.0.1:6379/3"}).executor
    assert executors.celery_app_settings(settings)["backend"] == "redis://127.0.0.1:6379/3"
    assert executors.celery_executor_config(settings)["backend"] == {"env": "BITGET_CELERY_BROKER"}


@dg.op
def _emit() -> dict:
    return {"BTCUSDT:USDT-FUTURES": {"orders": 3}}


@dg.op
def _take(results: dict) -> None:
    assert results["BTCUSDT:USDT-FUTURES"]["orders"] == 3


@dg.job
def _handoff_job():
    _take(_emit())


def test_step_results_default_to_dagster_storage():
    assert executors.step_io_manager(load_settings({})) == {}


def test_step_results_go_to_s3_for_workers_on_other_machines(s3_env):
    settings = load_settings({"BITGET_IO_MANAGER_BASE": f"s3://{s3_env['bucket']}/steps",
                              "BITGET_S3_ENDPOINT_URL": s3_env["endpoint_url"]})
    result = _handoff_job.execute_in_process(resources=executors.step_io_manager(settings))
    assert result.success
    keys = [o["Key"] for o in s3_env["client"].list_objects_v2(Bucket=s3_env["bucket"])["Contents"]]
    assert any(k.startswith("steps/") and k.endswith(f"/{result.run_id}/_emit/result") for k in keys), keys


def test_step_results_in_a_shared_folder(tmp_path):
    settings = load_settings({"BITGET_IO_MANAGER_BASE": str(tmp_path)})
    result = _handoff_job.execute_in_process(resources=executors.step_io_manager(settings))
    assert result.success
    assert (tmp_path / result.run_id / "_emit" / "result").exists()
