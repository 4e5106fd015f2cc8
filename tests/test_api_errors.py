"""Every API error has one shape: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def _assert_shape(response, status, code):
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def test_unknown_api_path(client, owner):
    client.force_login(owner)
    _assert_shape(client.get("/api/v1/no-such-thing/"), 404, "not_found")


def test_method_not_allowed(client, owner):
    client.force_login(owner)
    _assert_shape(client.delete("/api/v1/me/"), 405, "method_not_allowed")


def test_not_authenticated(client):
    _assert_shape(client.get("/api/v1/organizations/"), 401, "not_authenticated")


def test_schema_and_docs_are_served_without_a_cdn(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/me/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/" in html
