"""Web pages of licensing. Thin: reads go through selectors, writes through
services; every page of an organization is reachable only by its members
(anyone else gets 404, as on the organization's other pages)."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
    require_safe,
)
from rest_framework import exceptions as drf_exceptions

from accounts.authentication import ApiKeyAuthentication
from accounts.models import Membership, Organization
from accounts.selectors import organization_for_member, organizations_for_user, principal_for
from core.api import error_response
from core.errors import ApplicationError, PermissionDenied, ValidationError
from core.http import ranged_file_response
from core.payments import payments_simulated
from core.services import client_ip
from core.staff_views import staff_required
from licensing import selectors
from licensing.archive import archive_filename, license_archive_prepare, license_archive_stream
from licensing.certificates import (
    CertificateInvalid,
    certificate_for,
    certificate_verify,
    public_key_document,
)
from licensing.croissant import manifest_for
from licensing.downloads import (
    download_links_create,
    download_log_progress,
    download_log_start,
    download_resolve,
)
from licensing.forms import CertificateVerifyForm, DeletionAttestationForm
from licensing.lifecycle import attestation_submit
from licensing.models import CartItem, DeletionAttestation, DownloadLog, License, Order
from licensing.services import cart_add, cart_remove, checkout_start, listing_unavailable_reason
from marketplace.models import Listing, Recording
from marketplace.selectors_catalogue import (
    license_duration_words,
    listing_terms_summary,
    per_unit_rate_phrases,
    reuse_cap_phrases,
    revenue_share_phrase,
    territories_phrase,
    uses_phrase,
)

# --- Helpers -----------------------------------------------------------------------------------


def _license_of(request, organization: Organization, uid: str) -> License:
    """The organization's license, or 404 (also for another organization's)."""
    license = selectors.license_for(principal_for(request.user, None), uid)
    if license.organization_id != organization.pk:
        raise Http404("No such license.")
    return license


def days_left(license: License, now=None) -> int | None:
    """Whole days until the license ends (rounded up), None once it has ended."""
    now = now or timezone.now()
    if license.ends_at <= now:
        return None
    return math.ceil((license.ends_at - now).total_seconds() / 86400)


def days_until_start(license: License, now=None) -> int:
    now = now or timezone.now()
    return max(0, math.ceil((license.starts_at - now).total_seconds() / 86400))


def plain_terms(license: License) -> dict:
    """The frozen terms, in the catalogue's plain language."""
    terms = license.terms
    frozen = SimpleNamespace(**{**terms, "currency": license.currency})
    return {
        "duration": license_duration_words(terms["duration_days"]),
        "territories": territories_phrase(frozen),
        "uses": uses_phrase(terms["permitted_uses"]),
        "revenue_share": revenue_share_phrase(frozen),
        "per_unit_rates": per_unit_rate_phrases(frozen),
        "reuse_caps": reuse_cap_phrases(frozen),
        "sublicensing": terms["sublicensing_allowed"],
        "attribution": terms["attribution_required"],
        "exclusive": terms.get("exclusivity") == "exclusive",
    }


def _wants_json(request) -> bool:
    return "Authorization" in request.headers or "application/json" in request.headers.get(
        "Accept", ""
    )


DOWNLOAD_ERROR_TITLES = {
    "link_expired": "This download link has expired",
    "link_invalid": "This download link is not valid",
    "license_not_active": "The license is not active",
    "not_a_member": "This link is for another organization",
    "recording_unavailable": "This recording is unavailable",
    "api_key_revoked": "The API key behind this link was revoked",
}


def _download_error(request, exc: ApplicationError):
    """The error as JSON for machines, as a page for people."""
    if _wants_json(request):
        return error_response(exc.code, exc.message, exc.status_code, exc.details)
    title = DOWNLOAD_ERROR_TITLES.get(exc.code, "The file can’t be downloaded")
    return render(
        request,
        "licensing/download_error.html",
        {
            "error": exc,
            "title": title,
            "detail": "" if exc.message.rstrip(".") == title else exc.message,
        },
        status=exc.status_code,
    )


