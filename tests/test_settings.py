"""Production settings: refuse to start without a secret, pass check --deploy."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args, **env):
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = _manage("check", RESIDUALS_ENV="production", ALLOWED_HOSTS="residuals.example")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_a_short_secret_key():
    result = _manage(
        "check", RESIDUALS_ENV="production", ALLOWED_HOSTS="residuals.example", SECRET_KEY="short"
    )
    assert result.returncode != 0


def test_check_deploy_is_clean_with_production_variables():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        RESIDUALS_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="residuals.example",
        DEBUG="1",  # production ignores it
        STRIPE_SECRET_KEY="sk_live_placeholder",
        STRIPE_WEBHOOK_SECRETS="whsec_placeholder",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_never_turns_debug_on():
    result = _manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.conf import settings; print(settings.DEBUG, settings.SESSION_COOKIE_SECURE,"
        " settings.CSRF_COOKIE_SECURE, settings.SECURE_HSTS_SECONDS)",
        RESIDUALS_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="residuals.example",
        DEBUG="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "True", "31536000"]


def test_production_refuses_the_simulated_gateway():
    result = _manage(
        "check",
        "--deploy",
        RESIDUALS_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="residuals.example",
        STRIPE_SECRET_KEY="",
    )
    assert result.returncode != 0
    assert "residuals.payments.E001" in result.stdout + result.stderr


def test_every_beat_entry_names_a_registered_task(settings):
    from config.celery_app import app

    app.loader.import_default_modules()
    missing = [
        entry["task"]
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] not in app.tasks
    ]
    assert missing == []
