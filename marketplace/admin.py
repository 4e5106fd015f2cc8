"""The marketplace in the Django admin. Staff look things up here and take
decisions through actions; every decision goes through a service (audit,
catalogue refresh), so the admin never writes a status or a consent itself.
Consent records, consent texts and signatures are read-only: consent is
never edited or deleted, only superseded or withdrawn by the performer."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from core.errors import ApplicationError
from marketplace import services
from marketplace.models import (
    ConsentEvent,
    ConsentRecord,
    ConsentText,
    EmotionalSignature,
    Listing,
    ListingItem,
    Provenance,
    Recording,
    RecordingSplit,
)
from marketplace.selectors import bps_label, money_label


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        max_length=2000,
        help_text="Recorded in the audit log; performers see it.",
    )


def _ask_reason(modeladmin, request, queryset, *, title: str, action: str, apply):
    """An action that needs a reason: show a form first, then apply it."""
    form = ReasonForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        done, failed = 0, []
        for obj in queryset:
            try:
                apply(obj, form.cleaned_data["reason"])
            except ApplicationError as exc:
                failed.append(f"{obj}: {exc.message}")
            else:
                done += 1
        if done:
            modeladmin.message_user(request, f"{title}: {done} done.", messages.SUCCESS)
        for failure in failed:
            modeladmin.message_user(request, failure, messages.ERROR)
        return None
    return TemplateResponse(
        request,
        "marketplace/staff/admin_reason.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "objects": queryset,
            "form": form,
            "action": action,
            "opts": modeladmin.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        },
    )


class ReadOnlyInline:
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Recordings -------------------------------------------------------------------------


class ProvenanceInline(ReadOnlyInline, admin.StackedInline):
    model = Provenance
    fields = [*Provenance.FIELDS, "updated_at"]
    readonly_fields = fields


class SignatureInline(ReadOnlyInline, admin.StackedInline):
    model = EmotionalSignature
    fields = [*EmotionalSignature.FIELDS, "updated_at"]
    readonly_fields = fields


class SplitInline(ReadOnlyInline, admin.TabularInline):
    model = RecordingSplit
    fields = ["performer", "share_bps", "share"]
    readonly_fields = fields

    @admin.display(description="Share")
    def share(self, obj):
        return bps_label(obj.share_bps)


class ConsentInline(ReadOnlyInline, admin.TabularInline):
    model = ConsentRecord
    fields = [
        "signed_at",
        "consent_text",
        "allowed_uses",
        "sensitive_content",
        "sensitive_content_licensable",
        "signature_name",
        "superseded_at",
        "withdrawn_at",
    ]
    readonly_fields = fields
    show_change_link = True


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    list_display = [
        "uid",
        "title",
        "performer",
        "media_kind",
        "duration",
        "status",
        "created_at",
    ]
    list_filter = ["status", "preview_status", "media_kind", "container", "language"]
    search_fields = ["uid", "title", "performer__stage_name", "sha256"]
    list_select_related = ["performer"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]
    actions = ["suspend_selected", "remove_selected", "reinstate_selected"]
    inlines = [ProvenanceInline, SignatureInline, SplitInline, ConsentInline]
    fieldsets = [
        (None, {"fields": ["uid", "title", "performer", "language", "status"]}),
        (
            "File (read from the file itself)",
            {
                "fields": [
                    "original_filename",
                    "size_bytes",
                    "sha256",
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
                ]
            },
        ),
        (
            "Preview",
            {
                "fields": [
                    "preview_status",
                    "preview_failure",
                    "preview_requested_at",
                    "preview_resends",
                ]
            },
        ),
        ("Dates", {"fields": ["created_at", "updated_at"]}),
    ]
    # Everything is read-only here: the status changes only through the
    # actions (which refresh the catalogue and audit), and the file facts
    # come from the file.
    readonly_fields = [field for _name, options in fieldsets for field in options["fields"]]

    def has_add_permission(self, request):
        return False  # recordings are uploaded by performers

    def has_delete_permission(self, request, obj=None):
        return False  # consent records and licenses point at them; remove instead

    @admin.display(description="Duration", ordering="duration_seconds")
    def duration(self, obj):
        return f"{obj.duration_seconds:.1f} s"

    def _set_status(self, request, queryset, status, title, action):
        return _ask_reason(
            self,
            request,
            queryset,
            title=title,
            action=action,
            apply=lambda rec, reason: services.recording_set_status(
                recording=rec, by=request.user, status=status, reason=reason, request=request
            ),
        )

    @admin.action(description="Suspend selected recordings (leave the catalogue)")
    def suspend_selected(self, request, queryset):
        return self._set_status(
            request, queryset, Recording.Status.SUSPENDED, "Suspend recordings", "suspend_selected"
        )

    @admin.action(description="Remove selected recordings (unpublish their listings)")
    def remove_selected(self, request, queryset):
        return self._set_status(
            request, queryset, Recording.Status.REMOVED, "Remove recordings", "remove_selected"
        )

    @admin.action(description="Reinstate selected recordings")
    def reinstate_selected(self, request, queryset):
        return self._set_status(
            request, queryset, Recording.Status.ACTIVE, "Reinstate recordings", "reinstate_selected"
        )


# --- Consent ----------------------------------------------------------------------------


class ConsentEventInline(ReadOnlyInline, admin.TabularInline):
    model = ConsentEvent
    fields = ["kind", "at", "actor", "ip_address", "data"]
    readonly_fields = fields


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "recording",
        "signature_name",
        "consent_text",
        "signed_at",
        "is_current",
        "withdrawn_at",
    ]
    list_filter = ["consent_text", "sensitive_content_licensable", "withdrawn_at", "signed_at"]
    search_fields = ["recording__uid", "recording__title", "signature_name", "signed_by__email"]
    list_select_related = ["recording", "consent_text"]
    date_hierarchy = "signed_at"
    inlines = [ConsentEventInline]

    @admin.display(boolean=True, description="Current")
    def is_current(self, obj):
        return obj.superseded_at is None


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "kind", "consent", "actor", "ip_address"]
    list_filter = ["kind"]
    search_fields = ["consent__recording__uid", "actor__email"]
    list_select_related = ["consent", "actor"]
    date_hierarchy = "at"


@admin.register(ConsentText)
class ConsentTextAdmin(ReadOnlyAdmin):
    list_display = ["version", "published_at", "sha256"]
    search_fields = ["version", "sha256"]


# --- Signatures ----------------------------------------------------------------------------


@admin.register(EmotionalSignature)
class EmotionalSignatureAdmin(ReadOnlyAdmin):
    list_display = [
        "recording",
        "primary_emotion",
        "intensity",
        "authenticity",
        "valence",
        "arousal",
        "annotator",
        "updated_at",
    ]
    list_filter = ["primary_emotion", "authenticity", "intensity", "annotator"]
    search_fields = ["recording__uid", "recording__title", "description"]
    list_select_related = ["recording"]


# --- Listings ----------------------------------------------------------------------------------


class ListingItemInline(ReadOnlyInline, admin.TabularInline):
    model = ListingItem
    fields = ["position", "recording"]
    readonly_fields = fields


@admin.register(Listing)
class ListingAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "performer",
        "status",
        "price",
        "currency",
        "revision",
        "submitted_at",
        "published_at",
    ]
    list_filter = ["status", "currency", "worldwide", "sublicensing_allowed"]
    search_fields = ["title", "performer__stage_name", "items__recording__uid"]
    list_select_related = ["performer"]
    ordering = ["-updated_at"]
    actions = ["approve_selected", "reject_selected", "unpublish_selected"]
    inlines = [ListingItemInline]
    fieldsets = [
        (None, {"fields": ["title", "performer", "status", "description", "revision"]}),
        (
            "Terms",
            {
                "fields": [
                    "duration_days",
                    "permitted_uses",
                    "worldwide",
                    "territories",
                    "sublicensing_allowed",
                    "attribution_required",
                    "exclusivity",
                    "price_minor",
                    "currency",
                    "revenue_share_bps",
                    "revenue_threshold_minor",
                    "per_unit_rates",
                    "reuse_caps",
                ]
            },
        ),
        (
            "Review",
            {
                "fields": [
                    "problems",
                    "rejection_reason",
                    "submitted_at",
                    "reviewed_at",
                    "reviewed_by",
                    "published_at",
                ]
            },
        ),
        ("Dates", {"fields": ["created_at", "updated_at"]}),
    ]
    # Terms change only through the performer's edit (listing_update keeps
    # the audit trail); staff decide through the actions.
    readonly_fields = [field for _name, options in fieldsets for field in options["fields"]]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Price", ordering="price_minor")
    def price(self, obj):
        return money_label(obj.price_minor, obj.currency)

    @admin.display(description="Problems")
    def problems(self, obj):
        found = services.listing_problems(obj)
        if not found:
            return "None: it can be offered as it stands."
        return format_html(
            "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((p,) for p in found))
        )

    @admin.action(description="Approve selected (publish)")
    def approve_selected(self, request, queryset):
        done = 0
        for listing in queryset:
            try:
                services.listing_review(
                    listing=listing, by=request.user, approve=True, request=request
                )
            except ApplicationError as exc:
                problems = (exc.details or {}).get("problems")
                detail = " ".join(problems) if problems else exc.message
                self.message_user(request, f"{listing}: {detail}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} listing(s) published.", messages.SUCCESS)

    @admin.action(description="Reject selected (ask for changes)")
    def reject_selected(self, request, queryset):
        return _ask_reason(
            self,
            request,
            queryset,
            title="Ask for changes",
            action="reject_selected",
            apply=lambda listing, reason: services.listing_review(
                listing=listing, by=request.user, approve=False, reason=reason, request=request
            ),
        )

    @admin.action(description="Unpublish selected")
    def unpublish_selected(self, request, queryset):
        return _ask_reason(
            self,
            request,
            queryset,
            title="Unpublish listings",
            action="unpublish_selected",
            apply=lambda listing, reason: services.listing_unpublish(
                listing=listing, by=request.user, reason=reason, request=request
            ),
        )