def _org_nav(organization, membership, current: str) -> dict:
    return {"organization": organization, "membership": membership, "current": current}


# --- Cart and checkout ----------------------------------------------------------------------


@login_required
@require_POST
def buyer_cart_add(request):
    """From the catalogue: ``listing`` (id) and ``organization`` (slug; may be
    left out when the person belongs to exactly one organization)."""
    listing = get_object_or_404(Listing, pk=request.POST.get("listing") or 0)
    back = reverse("catalogue_detail", args=[listing.pk])
    slug = request.POST.get("organization", "")
    if slug:
        organization, _ = organization_for_member(user=request.user, slug=slug)
    else:
        organizations = list(organizations_for_user(request.user)[:2])
        if not organizations:
            messages.error(
                request, "Licenses belong to a buyer organization: create or join one first."
            )
            return redirect("buyer_dashboard")
        if len(organizations) > 1:
            messages.error(request, "Choose which organization the license is for.")
            return redirect(back)
        organization = organizations[0]
    try:
        cart_add(organization=organization, user=request.user, listing=listing)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(back)
    messages.success(request, f"“{listing.title}” is in {organization.name}’s cart.")
    return redirect("buyer_cart", slug=organization.slug)


@login_required
@require_safe
def buyer_cart(request, slug: str):
    organization, membership = organization_for_member(user=request.user, slug=slug)
    items = list(
        CartItem.objects.filter(organization=organization).select_related(
            "listing__performer", "added_by"
        )
    )
    rows = [
        {
            "item": item,
            "listing": item.listing,
            "summary": listing_terms_summary(item.listing),
            "problem": listing_unavailable_reason(item.listing),
        }
        for item in items
    ]
    currencies = sorted({row["listing"].currency for row in rows})
    totals = [
        (currency, sum(r["listing"].price_minor for r in rows if r["listing"].currency == currency))
        for currency in currencies
    ]
    return render(
        request,
        "licensing/cart.html",
        {
            **_org_nav(organization, membership, "cart"),
            "rows": rows,
            "totals": totals,
            "mixed_currencies": len(currencies) > 1,
            "has_problems": any(row["problem"] for row in rows),
            "simulated": payments_simulated(),
        },
    )


@login_required
@require_POST
def buyer_cart_remove(request, slug: str):
    organization, _ = organization_for_member(user=request.user, slug=slug)
    listing_id = request.POST.get("listing", "")
    if listing_id.isdigit():
        cart_remove(organization=organization, user=request.user, listing_id=int(listing_id))
        messages.success(request, "Removed from the cart.")
    return redirect("buyer_cart", slug=slug)


def _return_urls(slug: str) -> tuple[str, str]:
    """Where checkout sends the buyer back; ``{order}`` is filled in by the service."""
    orders = settings.SITE_URL + reverse("buyer_orders", args=[slug])
    return orders + "{order}/?checkout=success", orders + "{order}/cancelled/"


