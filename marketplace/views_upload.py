"""The single-recording upload page, for performers.

One URL serves both the plain form post (no JavaScript: the page is
rendered again with the errors, or the browser is redirected to the new
recording) and the page's script (``static/js/upload.js``), which sends the
same form with ``Accept: application/json`` to show upload progress and gets
JSON back: ``{"redirect": url, "recording": uid}`` with 201, or the API's
error shape with the same status codes as ``POST /api/v1/recordings/``.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms.utils import ErrorDict
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import NoReverseMatch, reverse

from accounts.models import PerformerProfile
from core.api import error_body
from core.errors import ApplicationError, Conflict
from marketplace.services.recordings import recording_create
from marketplace.uploads import single_recording_upload, upload_refusal

ACCEPTED_TYPES = ",".join(
    [
        "audio/wav",
        "audio/x-wav",
        "audio/flac",
        "audio/mpeg",
        "audio/ogg",
        "video/mp4",
        "video/webm",
        "audio/webm",
        ".wav",
        ".flac",
        ".mp3",
        ".ogg",
        ".oga",
        ".opus",
        ".mp4",
        ".webm",
    ]
)


def recording_page_url(uid: str) -> str:
    """The recording's own page. Its route belongs to the recording-detail
    work; the path is fixed, so the link holds even before the route exists."""
    try:
        return reverse("recording_detail", args=[uid])
    except NoReverseMatch:
        return f"/recordings/{uid}/"


class RecordingUploadForm(forms.Form):
    file = forms.FileField(
        label="Media file",
        allow_empty_file=True,  # the service refuses it with its own message
        help_text="WAV, FLAC, MP3 or OGG audio, or MP4 or WebM video. We read the type from "
        "the file itself, so its name does not matter.",
    )
    title = forms.CharField(
        max_length=200, help_text="What buyers see first, e.g. “Voicemail to my sister”."
    )
    language = forms.CharField(
        required=False,
        max_length=35,
        help_text="The spoken language as a tag such as en, es-MX or pt-BR. Leave empty when "
        "nothing is spoken.",
    )
    recording_date = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Needed before the recording can be listed; you can add it later.",
    )
    session_name = forms.CharField(required=False, max_length=200, label="Session")
    studio = forms.CharField(required=False, max_length=200, label="Studio or location")

    def __init__(self, *args, refusal: ApplicationError | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.refusal = refusal
        self.fields["file"].widget.attrs.update(
            {"accept": ACCEPTED_TYPES, "data-max-bytes": str(settings.RECORDING_MAX_UPLOAD_BYTES)}
        )
        self.fields["language"].widget.attrs.update(
            {"autocomplete": "off", "spellcheck": "false", "placeholder": "en"}
        )

    def full_clean(self) -> None:
        if self.refusal is None:
            return super().full_clean()
        # The upload handler stopped reading at the file: the fields after it
        # never arrived, so only the file's error is meaningful.
        self._errors = ErrorDict()
        self.cleaned_data = {}
        self.add_error("file", self.refusal.message)
        return None

    def add_application_error(self, exc: ApplicationError) -> None:
        fields = (exc.details or {}).get("fields") or {}
        placed = False
        for name, problems in fields.items():
            if name in self.fields:
                for problem in problems:
                    self.add_error(name, problem)
                placed = True
        if not placed:
            self.add_error(None, exc.message)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _form_error_body(form: RecordingUploadForm) -> dict:
    fields = {name: [str(e) for e in errors] for name, errors in form.errors.items()}
    first = next(iter(fields.values()), ["Some fields are not valid."])[0]
    return error_body("validation_error", f"Some fields are not valid: {first}", {"fields": fields})


@single_recording_upload
@login_required
def recording_upload(request: HttpRequest) -> HttpResponse:
    performer = PerformerProfile.objects.filter(user=request.user).first()
    if performer is None:
        messages.info(
            request,
            "Create your performer profile first: every recording you upload carries it in "
            "its provenance record.",
        )
        return redirect("performer_profile")

    duplicate_uid = None
    status_code = 200
    if request.method == "POST":
        data, files = request.POST, request.FILES  # parses the upload (streamed to disk)
        refusal = upload_refusal(request)
        form = RecordingUploadForm(data, files, refusal=refusal)
        if refusal is not None:
            status_code = refusal.status_code
            if _wants_json(request):
                return JsonResponse(
                    error_body(refusal.code, refusal.message, refusal.details), status=status_code
                )
        elif form.is_valid():
            values = form.cleaned_data
            try:
                recording = recording_create(
                    performer=performer,
                    by=request.user,
                    file=values["file"],
                    original_filename=values["file"].name,
                    title=values["title"],
                    language=values["language"],
                    provenance={
                        "recording_date": values["recording_date"],
                        "session_name": values["session_name"],
                        "studio": values["studio"],
                    },
                    request=request,
                )
            except ApplicationError as exc:
                if _wants_json(request):
                    details = dict(exc.details)
                    if isinstance(exc, Conflict) and "recording" in details:
                        details["url"] = recording_page_url(details["recording"])
                    return JsonResponse(
                        error_body(exc.code, exc.message, details), status=exc.status_code
                    )
                form.add_application_error(exc)
                status_code = exc.status_code
                if isinstance(exc, Conflict):
                    duplicate_uid = exc.details.get("recording")
            else:
                url = recording_page_url(recording.uid)
                message = (
                    f"“{recording.title}” is uploaded as {recording.uid}. Next: record your "
                    "consent and describe its emotional signature."
                )
                messages.success(request, message)
                if _wants_json(request):
                    return JsonResponse({"redirect": url, "recording": recording.uid}, status=201)
                return redirect(url)
        else:
            status_code = 400
            if _wants_json(request):
                return JsonResponse(_form_error_body(form), status=400)
    else:
        form = RecordingUploadForm()

    return render(
        request,
        "marketplace/upload.html",
        {
            "form": form,
            "performer": performer,
            "max_bytes": settings.RECORDING_MAX_UPLOAD_BYTES,
            "max_label": filesizeformat(settings.RECORDING_MAX_UPLOAD_BYTES),
            "preview_seconds": settings.PREVIEW_SECONDS,
            "duplicate_uid": duplicate_uid,
            "duplicate_url": recording_page_url(duplicate_uid) if duplicate_uid else None,
        },
        status=status_code,
    )
