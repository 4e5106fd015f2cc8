"""Admin for orders, licenses, downloads, deletion attestations and the
Stripe event log. Everything is read-only: orders and licenses change only
through services, which the license actions below call with a reason that
lands in the audit log."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import transaction
from django.shortcuts import render

from core.errors import ApplicationError
from core.models import StripeEvent
from licensing.lifecycle import attestation_request
from licensing.models import (
    DeletionAttestation,
    DownloadLog,
    License,
    LicenseItem,
    Order,
    OrderLine,
)
from licensing.services import license_set_status
from marketplace.templatetags.money import format_money


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ["title", "listing", "listing_revision", "price", "renews", "license_uid"]
    readonly_fields = fields

    @admin.display(description="Price")
    def price(self, line):
        return format_money(line.price_minor, line.currency)

    @admin.display(description="License")
    def license_uid(self, line):
        license = getattr(line, "license", None)
        return license.uid if license else "— (not issued)"


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = [
        "number",
        "organization",
        "status",
        "total",
        "simulated",
        "created_at",
        "paid_at",
    ]
    list_filter = ["status", "simulated", "currency"]
    search_fields = ["number", "organization__name", "checkout_session_id", "payment_intent_id"]
    date_hierarchy = "created_at"
    list_select_related = ["organization"]
    inlines = [OrderLineInline]

    @admin.display(description="Total", ordering="total_minor")
    def total(self, order):
        return format_money(order.total_minor, order.currency)


class LicenseItemInline(ReadOnlyInline):
    model = LicenseItem
    fields = ["recording", "sha256"]
    readonly_fields = fields


class LicenseStatusForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        min_length=5,
        max_length=2000,
        help_text="Shown to the organization and kept in the audit log.",
    )


def _status_action(status: str, verb: str, *, allowed_from: tuple[str, ...]):
    def action(modeladmin, request, queryset):
        form = LicenseStatusForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            done, refused = [], []
            for license in queryset.select_related("organization"):
                if license.status not in allowed_from:
                    refused.append(f"{license.uid} is {license.get_status_display().lower()}")
                    continue
                try:
                    with transaction.atomic():
                        license_set_status(
                            license=license,
                            status=status,
                            reason=form.cleaned_data["reason"],
                            by=request.user,
                            request=request,
                        )
                        if status == License.Status.REVOKED:
                            attestation_request(license=license, reason="revoked")
                except ApplicationError as exc:
                    refused.append(f"{license.uid}: {exc.message}")
                else:
                    done.append(license.uid)
            if done:
                modeladmin.message_user(request, f"{verb.capitalize()}d: {', '.join(done)}.")
            if refused:
                modeladmin.message_user(
                    request, f"Not {verb}d: {'; '.join(refused)}.", level=messages.WARNING
                )
            return None
        return render(
            request,
            "licensing/admin_license_status.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": f"{verb.capitalize()} licenses",
                "verb": verb,
                "licenses": queryset,
                "form": form,
                "action": request.POST.get("action"),
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "opts": modeladmin.model._meta,
            },
        )

    action.__name__ = f"license_{verb}"
    action.short_description = f"{verb.capitalize()} the selected licenses…"
    return action


@admin.register(License)
class LicenseAdmin(ReadOnlyAdmin):
    list_display = ["uid", "organization", "listing_title", "status", "starts_at", "ends_at"]
    list_filter = ["status", "currency"]
    search_fields = ["uid", "organization__name", "listing__title"]
    date_hierarchy = "ends_at"
    list_select_related = ["organization"]
    inlines = [LicenseItemInline]
    actions = [
        _status_action(License.Status.SUSPENDED, "suspend", allowed_from=(License.Status.ACTIVE,)),
        _status_action(
            License.Status.REVOKED,
            "revoke",
            allowed_from=(
                License.Status.ACTIVE,
                License.Status.SUSPENDED,
                License.Status.SCHEDULED,
                License.Status.EXPIRED,
            ),
        ),
        _status_action(
            License.Status.ACTIVE, "reactivate", allowed_from=(License.Status.SUSPENDED,)
        ),
    ]

    @admin.display(description="Listing")
    def listing_title(self, license):
        return license.terms.get("listing_title", "")


@admin.register(DownloadLog)
class DownloadLogAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "license",
        "recording",
        "user",
        "api_key_prefix",
        "kind",
        "byte_range",
        "bytes_sent",
        "completed",
        "ip_address",
    ]
    list_filter = ["kind", "completed"]
    search_fields = ["license__uid", "recording__uid", "user__email", "api_key_prefix"]
    date_hierarchy = "started_at"
    list_select_related = ["license", "recording", "user"]


@admin.register(DeletionAttestation)
class DeletionAttestationAdmin(ReadOnlyAdmin):
    list_display = ["license", "status", "reason", "requested_at", "due_at", "submitted_at"]
    list_filter = ["status", "reason"]
    search_fields = ["license__uid", "license__organization__name", "signer_name"]
    date_hierarchy = "due_at"
    list_select_related = ["license"]


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "type", "event_id", "processed_at", "outcome"]
    list_filter = ["type"]
    search_fields = ["event_id", "outcome"]
    date_hierarchy = "received_at"
