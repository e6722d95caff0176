"""Services for the scale-out tests: Redis, PostgreSQL and RabbitMQ on 127.0.0.1, each isolated per run.

A missing service or client package skips these tests on a developer's machine, and FAILS them when the
CI variable is set: CI must never pass by testing nothing. Every test run gets its own Redis key prefix,
its own Postgres database and its own RabbitMQ vhost, and removes them afterwards.
"""

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.scaleout.cluster import delete_prefix, require, require_module, run_tag

REDIS_URL = os.environ.get("BITGET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG = {
    "host": os.environ.get("BITGET_TEST_PG_HOST", "127.0.0.1"),
    "port": int(os.environ.get("BITGET_TEST_PG_PORT", "5432")),
    "user": os.environ.get("BITGET_TEST_PG_USER", "postgres"),
    "password": os.environ.get("BITGET_TEST_PG_PASSWORD", ""),
    "dbname": os.environ.get("BITGET_TEST_PG_DB", "test"),  # where CREATE DATABASE is issued
}
RABBIT = ("127.0.0.1", 5672)
REPO = Path(__file__).resolve().parents[2]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url():
    redis = require_module("redis")
    try:
        ok = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2).ping()
    except redis.RedisError:
        ok = False
    require(ok, f"Redis at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url):
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"{run_tag()}:"
    yield prefix
    delete_prefix(redis_url, prefix)


@pytest.fixture(scope="module")
def pg_database():
    """A fresh database `bitget_test_<random>` for one module, dropped afterwards."""
    require_module("dagster_postgres")
    psycopg2 = require_module("psycopg2")
    try:
        admin = psycopg2.connect(connect_timeout=3, **PG)
    except psycopg2.OperationalError:
        admin = None
    require(admin is not None, f"PostgreSQL at {PG['host']}:{PG['port']} (user {PG['user']}, db {PG['dbname']})")
    admin.autocommit = True
    name = run_tag()
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {**PG, "dbname": name}
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def rabbit_broker():
    """A RabbitMQ vhost of this module's own (queues vanish with it), as a broker URL."""
    usable = port_open(*RABBIT) and shutil.which("rabbitmqctl") is not None
    require(usable, "RabbitMQ on 127.0.0.1:5672 with rabbitmqctl")
    vhost = run_tag()
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"pyamqp://guest:guest@{RABBIT[0]}:{RABBIT[1]}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)
