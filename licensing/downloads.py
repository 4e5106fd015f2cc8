"""Short-lived signed download links, checked again when they are used.

A link carries (license, recording, who asked) signed with the SECRET_KEY
and a timestamp; it works for DOWNLOAD_LINK_SECONDS (default 15 minutes).
When it is used, the license must still be active now, the recording still
part of it and not suspended or removed, and the person still a member of
the organization (or the API key still active): a valid signature alone is
never enough (DESIGN.md invariant 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey, Membership
from accounts.selectors import Principal
from core.errors import ApplicationError, NotFound, PermissionDenied
from licensing.models import DownloadLog, License
from licensing.selectors import license_is_usable
from marketplace.models import Recording

SALT = "residuals.licensing.download"


class LinkExpired(ApplicationError):
    code = "link_expired"
    status_code = 410
    default_message = "This download link has expired. Ask for a new one from the license page."


class LicenseNotActive(ApplicationError):
    code = "license_not_active"
    status_code = 403
    default_message = "The license is not active, so its files cannot be downloaded."


@dataclass(frozen=True)
class DownloadLink:
    recording_uid: str
    url: str
    expires_at: datetime


def _check_usable(license: License, recording: Recording) -> None:
    if not license_is_usable(license):
        state = license.get_status_display().lower()
        if license.status == License.Status.ACTIVE and license.ends_at <= timezone.now():
            state = "expired"
        raise LicenseNotActive(f"License {license.uid} is {state}; its files cannot be downloaded.")
    if not license.items.filter(recording=recording).exists():
        raise NotFound("This recording is not part of the license.", code="not_in_license")
    if recording.status != Recording.Status.ACTIVE:
        state = recording.get_status_display().lower()
        raise PermissionDenied(
            f"Recording {recording.uid} is {state} and cannot be downloaded.",
            code="recording_unavailable",
        )


def download_links_create(
    *, license: License, principal: Principal, recording_uids: list[str] | None = None
) -> list[DownloadLink]:
    """Links for the license's files (or the named ones)."""
    if not principal.can_act_for(license.organization_id):
        raise NotFound("No such license.")
    recordings = list(license.recordings.all().order_by("license_items__id"))
    if recording_uids:
        wanted = set(recording_uids)
        recordings = [r for r in recordings if r.uid in wanted]
        missing = wanted - {r.uid for r in recordings}
        if missing:
            raise NotFound(
                f"Not part of the license: {', '.join(sorted(missing))}.", code="not_in_license"
            )
    lifetime = timedelta(seconds=settings.DOWNLOAD_LINK_SECONDS)
    expires_at = timezone.now() + lifetime
    links = []
    for recording in recordings:
        _check_usable(license, recording)
        token = signing.dumps(
            {
                "l": license.pk,
                "r": recording.pk,
                "u": principal.user.pk,
                "k": principal.api_key.pk if principal.api_key else None,
            },
            salt=SALT,
            compress=True,
        )
        links.append(
            DownloadLink(
                recording_uid=recording.uid,
                url=settings.SITE_URL + reverse("license_download", args=[token]),
                expires_at=expires_at,
            )
        )
    return links


@dataclass(frozen=True)
class ResolvedDownload:
    license: License
    recording: Recording
    user_id: int
    api_key_prefix: str


def download_resolve(token: str) -> ResolvedDownload:
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.DOWNLOAD_LINK_SECONDS)
    except signing.SignatureExpired:
        raise LinkExpired() from None
    except signing.BadSignature:
        raise NotFound("This download link is not valid.", code="link_invalid") from None
    license = License.objects.select_related("organization").filter(pk=data["l"]).first()
    recording = Recording.objects.filter(pk=data["r"]).first()
    if license is None or recording is None:
        raise NotFound("This download link is not valid.", code="link_invalid")
    api_key_prefix = ""
    if data.get("k"):
        key = ApiKey.objects.filter(pk=data["k"]).first()
        if (
            key is None
            or key.revoked_at is not None
            or key.organization_id != license.organization_id
        ):
            raise PermissionDenied(
                "The API key that asked for this link is no longer valid.", code="api_key_revoked"
            )
        api_key_prefix = key.prefix
    elif not Membership.objects.filter(
        organization_id=license.organization_id, user_id=data["u"]
    ).exists():
        raise PermissionDenied(
            "You are no longer a member of the organization that holds this license.",
            code="not_a_member",
        )
    _check_usable(license, recording)
    return ResolvedDownload(license, recording, data["u"], api_key_prefix)


def download_log_start(
    *, resolved: ResolvedDownload, byte_range: str, ip: str | None, kind: str = "file"
) -> DownloadLog:
    return DownloadLog.objects.create(
        license=resolved.license,
        recording=resolved.recording,
        user_id=resolved.user_id,
        api_key_prefix=resolved.api_key_prefix,
        kind=kind,
        byte_range=byte_range[:100],
        ip_address=ip,
    )


def download_log_progress(log_id: int, bytes_sent: int, finished: bool) -> None:
    DownloadLog.objects.filter(pk=log_id).update(
        bytes_sent=F("bytes_sent") + bytes_sent, completed=finished
    )
