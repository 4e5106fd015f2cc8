"""System checks that hold the consent wording to its promise: a published
version's words never change (``marketplace.consent_texts``).

Database checks (``manage.py migrate``, and ``manage.py check --database
default``), because the words that were shown live in the database:

- ``residuals.consent.E001``: a version's text in code no longer hashes to
  the hash stored when that version was published: the text was edited
  without a new version. Put the old words back and add the new wording as
  a new version.
- ``residuals.consent.E002``: a stored version's body no longer hashes to
  its own stored hash: the row was edited in the database.
- ``residuals.consent.E003``: a version performers signed is gone from code.
- ``residuals.consent.E004``: consent records whose stored text hash is not
  the hash of the version they point at.

And one static check, run by every command:

- ``residuals.consent.E005``: ``CURRENT_VERSION`` names no text in code.
"""

from __future__ import annotations

from django.core import checks
from django.db import DatabaseError, connections
from django.db.models import F

from marketplace.consent_texts import text_sha256

TAG = "consent"


def consent_current_version_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    from marketplace.consent_texts import CURRENT_VERSION, TEXTS

    if CURRENT_VERSION in TEXTS:
        return []
    return [
        checks.Error(
            f"CURRENT_VERSION is {CURRENT_VERSION!r}, but marketplace.consent_texts.TEXTS has "
            "no text of that version.",
            id="residuals.consent.E005",
        )
    ]


def consent_texts_unchanged_check(
    app_configs=None, databases=None, **kwargs
) -> list[checks.CheckMessage]:
    if not databases:
        return []
    messages: list[checks.CheckMessage] = []
    for alias in databases:
        try:
            messages += _check_database(alias)
        except DatabaseError as exc:
            messages.append(
                checks.Warning(
                    f"The consent texts in database {alias!r} could not be checked: {exc}",
                    id="residuals.consent.W001",
                )
            )
    return messages


def _check_database(alias: str) -> list[checks.CheckMessage]:
    from marketplace.consent_texts import TEXTS
    from marketplace.models import ConsentRecord, ConsentText

    connection = connections[alias]
    if ConsentText._meta.db_table not in connection.introspection.table_names():
        return []  # before the first migration: nothing was published yet
    messages: list[checks.CheckMessage] = []
    stored = ConsentText.objects.using(alias).order_by("published_at", "pk")
    for text in stored.only("pk", "version", "body", "sha256"):
        if text.version not in TEXTS:
            messages.append(
                checks.Error(
                    f"Consent text version {text.version} is stored (performers may have "
                    "signed it) but is gone from marketplace.consent_texts.TEXTS.",
                    hint="Put the version back: published versions are never removed.",
                    obj=text,
                    id="residuals.consent.E003",
                )
            )
        elif text_sha256(TEXTS[text.version]) != text.sha256:
            messages.append(
                checks.Error(
                    f"The words of consent text version {text.version} changed in code "
                    f"after it was published (stored sha256 {text.sha256[:12]}…, code "
                    f"{text_sha256(TEXTS[text.version])[:12]}…).",
                    hint="Restore the published words and add the new wording under a new "
                    "version (and make it CURRENT_VERSION).",
                    obj=text,
                    id="residuals.consent.E001",
                )
            )
        if text_sha256(text.body) != text.sha256:
            messages.append(
                checks.Error(
                    f"The stored body of consent text version {text.version} does not match "
                    "its stored sha256: the row was edited in the database.",
                    hint="Restore the body from marketplace.consent_texts; the hash is what "
                    "performers' consent records point at.",
                    obj=text,
                    id="residuals.consent.E002",
                )
            )
    mismatched = (
        ConsentRecord.objects.using(alias)
        .exclude(consent_text_sha256=F("consent_text__sha256"))
        .count()
    )
    if mismatched:
        messages.append(
            checks.Error(
                f"{mismatched} consent record(s) store a text hash that is not the hash of "
                "the consent text version they point at.",
                id="residuals.consent.E004",
            )
        )
    return messages
