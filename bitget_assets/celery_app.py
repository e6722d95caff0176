"""The Celery app of this project's dagster-celery workers, configured from the same settings as the executor.

Start a worker on any machine that has the code, the BITGET_* and DAGSTER_PG_* variables of the runs, and
reaches the broker, Postgres, Redis and the output storage:

    celery -A bitget_assets.celery_app worker --concurrency 2 --loglevel INFO

(`dagster-celery worker start -A bitget_assets.celery_app` works too.) See docs/deploy.md.
"""

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task

from bitget_assets.executors import celery_app_settings
from bitget_assets.settings import load_settings

app = make_app(CeleryExecutor.for_cli(**celery_app_settings(load_settings().executor)).app_args())

execute_plan = create_task(app)
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)
