"""Web pages for performers' profiles, buyer organizations and API keys.
Thin: each view reads through selectors and writes through services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.forms import (
    ApiKeyForm,
    InvitationForm,
    OrganizationForm,
    PerformerProfileForm,
    RoleForm,
)
from accounts.models import ApiKey, Invitation, Membership, PerformerProfile
from core.errors import ApplicationError


def _performer_or_404(request) -> PerformerProfile:
    profile = PerformerProfile.objects.filter(user=request.user).first()
    if profile is None:
        raise Http404("You have no performer profile yet.")
    return profile


# --- Performer -----------------------------------------------------------------


@login_required
def performer_dashboard(request):
    """The performer's catalogue at a glance: recordings with their state,
    listings with theirs, and what needs attention. A fixed number of
    queries whatever the size of the catalogue (tests/test_recording_pages.py)."""
    from django.core.paginator import Paginator

    from marketplace.selectors import CONSENTED_STATES, STATE_LABELS, performer_overview
    from royalties.selectors_performer import performer_balances

    profile = PerformerProfile.objects.filter(user=request.user).first()
    if profile is None:
        return redirect("performer_profile")
    keys = list(selectors.api_keys_for_performer(profile).filter(revoked_at__isnull=True))
    overview = performer_overview(profile)
    state = request.GET.get("state", "")
    rows = [row for row in overview.recordings if not state or row[1].code == state]
    page = Paginator(rows, 20).get_page(request.GET.get("page"))
    counts = overview.state_counts
    return render(
        request,
        "accounts/performer_dashboard.html",
        {
            "profile": profile,
            "active_keys": keys,
            "overview": overview,
            "page": page,
            "state_filter": state,
            "state_filters": [
                (code, label, counts[code])
                for code, label in STATE_LABELS.items()
                if code in counts
            ],
            "listed_count": counts.get("listed", 0),
            "on_sale_count": sum(1 for listing in overview.listings if listing.on_sale),
            "in_review_count": overview.listing_counts.get("in_review", 0),
            "consented_count": sum(n for code, n in counts.items() if code in CONSENTED_STATES),
            "earnings_balances": performer_balances(profile),
        },
    )


@login_required
def performer_profile(request):
    profile = PerformerProfile.objects.filter(user=request.user).first()
    initial = {} if profile else {"contact_email": request.user.email}
    form = PerformerProfileForm(request.POST or None, instance=profile, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.performer_profile_save(user=request.user, request=request, **form.cleaned_data)
        messages.success(request, "Your performer profile is saved.")
        return redirect("performer_dashboard")
    return render(request, "accounts/performer_profile.html", {"form": form, "profile": profile})


@login_required
def performer_api_keys(request):
    profile = _performer_or_404(request)
    form = ApiKeyForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        issued = services.api_key_create(
            name=form.cleaned_data["name"],
            created_by=request.user,
            performer=profile,
            request=request,
        )
        form = ApiKeyForm()
    return render(
        request,
        "accounts/api_keys.html",
        {
            "form": form,
            "issued": issued,
            "keys": [
                (key, reverse("performer_api_key_revoke", args=[key.pk]))
                for key in selectors.api_keys_for_performer(profile)
            ],
            "owner_label": f"{profile.stage_name} (performer)",
            "purpose": "bulk uploads from your own scripts",
        },
    )


@login_required
@require_POST
def performer_api_key_revoke(request, key_id: int):
    profile = _performer_or_404(request)
    api_key = get_object_or_404(ApiKey, pk=key_id, performer=profile)
    services.api_key_revoke(api_key=api_key, by=request.user, request=request)
    messages.success(request, f"Key “{api_key.name}” is revoked. It stops working at once.")
    return redirect("performer_api_keys")


# --- Buyer organizations -----------------------------------------------------------


@login_required
def buyer_dashboard(request):
    organizations = list(selectors.organizations_for_user(request.user))
    if len(organizations) == 1:
        return redirect("organization_detail", slug=organizations[0].slug)
    return render(request, "accounts/buyer_dashboard.html", {"organizations": organizations})


@login_required
def organization_create(request):
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        organization = services.organization_create(
            creator=request.user, request=request, **form.cleaned_data
        )
        messages.success(request, f"{organization.name} is ready. You are its owner.")
        return redirect("organization_detail", slug=organization.slug)
    return render(request, "accounts/organization_form.html", {"form": form, "creating": True})


@login_required
def organization_detail(request, slug: str):
    organization, membership = selectors.organization_for_member(user=request.user, slug=slug)
    return render(
        request,
        "accounts/organization_detail.html",
        {
            "organization": organization,
            "membership": membership,
            "members": selectors.organization_members(organization),
            "invitations": selectors.organization_pending_invitations(organization)
            if membership.is_owner
            else [],
            "active_key_count": organization.api_keys.filter(revoked_at__isnull=True).count(),
            "active_license_count": organization.licenses.filter(status="active").count(),
        },
    )


@login_required
def organization_edit(request, slug: str):
    organization, membership = selectors.organization_for_member(user=request.user, slug=slug)
    if not membership.is_owner:
        return _owner_required(request, organization)
    form = OrganizationForm(request.POST or None, instance=organization)
    if request.method == "POST" and form.is_valid():
        services.organization_update(
            organization=organization, by=request.user, request=request, **form.cleaned_data
        )
        messages.success(request, "Organization details saved.")
        return redirect("organization_detail", slug=organization.slug)
    organization.refresh_from_db()
    return render(
        request,
        "accounts/organization_form.html",
        {"form": form, "organization": organization, "creating": False},
    )


def _owner_required(request, organization):
    response = render(
        request,
        "accounts/owner_required.html",
        {"organization": organization},
        status=403,
    )
    return response


@login_required
def organization_members(request, slug: str):
    organization, membership = selectors.organization_for_member(user=request.user, slug=slug)
    form = InvitationForm(request.POST or None)
    if request.method == "POST":
        if not membership.is_owner:
            return _owner_required(request, organization)
        if form.is_valid():
            try:
                issued = services.invitation_create(
                    organization=organization,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    invited_by=request.user,
                    request=request,
                )
            except ApplicationError as exc:
                form.add_error("email", exc.message)
            else:
                messages.success(
                    request,
                    f"Invitation sent to {issued.invitation.email}. It is valid for 7 days.",
                )
                return redirect("organization_members", slug=slug)
    return render(
        request,
        "accounts/organization_members.html",
        {
            "organization": organization,
            "membership": membership,
            "members": selectors.organization_members(organization),
            "invitations": selectors.organization_pending_invitations(organization)
            if membership.is_owner
            else [],
            "form": form,
            "role_choices": Membership.Role.choices,
        },
    )


@login_required
@require_POST
def membership_role(request, slug: str, membership_id: int):
    organization, _ = selectors.organization_for_member(user=request.user, slug=slug)
    target = get_object_or_404(Membership, pk=membership_id, organization=organization)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role.")
        return redirect("organization_members", slug=slug)
    try:
        services.membership_change_role(
            membership=target, role=form.cleaned_data["role"], by=request.user, request=request
        )
    except ApplicationError as exc:
        if exc.status_code == 403:
            return _owner_required(request, organization)
        messages.error(request, exc.message)
    else:
        messages.success(
            request, f"{target.user.email} is now {target.get_role_display().lower()}."
        )
    return redirect("organization_members", slug=slug)


@login_required
@require_POST
def membership_remove(request, slug: str, membership_id: int):
    organization, _ = selectors.organization_for_member(user=request.user, slug=slug)
    target = get_object_or_404(Membership, pk=membership_id, organization=organization)
    leaving = target.user_id == request.user.pk
    try:
        services.membership_remove(membership=target, by=request.user, request=request)
    except ApplicationError as exc:
        if exc.status_code == 403:
            return _owner_required(request, organization)
        messages.error(request, exc.message)
        return redirect("organization_members", slug=slug)
    if leaving:
        messages.success(request, f"You left {organization.name}.")
        return redirect("dashboard")
    messages.success(request, f"{target.user.email} was removed.")
    return redirect("organization_members", slug=slug)


@login_required
@require_POST
def invitation_revoke(request, slug: str, invitation_id: int):
    organization, membership = selectors.organization_for_member(user=request.user, slug=slug)
    if not membership.is_owner:
        return _owner_required(request, organization)
    invitation = get_object_or_404(Invitation, pk=invitation_id, organization=organization)
    services.invitation_revoke(invitation=invitation, by=request.user, request=request)
    messages.success(request, f"The invitation to {invitation.email} is withdrawn.")
    return redirect("organization_members", slug=slug)


@login_required
def organization_api_keys(request, slug: str):
    organization, membership = selectors.organization_for_member(user=request.user, slug=slug)
    if not membership.is_owner:
        return _owner_required(request, organization)
    form = ApiKeyForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        issued = services.api_key_create(
            name=form.cleaned_data["name"],
            created_by=request.user,
            organization=organization,
            request=request,
        )
        form = ApiKeyForm()
    return render(
        request,
        "accounts/api_keys.html",
        {
            "form": form,
            "issued": issued,
            "keys": [
                (key, reverse("organization_api_key_revoke", args=[organization.slug, key.pk]))
                for key in selectors.api_keys_for_organization(organization)
            ],
            "organization": organization,
            "owner_label": organization.name,
            "purpose": "reporting usage and downloading licensed files from your pipelines",
        },
    )


@login_required
@require_POST
def organization_api_key_revoke(request, slug: str, key_id: int):
    organization, membership = selectors.organization_for_member(user=request.user, slug=slug)
    if not membership.is_owner:
        return _owner_required(request, organization)
    api_key = get_object_or_404(ApiKey, pk=key_id, organization=organization)
    services.api_key_revoke(api_key=api_key, by=request.user, request=request)
    messages.success(request, f"Key “{api_key.name}” is revoked. It stops working at once.")
    return redirect("organization_api_keys", slug=slug)


# --- Invitations --------------------------------------------------------------------


def invitation_accept(request, token: str):
    try:
        invitation = services.invitation_get_by_token(token)
        services.invitation_check(invitation)
    except ApplicationError as exc:
        return render(
            request, "accounts/invitation_error.html", {"error": exc}, status=exc.status_code
        )
    if request.method == "POST" and request.user.is_authenticated:
        try:
            membership = services.invitation_accept(token=token, user=request.user, request=request)
        except ApplicationError as exc:
            return render(
                request,
                "accounts/invitation_accept.html",
                {"invitation": invitation, "error": exc},
                status=exc.status_code,
            )
        messages.success(request, f"Welcome to {membership.organization.name}.")
        return redirect("organization_detail", slug=membership.organization.slug)
    return render(request, "accounts/invitation_accept.html", {"invitation": invitation})