@login_required
@require_POST
def buyer_checkout(request, slug: str):
    organization, _ = organization_for_member(user=request.user, slug=slug)
    success_url, cancel_url = _return_urls(slug)
    try:
        started = checkout_start(
            organization=organization,
            user=request.user,
            success_url=success_url,
            cancel_url=cancel_url,
            request=request,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("buyer_cart", slug=slug)
    return redirect(started.redirect_url)


# --- Orders -------------------------------------------------------------------------------------


@login_required
@require_safe
def buyer_orders(request, slug: str):
    organization, membership = organization_for_member(user=request.user, slug=slug)
    orders = selectors.orders_for_organization(organization.pk).select_related("placed_by")
    page = Paginator(orders, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "licensing/orders.html",
        {**_org_nav(organization, membership, "orders"), "page": page},
    )


def _order_of(organization: Organization, number: str) -> Order:
    return get_object_or_404(
        Order.objects.select_related("placed_by"), organization=organization, number=number
    )


@login_required
@require_safe
def buyer_order_detail(request, slug: str, number: str):
    organization, membership = organization_for_member(user=request.user, slug=slug)
    order = _order_of(organization, number)
    licenses = {
        license.order_line_id: license
        for license in License.objects.filter(order_line__order=order).select_related("listing")
    }
    lines = [(line, licenses.get(line.pk)) for line in order.lines.all()]
    return render(
        request,
        "licensing/order_detail.html",
        {
            **_org_nav(organization, membership, "orders"),
            "order": order,
            "lines": lines,
            "licenses": list(licenses.values()),
            "from_checkout": request.GET.get("checkout") == "success",
            "waiting": order.status in (Order.Status.PENDING, Order.Status.PROCESSING),
        },
    )


@login_required
@require_GET
def buyer_order_status(request, slug: str, number: str):
    """Polled by the order page while the payment is being confirmed."""
    organization, _ = organization_for_member(user=request.user, slug=slug)
    order = _order_of(organization, number)
    return JsonResponse(
        {
            "number": order.number,
            "status": order.status,
            "label": order.get_status_display(),
            "waiting": order.status in (Order.Status.PENDING, Order.Status.PROCESSING),
            "licenses": License.objects.filter(order_line__order=order).count(),
        },
        headers={"Cache-Control": "no-store"},
    )


@login_required
@require_safe
def buyer_order_cancelled(request, slug: str, number: str):
    organization, membership = organization_for_member(user=request.user, slug=slug)
    order = _order_of(organization, number)
    return render(
        request,
        "licensing/order_cancelled.html",
        {**_org_nav(organization, membership, "orders"), "order": order},
    )


# --- Licenses -----------------------------------------------------------------------------------


def _with_download_counts(licenses):
    downloads = (
        DownloadLog.objects.filter(license=OuterRef("pk"))
        .order_by()
        .values("license")
        .annotate(n=Count("id"))
        .values("n")
    )
    return licenses.annotate(
        download_count=Coalesce(Subquery(downloads, output_field=IntegerField()), 0)
    ).select_related("attestation")


STATUS_FILTERS = [
    ("", "All"),
    (License.Status.ACTIVE, "Active"),
    (License.Status.SCHEDULED, "Starts later"),
    (License.Status.EXPIRED, "Expired"),
    (License.Status.SUSPENDED, "Suspended"),
    (License.Status.REVOKED, "Revoked"),
]


@login_required
@require_safe
def buyer_licenses(request, slug: str):
    """The buyer dashboard: licenses with status and days left, downloads,
    attestations due. A fixed number of queries whatever the number of
    licenses (tests/test_license_access.py)."""
    organization, membership = organization_for_member(user=request.user, slug=slug)
    now = timezone.now()
    everything = selectors.licenses_for_organization(organization.pk)
    status = request.GET.get("status", "")
    if status not in License.Status.values:
        status = ""
    licenses = _with_download_counts(everything.filter(status=status) if status else everything)
    page = Paginator(licenses, 25).get_page(request.GET.get("page"))
    for license in page:
        license.days_left = days_left(license, now)
        license.starts_in = days_until_start(license, now)
        attestation = getattr(license, "attestation", None)
        license.attestation_due = (
            attestation
            if attestation and attestation.status == DeletionAttestation.Status.REQUESTED
            else None
        )
    counts = dict(everything.order_by().values_list("status").annotate(n=Count("id")))
    ending_soon = everything.filter(
        status=License.Status.ACTIVE, ends_at__gt=now, ends_at__lte=now + timedelta(days=30)
    ).count()
    attestations_due = list(selectors.attestations_due(organization.pk).order_by("due_at"))
    downloads_total = DownloadLog.objects.filter(license__organization=organization).aggregate(
        n=Count("id"), bytes=Sum("bytes_sent")
    )
    return render(
        request,
        "licensing/licenses.html",
        {
            **_org_nav(organization, membership, "licenses"),
            "page": page,
            "status": status,
            "status_filters": [
                (code, label, counts.get(code, 0) if code else sum(counts.values()))
                for code, label in STATUS_FILTERS
            ],
            "active_count": counts.get(License.Status.ACTIVE, 0),
            "ending_soon": ending_soon,
            "attestations_due": attestations_due,
            "downloads_total": downloads_total,
            "now": now,
        },
    )


def _license_context(request, organization, membership, license, form=None) -> dict:
    now = timezone.now()
    items = list(license.items.select_related("recording").order_by("id"))
    attestation = DeletionAttestation.objects.filter(license=license).first()
    renewal = License.objects.filter(renewed_from=license).first()
    listing = license.listing
    renew_problem = None
    if renewal is not None:
        renew_problem = f"Already renewed as {renewal.uid}."
    elif license.status not in (License.Status.ACTIVE, License.Status.EXPIRED):
        renew_problem = f"A {license.get_status_display().lower()} license cannot be renewed."
    else:
        renew_problem = listing_unavailable_reason(listing)
    downloads = DownloadLog.objects.filter(license=license).select_related("recording", "user")
    usable = selectors.license_is_usable(license, now)
    return {
        **_org_nav(organization, membership, "licenses"),
        "license": license,
        "order": license.order_line.order,
        "terms": plain_terms(license),
        "items": [
            {
                "item": item,
                "recording": item.recording,
                "available": usable and item.recording.status == Recording.Status.ACTIVE,
            }
            for item in items
        ],
        "usable": usable,
        "days_left": days_left(license, now),
        "starts_in": days_until_start(license, now),
        "attestation": attestation,
        "attestation_form": form
        or DeletionAttestationForm(initial={"signer_name": request.user.full_name}),
        "renewal": renewal,
        "renewed_from": license.renewed_from,
        "renew_problem": renew_problem,
        "renew_price": (listing.price_minor, listing.currency),
        "renew_days": listing.duration_days,
        "downloads": downloads[:50],
        "download_count": downloads.count(),
        "link_minutes": settings.DOWNLOAD_LINK_SECONDS // 60,
        "now": now,
    }


@login_required
@require_safe
def buyer_license_detail(request, slug: str, uid: str):
    organization, membership = organization_for_member(user=request.user, slug=slug)
    license = _license_of(request, organization, uid)
    return render(
        request,
        "licensing/license_detail.html",
        _license_context(request, organization, membership, license),
    )


@login_required
@require_POST
def buyer_license_download(request, slug: str, uid: str):
    """Make a short-lived link for one file and go to it."""
    organization, _ = organization_for_member(user=request.user, slug=slug)
    license = _license_of(request, organization, uid)
    recording = request.POST.get("recording", "")
    try:
        if not recording:
            raise ValidationError("Choose a file to download.", code="recording_required")
        (link,) = download_links_create(
            license=license, principal=principal_for(request.user, None), recording_uids=[recording]
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("buyer_license_detail", slug=slug, uid=uid)
    # The link is absolute (SITE_URL); in the browser, stay on this host.
    return redirect(urlsplit(link.url).path)


@login_required
@require_safe
def buyer_license_zip(request, slug: str, uid: str):
    organization, _ = organization_for_member(user=request.user, slug=slug)
    license = _license_of(request, organization, uid)
    try:
        recordings, left_out = license_archive_prepare(license)
    except ApplicationError as exc:
        return _download_error(request, exc)
    response = StreamingHttpResponse(
        license_archive_stream(
            license=license,
            recordings=recordings,
            left_out=left_out,
            user_id=request.user.pk,
            ip=client_ip(request),
        ),
        content_type="application/zip",
    )
    response["Content-Disposition"] = f'attachment; filename="{archive_filename(license)}"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_safe
def buyer_license_manifest(request, slug: str, uid: str):
    organization, _ = organization_for_member(user=request.user, slug=slug)
    license = _license_of(request, organization, uid)
    response = JsonResponse(
        manifest_for(license),
        content_type="application/ld+json",
        json_dumps_params={"indent": 2, "ensure_ascii": False},
    )
    response["Content-Disposition"] = f'attachment; filename="{license.uid}-croissant.jsonld"'
    return response


@login_required
@require_safe
def buyer_license_certificate_json(request, slug: str, uid: str):
    organization, _ = organization_for_member(user=request.user, slug=slug)
    license = _license_of(request, organization, uid)
    response = JsonResponse(certificate_for(license), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{license.uid}-certificate.json"'
    return response


@login_required
@require_POST
def buyer_license_renew(request, slug: str, uid: str):
    """Buy a new term at the listing's current price, starting when this one ends."""
    organization, _ = organization_for_member(user=request.user, slug=slug)
    license = _license_of(request, organization, uid)
    success_url, cancel_url = _return_urls(slug)
    try:
        started = checkout_start(
            organization=organization,
            user=request.user,
            success_url=success_url,
            cancel_url=cancel_url,
            listings=[license.listing],
            renews=license,
            request=request,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("buyer_license_detail", slug=slug, uid=uid)
    return redirect(started.redirect_url)


@login_required
@require_POST
def buyer_license_attest(request, slug: str, uid: str):
    organization, membership = organization_for_member(user=request.user, slug=slug)
    license = _license_of(request, organization, uid)
    form = DeletionAttestationForm(request.POST)
    if form.is_valid():
        try:
            attestation_submit(
                license=license, by=request.user, request=request, **form.cleaned_data
            )
        except ValidationError as exc:
            for field, errors in exc.details.get("fields", {}).items():
                form.add_error(field if field in form.fields else None, errors)
            if not exc.details.get("fields"):
                form.add_error(None, exc.message)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect("buyer_license_detail", slug=slug, uid=uid)
        else:
            messages.success(
                request, f"Thank you. Deletion of the files licensed under {uid} is attested."
            )
            return redirect("buyer_license_detail", slug=slug, uid=uid)
    context = _license_context(request, organization, membership, license, form=form)
    return render(request, "licensing/license_detail.html", context, status=400)


# --- Signed download links ----------------------------------------------------------------------


class NotAuthenticated(ApplicationError):
    code = "not_authenticated"
    status_code = 401


def _check_requester(request, license: License) -> None:
    """A link works on its own (a pipeline may fetch it without credentials);
    whoever presents credentials with it must belong to the license's
    organization."""
    if request.headers.get("Authorization"):
        try:
            authenticated = ApiKeyAuthentication().authenticate(request)
        except drf_exceptions.AuthenticationFailed as exc:
            raise NotAuthenticated(str(exc.detail), code=exc.detail.code) from None
        if authenticated is not None:
            if authenticated[1].organization_id != license.organization_id:
                raise PermissionDenied(
                    "This link belongs to another organization's license.", code="not_a_member"
                )
            return
    if (
        request.user.is_authenticated
        and not Membership.objects.filter(
            organization_id=license.organization_id, user=request.user
        ).exists()
    ):
        raise PermissionDenied(
            "This link belongs to another organization's license.", code="not_a_member"
        )


@require_safe
def license_download(request, token: str):
    """Serve an original through a signed link: the license, the recording and
    the membership are checked again now; Range requests are honoured; every
    download is logged with the bytes sent."""
    try:
        resolved = download_resolve(token)
        _check_requester(request, resolved.license)
    except ApplicationError as exc:
        return _download_error(request, exc)
    recording = resolved.recording
    storage, name = recording.file.storage, recording.file.name
    # A download is logged when its body starts to stream (the response opens
    # the file then): a HEAD, or a 416 for a range outside the file, sends no
    # bytes and leaves no row.
    log_ids: list[int] = []

    def open_and_log():
        handle = storage.open(name, "rb")
        log = download_log_start(
            resolved=resolved, byte_range=request.headers.get("Range", ""), ip=client_ip(request)
        )
        log_ids.append(log.pk)
        return handle

    def progress(sent: int, finished: bool) -> None:
        if log_ids:
            download_log_progress(log_ids[0], sent, finished)

    head = request.method == "HEAD"
    return ranged_file_response(
        request,
        (lambda: storage.open(name, "rb")) if head else open_and_log,
        size=storage.size(name),
        content_type=recording.mime_type or "application/octet-stream",
        filename=f"{recording.uid}.{recording.container}",
        on_progress=None if head else progress,
    )


# --- Certificates -----------------------------------------------------------------------------


@login_required
@require_safe
def license_certificate_page(request, uid: str):
    """The certificate, for people: visible to the holding organization's
    members (and staff); anyone else gets 404. Auditors check a certificate
    they were given on the public verification page."""
    license = get_object_or_404(License.objects.select_related("organization", "listing"), uid=uid)
    membership = Membership.objects.filter(
        organization=license.organization, user=request.user
    ).first()
    if membership is None and not request.user.is_staff:
        raise Http404("No such license.")
    certificate = certificate_for(license)
    return render(
        request,
        "licensing/certificate.html",
        {
            "license": license,
            "organization": license.organization,
            "membership": membership,
            "facts": certificate["certificate"],
            "signature": certificate["signature"],
            "terms": plain_terms(license),
            "certificate_json": json.dumps(certificate, indent=2, ensure_ascii=False),
        },
    )


@require_safe
def license_key_document(request):
    """The public key set that verifies license certificates (JWK, Ed25519)."""
    response = JsonResponse(public_key_document(), json_dumps_params={"indent": 2})
    response["Cache-Control"] = "public, max-age=3600"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@require_http_methods(["GET", "HEAD", "POST"])
def certificate_verify_page(request):
    """Public: paste a certificate, see whether Residuals signed it."""
    form = CertificateVerifyForm(request.POST or None)
    result = None
    if request.method == "POST" and form.is_valid():
        try:
            document = json.loads(form.cleaned_data["certificate"])
            if not isinstance(document, dict):
                raise CertificateInvalid("Not a Residuals certificate: expected a JSON object.")
            facts = certificate_verify(document, public_key_document())
        except ValueError as exc:
            result = {"valid": False, "reason": f"This is not valid JSON: {exc}."}
        except CertificateInvalid as exc:
            result = {"valid": False, "reason": str(exc)}
        else:
            current = License.objects.filter(uid=facts["license"]["id"]).first()
            result = {
                "valid": True,
                "facts": facts,
                "current_status": current.get_status_display() if current else None,
            }
    return render(
        request,
        "licensing/verify.html",
        {"form": form, "result": result},
        status=200 if result is None or result["valid"] else 422,
    )


# --- Staff --------------------------------------------------------------------------------------


@staff_required
@require_safe
def staff_attestations_overdue(request):
    now = timezone.now()
    overdue = list(
        selectors.attestations_overdue(now).select_related("license__listing").order_by("due_at")
    )
    for attestation in overdue:
        attestation.days_overdue = math.ceil((now - attestation.due_at).total_seconds() / 86400)
    waiting = DeletionAttestation.objects.filter(
        status=DeletionAttestation.Status.REQUESTED, due_at__gte=now
    ).count()
    submitted = DeletionAttestation.objects.filter(
        status=DeletionAttestation.Status.SUBMITTED
    ).count()
    return render(
        request,
        "licensing/staff_attestations.html",
        {"overdue": overdue, "waiting": waiting, "submitted": submitted, "now": now},
    )
