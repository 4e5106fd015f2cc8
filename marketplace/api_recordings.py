"""Performers' recordings over the API: upload one, list mine, read one.

Callers act as a performer: with a performer's API key
(``Authorization: Bearer …``) or signed in with a session. An organization's
key is refused (403 ``performer_key_required``); a person without a
performer profile too (403 ``performer_profile_required``). Another
performer's recording answers 404, as if it did not exist.

Upload errors (one shape, ``{"error": {"code", "message", "details"}}``,
with ``details.fields.file`` naming the field):

| status | code | when |
|---|---|---|
| 400 | ``validation_error`` | a field is missing or wrong (``file``, ``title`` …) |
| 400 | ``empty_file`` | the file has 0 bytes |
| 400 | ``corrupt_media`` | the file is truncated or does not decode |
| 409 | ``duplicate_recording`` | you already uploaded these bytes (``details.recording``) |
| 413 | ``file_too_large`` | over the size limit (``details.max_bytes``) |
| 415 | ``unsupported_media_type`` | the bytes are not WAV, FLAC, MP3, OGG, MP4 or WebM |
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import PerformerProfile
from accounts.selectors import principal_for
from core.errors import NotFound, PermissionDenied
from marketplace.models import Recording
from marketplace.services.recordings import recording_create
from marketplace.uploads import upload_refusal
from marketplace.views_upload import recording_page_url

# --- Serializers ------------------------------------------------------------------------


class RecordingUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=True,  # an empty file gets its own code, empty_file
        help_text="The media file: WAV, FLAC, MP3 or OGG audio, or MP4 or WebM video. "
        "Its type is read from its bytes, not its name.",
    )
    title = serializers.CharField(max_length=200)
    language = serializers.CharField(
        required=False, allow_blank=True, max_length=35, help_text="BCP 47 tag, e.g. en, es-MX."
    )
    recording_date = serializers.DateField(required=False, allow_null=True)
    session_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    studio = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Studio or location."
    )
    annotator = serializers.CharField(required=False, allow_blank=True, max_length=200)


class RecordingProvenanceSerializer(serializers.Serializer):
    performer_name = serializers.CharField()
    performer_contact = serializers.CharField()
    recording_date = serializers.DateField(allow_null=True)
    session_name = serializers.CharField()
    studio = serializers.CharField()
    annotator = serializers.CharField()


class RecordingLinksSerializer(serializers.Serializer):
    self = serializers.CharField(help_text="This recording in the API.")
    page = serializers.CharField(help_text="The recording's page on the website.")


class RecordingSerializer(serializers.ModelSerializer):
    provenance = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = Recording
        fields = [
            "uid",
            "title",
            "language",
            "status",
            "media_kind",
            "container",
            "mime_type",
            "codec",
            "duration_seconds",
            "sample_rate",
            "channels",
            "width",
            "height",
            "frame_rate",
            "size_bytes",
            "sha256",
            "original_filename",
            "preview_status",
            "created_at",
            "provenance",
            "links",
        ]
        read_only_fields = fields

    @extend_schema_field(RecordingProvenanceSerializer(allow_null=True))
    def get_provenance(self, recording: Recording) -> dict | None:
        provenance = getattr(recording, "provenance", None)
        return RecordingProvenanceSerializer(provenance).data if provenance is not None else None

    @extend_schema_field(RecordingLinksSerializer)
    def get_links(self, recording: Recording) -> dict:
        request = self.context.get("request")
        api_path = reverse("api:recording-detail", args=[recording.uid])
        page = recording_page_url(recording.uid)
        if request is not None:
            api_path, page = request.build_absolute_uri(api_path), request.build_absolute_uri(page)
        return {"self": api_path, "page": page}


# --- Who is calling ----------------------------------------------------------------------


def _performer_of(request: Request) -> PerformerProfile:
    """The performer the caller acts as. Organization keys never act as a
    performer; signed-in people only through their own profile."""
    principal = principal_for(request.user, request.auth)
    if principal.api_key is not None and principal.api_key.organization_id is not None:
        raise PermissionDenied(
            "Recordings are uploaded with a performer's API key; this key belongs to an "
            "organization.",
            code="performer_key_required",
        )
    if principal.performer is None:
        raise PermissionDenied(
            "Create your performer profile before uploading recordings.",
            code="performer_profile_required",
        )
    return principal.performer


def _own_recordings(performer: PerformerProfile):
    return (
        Recording.objects.filter(performer=performer)
        .select_related("provenance")
        .order_by("-created_at", "-id")
    )


# --- Views ------------------------------------------------------------------------------

_ERROR_SHAPE = '`{"error": {"code": "…", "message": "…", "details": {"fields": {"file": ["…"]}}}}`'
_UPLOAD_ERRORS = {
    400: OpenApiResponse(
        description="`validation_error` (a field is missing or wrong), `empty_file` or "
        f"`corrupt_media` (truncated, or does not decode). {_ERROR_SHAPE}"
    ),
    401: OpenApiResponse(description="No or an invalid API key / session."),
    403: OpenApiResponse(
        description="`performer_key_required` (an organization's key) or "
        "`performer_profile_required`."
    ),
    409: OpenApiResponse(
        description="`duplicate_recording`: you already uploaded these bytes; "
        "`details.recording` is the existing recording's uid."
    ),
    413: OpenApiResponse(
        description="`file_too_large`: over the upload limit (`details.max_bytes`)."
    ),
    415: OpenApiResponse(
        description="`unsupported_media_type`: the file's bytes are not WAV, FLAC, MP3, OGG, "
        "MP4 or WebM (whatever its name or declared content type)."
    ),
}


class RecordingPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class RecordingListCreateApi(generics.GenericAPIView):
    serializer_class = RecordingSerializer
    pagination_class = RecordingPagination
    queryset = Recording.objects.none()  # each caller sees only their own (see get)
    # One recording per request: a Content-Length over the limit is refused
    # before the body is read (marketplace.uploads).
    single_recording_upload = True
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        summary="Upload a recording",
        description=(
            "Multipart upload of one media file with its title and optional provenance "
            "(recording date, session, studio, annotator). The type, duration, sample rate, "
            "channels and (for video) picture size and frame rate are read from the file "
            "itself. Provenance starts from your performer profile; the split is 100% yours. "
            "A short, lower-quality preview is made in the background (`preview_status`)."
        ),
        request={"multipart/form-data": RecordingUploadSerializer},
        responses={201: RecordingSerializer, **_UPLOAD_ERRORS},
        tags=["recordings"],
    )
    def post(self, request: Request) -> Response:
        performer = _performer_of(request)
        data = request.data  # parses the upload (streamed to disk, hashed)
        refusal = upload_refusal(request)
        if refusal is not None:
            raise refusal
        serializer = RecordingUploadSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        upload = values["file"]
        recording = recording_create(
            performer=performer,
            by=request.user,
            file=upload,
            original_filename=upload.name,
            title=values["title"],
            language=values.get("language", ""),
            provenance={
                "recording_date": values.get("recording_date"),
                "session_name": values.get("session_name", ""),
                "studio": values.get("studio", ""),
                "annotator": values.get("annotator", ""),
            },
            request=request,
        )
        recording = _own_recordings(performer).get(pk=recording.pk)
        body = RecordingSerializer(recording, context={"request": request}).data
        return Response(
            body, status=status.HTTP_201_CREATED, headers={"Location": body["links"]["self"]}
        )

    @extend_schema(
        summary="My recordings",
        description="Your own recordings, newest first; `?page=` and `?page_size=` (up to 200).",
        responses={
            200: RecordingSerializer(many=True),
            403: _UPLOAD_ERRORS[403],
        },
        tags=["recordings"],
    )
    def get(self, request: Request) -> Response:
        performer = _performer_of(request)
        page = self.paginate_queryset(_own_recordings(performer))
        data = RecordingSerializer(page, many=True, context={"request": request}).data
        return self.get_paginated_response(data)


class RecordingDetailApi(APIView):
    @extend_schema(
        summary="One of my recordings",
        responses={
            200: RecordingSerializer,
            403: _UPLOAD_ERRORS[403],
            404: OpenApiResponse(description="`not_found`: no such recording of yours."),
        },
        tags=["recordings"],
    )
    def get(self, request: Request, uid: str) -> Response:
        performer = _performer_of(request)
        recording = _own_recordings(performer).filter(uid=uid).first()
        if recording is None:
            raise NotFound("No such recording.")
        return Response(RecordingSerializer(recording, context={"request": request}).data)
