"""A real Celery worker process on a real broker, for the tests that must
prove a flow works outside eager mode.

The worker runs the project's code against the test database; tests that use
it need committed data (``transactional_db``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

from config.celery_app import app

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parent.parent


def _database_url() -> str:
    s = connection.settings_dict
    user = s.get("USER") or ""
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def _point_app_at(broker_url: str | None, backend_url: str | None, queue: str | None, eager: bool):
    app.conf.broker_url = broker_url
    app.conf.result_backend = backend_url
    app.conf.task_always_eager = eager
    if queue:
        app.conf.task_default_queue = queue
    # Drop connections and the result backend made with the old settings.
    app._pool = None
    app.amqp.__dict__.pop("_producer_pool", None)
    app.amqp._producer_pool = None
    app._backend_cache = None
    app._local = threading.local()


class Worker:
    def __init__(self, process: subprocess.Popen, log: Path, queue: str):
        self.process = process
        self.log = log
        self.queue = queue

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 30) -> bool:
        """The worker logs after it stores a result, so poll for log lines."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            time.sleep(0.1)
        return False

    def kill(self) -> None:
        """SIGKILL: the worker dies mid-task, as in a crash."""
        self.process.kill()
        self.process.wait(timeout=30)


def start_worker(
    *,
    broker_url: str = REDIS_URL,
    queue: str,
    log: Path,
    concurrency: int = 1,
    pool: str = "prefork",
    extra_env: dict | None = None,
) -> Worker:
    env = {
        **os.environ,
        "RESIDUALS_ENV": "test",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker_url,
        "CELERY_RESULT_BACKEND": REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        **(extra_env or {}),
    }
    handle = log.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
            f"--pool={pool}",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "-Q",
            queue,
            "-n",
            f"test-{uuid.uuid4().hex[:8]}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    worker = Worker(process, log, queue)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"The Celery worker exited at start-up:\n{worker.output()}")
        if " ready." in worker.output():
            return worker
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"The Celery worker did not start within 60 s:\n{worker.output()}")


def stop_worker(worker: Worker) -> None:
    if worker.process.poll() is None:
        worker.process.terminate()
        try:
            worker.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait(timeout=10)


@contextmanager
def running_workers(tmp_path: Path, count: int, **kwargs):
    """Several worker processes on one Redis queue."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    saved = (
        app.conf.broker_url,
        app.conf.result_backend,
        app.conf.task_default_queue,
        app.conf.task_always_eager,
    )
    workers = [
        start_worker(queue=queue, log=tmp_path / f"worker-{i}.log", **kwargs) for i in range(count)
    ]
    _point_app_at(kwargs.get("broker_url", REDIS_URL), REDIS_URL, queue, eager=False)
    try:
        yield workers
    finally:
        for worker in workers:
            stop_worker(worker)
        broker, backend, default_queue, eager = saved
        _point_app_at(broker, backend, default_queue, eager)


@contextmanager
def running_worker(tmp_path: Path, **kwargs):
    """Start a worker on Redis, point this process's Celery app at the same
    broker and queue, and put everything back afterwards."""
    queue = f"test-{uuid.uuid4().hex[:12]}"
    saved = (
        app.conf.broker_url,
        app.conf.result_backend,
        app.conf.task_default_queue,
        app.conf.task_always_eager,
    )
    worker = start_worker(queue=queue, log=tmp_path / "worker.log", **kwargs)
    _point_app_at(kwargs.get("broker_url", REDIS_URL), REDIS_URL, queue, eager=False)
    try:
        yield worker
    finally:
        stop_worker(worker)
        broker, backend, default_queue, eager = saved
        _point_app_at(broker, backend, default_queue, eager)
