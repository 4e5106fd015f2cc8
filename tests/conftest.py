"""Shared fixtures. The suite runs on PostgreSQL only: SQLite would hide
locking, full-text search and constraint behaviour the product relies on."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache

from tests.factories import make_organization, make_performer, make_user


def pytest_configure(config):
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        raise pytest.UsageError(
            "The tests run on PostgreSQL. Set DATABASE_URL=postgres://postgres@127.0.0.1:5432/"
            f"residuals (found engine {engine}); 'make test' does this for you."
        )


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    # Every test stores files in its own folder, never in var/media.
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fresh_cache():
    # allauth keeps rate limits and used TOTP codes in the cache.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def performer(db):
    return make_performer(email="performer@example.com")


@pytest.fixture
def owner(db):
    return make_user(email="owner@buyer.example", full_name="Olivia Owner")


@pytest.fixture
def organization(owner):
    return make_organization(owner=owner, name="Acme AI")


@pytest.fixture
def member(organization):
    from accounts.models import Membership

    user = make_user(email="member@buyer.example", full_name="Max Member")
    Membership.objects.create(organization=organization, user=user, role=Membership.Role.MEMBER)
    return user


@pytest.fixture
def outsider(db):
    return make_user(email="outsider@elsewhere.example", full_name="Oscar Outsider")


@pytest.fixture
def staff_user(db):
    return make_user(email="staff@residuals.example", full_name="Stella Staff", is_staff=True)


@pytest.fixture(scope="session")
def _stripe_double_server():
    from tests.stripe_double import StripeDouble

    server = StripeDouble().start()
    yield server
    server.stop()


@pytest.fixture
def stripe_double(_stripe_double_server, settings):
    """The Stripe double, with the project's gateway pointed at it. Any request
    Stripe's OpenAPI description would refuse fails the test."""
    _stripe_double_server.reset()
    settings.STRIPE_SECRET_KEY = "sk_test_residuals"
    settings.STRIPE_API_BASE = _stripe_double_server.url
    settings.STRIPE_WEBHOOK_SECRETS = ["whsec_test_residuals"]
    yield _stripe_double_server
    violations = list(_stripe_double_server.violations)
    expected = getattr(_stripe_double_server, "expected_violations", 0)
    _stripe_double_server.expected_violations = 0
    assert len(violations) == expected, f"Requests Stripe would refuse: {violations}"
