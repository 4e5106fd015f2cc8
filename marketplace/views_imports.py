"""Batch import pages: start a batch from a CSV manifest (and sign consent
for it), then upload its files one by one or all at once. Thin: the rules
live in ``marketplace.services.imports``."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.models import PerformerProfile
from core.api import error_response
from core.errors import ApplicationError, Conflict
from marketplace.forms_imports import ImportStartForm
from marketplace.models import ImportBatch, ImportRow
from marketplace.services import consent_text_current
from marketplace.services.imports import (
    COLUMNS,
    import_batch_counts,
    import_batch_for_user,
    import_batch_start,
    import_batches_for_performer,
    import_row_attach_file,
    import_row_for_file,
    import_rows,
    manifest_template_csv,
    row_accepts_file,
)
from marketplace.taxonomy import Authenticity, Emotion, SensitiveContent, Use, VocalEvent
from marketplace.uploads import upload_refusal

BADGES = {
    ImportRow.Status.PENDING: "badge-neutral",
    ImportRow.Status.IMPORTED: "badge-success",
    ImportRow.Status.ALREADY_IMPORTED: "badge-info",
    ImportRow.Status.REFUSED: "badge-danger",
}


def _performer_or_404(request) -> PerformerProfile:
    profile = PerformerProfile.objects.filter(user=request.user).first()
    if profile is None:
        raise Http404("Imports are for performers.")
    return profile


def recording_url(uid: str) -> str:
    try:
        return reverse("recording_detail", args=[uid])
    except NoReverseMatch:  # the recording pages live in another module
        return f"/recordings/{uid}/"


def _row_json(row: ImportRow) -> dict:
    return {
        "row_number": row.row_number,
        "file_name": row.file_name,
        "status": row.status,
        "status_label": row.get_status_display(),
        "badge": BADGES[row.status],
        "error_code": row.error_code,
        "message": row.message,
        "recording": (
            {"uid": row.recording.uid, "url": recording_url(row.recording.uid)}
            if row.recording_id
            else None
        ),
        "accepts_file": row_accepts_file(row),
    }


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@require_GET
def recording_import_template(request):
    """The manifest template, for a spreadsheet. Public: it holds no data."""
    response = HttpResponse(
        "\ufeff" + manifest_template_csv(), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="residuals-manifest-template.csv"'
    return response


@login_required
def recording_import_new(request):
    performer = _performer_or_404(request)
    text = consent_text_current()
    form = ImportStartForm(
        request.POST or None,
        request.FILES or None,
        initial={"consent_text_version": text.version},
    )
    if request.method == "POST" and form.is_valid():
        manifest = form.cleaned_data["manifest"]
        try:
            batch = import_batch_start(
                performer=performer,
                by=request.user,
                manifest_file=manifest,
                manifest_name=manifest.name,
                source=ImportBatch.Source.WEB,
                signature_name=form.cleaned_data["signature_name"],
                consent_text_version=form.cleaned_data["consent_text_version"],
                request=request,
            )
        except ApplicationError as exc:
            _show_service_error(form, exc, current_version=text.version)
        else:
            counts = import_batch_counts(batch)
            refused = counts[ImportRow.Status.REFUSED]
            valid = counts["total"] - refused
            if valid:
                messages.success(
                    request,
                    f"The manifest is in: {valid} row{'s' if valid != 1 else ''} ready for "
                    f"{'their files' if valid != 1 else 'its file'}"
                    + (f", {refused} refused (see why below)." if refused else "."),
                )
            else:
                messages.error(
                    request,
                    "Every row of the manifest was refused. See why below, fix it, "
                    "and upload it again.",
                )
            return redirect("recording_import_detail", batch_id=batch.pk)
    return render(
        request,
        "marketplace/imports/new.html",
        {
            "form": form,
            "consent_text": text,
            "columns": COLUMNS,
            "batches": import_batches_for_performer(performer)[:8],
            "vocabularies": [
                ("primary_emotion", "Emotions", Emotion.choices),
                ("authenticity", "Authenticity", Authenticity.choices),
                ("consent_uses", "Uses", Use.choices),
                ("sensitive_content", "Sensitive content", SensitiveContent.choices),
                ("vocal_events", "Vocal events", VocalEvent.choices),
            ],
        },
    )


def _show_service_error(form: ImportStartForm, exc: ApplicationError, *, current_version: str):
    fields = exc.details.get("fields") or {}
    if "consent_text_version" in fields:
        # The text changed while the page was open: show the new one to sign.
        form.data = form.data.copy()
        form.data["consent_text_version"] = current_version
        form.add_error(None, fields["consent_text_version"][0])
    elif "signature_name" in fields:
        form.add_error("signature_name", fields["signature_name"][0])
    else:
        form.add_error("manifest", exc.message)


@login_required
def recording_import_detail(request, batch_id: int):
    batch = import_batch_for_user(user=request.user, batch_id=batch_id)
    rows = list(import_rows(batch))
    counts = {status: 0 for status in ImportRow.Status.values}
    for row in rows:
        counts[row.status] += 1
        row.badge = BADGES[row.status]
        row.accepts_file = row_accepts_file(row)
        row.recording_url = recording_url(row.recording.uid) if row.recording_id else ""
        row.errors = row.data.get("errors", [])
        row.title = (row.data.get("values") or {}).get("title") or row.data.get("raw", {}).get(
            "title", ""
        )
    consent = next((r.data["consent"] for r in rows if "consent" in r.data), None)
    return render(
        request,
        "marketplace/imports/detail.html",
        {
            "batch": batch,
            "rows": rows,
            "counts": counts,
            "total": len(rows),
            "waiting": [r for r in rows if r.accepts_file],
            "consent": consent,
            "file_url": reverse("recording_import_file", args=[batch.pk]),
            "max_upload_bytes": settings.RECORDING_MAX_UPLOAD_BYTES,
        },
    )


@login_required
@require_POST
def recording_import_file(request, batch_id: int):
    """Import uploaded files into their rows, matched by file name. The page's
    script sends one file per request and reads the JSON answer; without the
    script, a form posts them all and they are imported one after another."""
    batch = import_batch_for_user(user=request.user, batch_id=batch_id)
    wants_json = _wants_json(request)
    # Reading FILES runs the upload handler, which may refuse a file as too large.
    uploads = request.FILES.getlist("files") + request.FILES.getlist("file")
    refusal = upload_refusal(request)
    if refusal is not None:
        # The upload handler stopped reading at a file over the size limit;
        # nothing after it arrived, so nothing is imported from this request.
        if wants_json:
            return error_response(refusal.code, refusal.message, 413, refusal.details)
        messages.error(request, f"{refusal.message} Nothing was imported from this upload.")
        return redirect("recording_import_detail", batch_id=batch.pk)
    if not uploads:
        if wants_json:
            return error_response("no_file", "Choose at least one file to upload.", 400)
        messages.error(request, "Choose at least one file to upload.")
        return redirect("recording_import_detail", batch_id=batch.pk)

    results = []
    for upload in uploads:
        try:
            row = import_row_for_file(batch=batch, file_name=upload.name)
            if row.status == ImportRow.Status.REFUSED and not row_accepts_file(row):
                raise Conflict(
                    f"Row {row.row_number} was refused, so its file cannot be imported: "
                    f"{row.message}",
                    code="row_refused",
                    details={"row": row.row_number},
                )
            row = import_row_attach_file(row=row, file=upload, by=request.user, request=request)
        except ApplicationError as exc:
            results.append(
                {
                    "file_name": upload.name,
                    "error": {"code": exc.code, "message": exc.message, "details": exc.details},
                }
            )
        else:
            results.append({"file_name": upload.name, "row": _row_json(row)})
        finally:
            upload.close()

    if wants_json:
        counts = import_batch_counts(batch)
        return JsonResponse({"results": results, "summary": counts})

    _flash_upload_summary(request, results)
    return redirect(reverse("recording_import_detail", args=[batch.pk]) + "#results")


def _flash_upload_summary(request, results: list[dict]) -> None:
    statuses = [r["row"]["status"] for r in results if "row" in r]
    imported = statuses.count(ImportRow.Status.IMPORTED)
    already = statuses.count(ImportRow.Status.ALREADY_IMPORTED)
    refused = statuses.count(ImportRow.Status.REFUSED)
    unmatched = [r for r in results if "error" in r]
    parts = [f"{imported} imported"]
    if already:
        parts.append(f"{already} already imported")
    if refused:
        parts.append(f"{refused} refused")
    if unmatched:
        parts.append(f"{len(unmatched)} not imported")
    level = messages.success if not (refused or unmatched) else messages.warning
    level(request, f"{len(results)} file{'s' if len(results) != 1 else ''}: " + ", ".join(parts))
    for item in unmatched[:10]:
        messages.error(request, f"{item['file_name']}: {item['error']['message']}")
