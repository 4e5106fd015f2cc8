"""Writes for accounts: users, performer profiles, organizations,
memberships, invitations and API keys. Each function is one transaction and
leaves an audit record."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import (
    ApiKey,
    Invitation,
    Membership,
    Organization,
    PerformerProfile,
    User,
    normalize_email,
)
from core.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationError
from core.services import audit_record

INVITATION_LIFETIME = timedelta(days=7)
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- Users and performer profiles ------------------------------------------


@transaction.atomic
def user_create(
    *, email: str, password: str | None, full_name: str = "", is_staff: bool = False
) -> User:
    email = normalize_email(email)
    if User.objects.filter(email__iexact=email).exists():
        raise Conflict("A user with this email already exists.", code="email_taken")
    user = User.objects.create_user(
        email=email, password=password, full_name=full_name, is_staff=is_staff
    )
    audit_record(action="user.created", target=user, data={"email": email})
    return user


PERFORMER_FIELDS = (
    "stage_name",
    "legal_name",
    "contact_email",
    "contact_phone",
    "country",
    "jurisdiction",
    "bio",
)


@transaction.atomic
def performer_profile_save(
    *, user: User, request: HttpRequest | None = None, **fields
) -> PerformerProfile:
    """Create the user's performer profile, or update it."""
    unknown = set(fields) - set(PERFORMER_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    profile = PerformerProfile.objects.select_for_update().filter(user=user).first()
    created = profile is None
    if created:
        profile = PerformerProfile(user=user)
    for name, value in fields.items():
        setattr(profile, name, value)
    profile.full_clean()
    profile.save()
    audit_record(
        action="performer.created" if created else "performer.updated",
        actor=user,
        target=profile,
        request=request,
        data={"fields": sorted(fields)},
    )
    return profile


# --- Organizations and memberships -------------------------------------------


def _unique_slug(name: str) -> str:
    base = slugify(name)[:60] or "org"
    slug = base
    while Organization.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


@transaction.atomic
def organization_create(
    *,
    creator: User,
    name: str,
    country: str,
    billing_email: str,
    intended_use: str,
    request: HttpRequest | None = None,
) -> Organization:
    """A new buyer organization, with its creator as the first owner."""
    organization = Organization(
        name=name.strip(),
        slug=_unique_slug(name),
        country=country,
        billing_email=normalize_email(billing_email),
        intended_use=intended_use.strip(),
        created_by=creator,
    )
    organization.full_clean()
    organization.save()
    Membership.objects.create(organization=organization, user=creator, role=Membership.Role.OWNER)
    audit_record(action="organization.created", actor=creator, target=organization, request=request)
    return organization


@transaction.atomic
def organization_update(
    *, organization: Organization, by: User, request: HttpRequest | None = None, **fields
) -> Organization:
    _require_owner(organization=organization, user=by)
    allowed = {"name", "country", "billing_email", "intended_use"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(organization, name, value)
    organization.full_clean()
    organization.save()
    audit_record(
        action="organization.updated",
        actor=by,
        target=organization,
        request=request,
        data={"fields": sorted(fields)},
    )
    return organization


def _require_owner(*, organization: Organization, user: User) -> Membership:
    membership = Membership.objects.filter(organization=organization, user=user).first()
    if membership is None:
        raise NotFound("No such organization.")
    if not membership.is_owner:
        raise PermissionDenied(
            "Only an owner of the organization can do this.", code="owner_required"
        )
    return membership


def _other_owners_exist(membership: Membership) -> bool:
    return (
        Membership.objects.filter(
            organization_id=membership.organization_id, role=Membership.Role.OWNER
        )
        .exclude(pk=membership.pk)
        .exists()
    )


@transaction.atomic
def membership_change_role(
    *, membership: Membership, role: str, by: User, request: HttpRequest | None = None
) -> Membership:
    _require_owner(organization=membership.organization, user=by)
    if role not in Membership.Role.values:
        raise ValidationError("Unknown role.", details={"role": role})
    # Lock the organization's owners so two demotions can't both pass the check.
    list(
        Membership.objects.select_for_update().filter(
            organization_id=membership.organization_id, role=Membership.Role.OWNER
        )
    )
    membership.refresh_from_db()
    if (
        membership.is_owner
        and role != Membership.Role.OWNER
        and not _other_owners_exist(membership)
    ):
        raise Conflict("An organization needs at least one owner.", code="last_owner")
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        action="membership.role_changed",
        actor=by,
        target=membership,
        request=request,
        data={"user": membership.user.email, "from": old, "to": role},
    )
    return membership


@transaction.atomic
def membership_remove(
    *, membership: Membership, by: User, request: HttpRequest | None = None
) -> None:
    """An owner removes a member, or a member leaves."""
    if by.pk != membership.user_id:
        _require_owner(organization=membership.organization, user=by)
    list(
        Membership.objects.select_for_update().filter(
            organization_id=membership.organization_id, role=Membership.Role.OWNER
        )
    )
    if membership.is_owner and not _other_owners_exist(membership):
        raise Conflict("An organization needs at least one owner.", code="last_owner")
    audit_record(
        action="membership.removed",
        actor=by,
        target=membership.organization,
        request=request,
        data={"user": membership.user.email, "role": membership.role},
    )
    membership.delete()


# --- Invitations --------------------------------------------------------------


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str

    @property
    def path(self) -> str:
        return reverse("invitation_accept", kwargs={"token": self.token})


@transaction.atomic
def invitation_create(
    *,
    organization: Organization,
    email: str,
    role: str,
    invited_by: User,
    request: HttpRequest | None = None,
) -> IssuedInvitation:
    _require_owner(organization=organization, user=invited_by)
    email = normalize_email(email)
    if role not in Membership.Role.values:
        raise ValidationError("Unknown role.", details={"role": role})
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise Conflict("This person is already a member.", code="already_member")
    # A new invitation to the same address replaces any pending one.
    now = timezone.now()
    Invitation.objects.filter(
        organization=organization,
        email__iexact=email,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
    ).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        token_hash=sha256_hex(token),
        invited_by=invited_by,
        expires_at=now + INVITATION_LIFETIME,
    )
    issued = IssuedInvitation(invitation=invitation, token=token)
    audit_record(
        action="invitation.created",
        actor=invited_by,
        target=invitation,
        request=request,
        data={"email": email, "role": role},
    )
    context = {
        "organization": organization,
        "invited_by": invited_by,
        "role": invitation.get_role_display(),
        "url": settings.SITE_URL + issued.path,
        "expires_at": invitation.expires_at,
    }
    subject = f"You're invited to join {organization.name} on Residuals"
    body = render_to_string("accounts/email/invitation.txt", context)
    transaction.on_commit(lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email]))
    return issued


def invitation_get_by_token(token: str) -> Invitation:
    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=sha256_hex(token))
        .first()
    )
    if invitation is None:
        raise NotFound("This invitation link is not valid.", code="invitation_invalid")
    return invitation


def invitation_check(invitation: Invitation) -> None:
    if invitation.revoked_at is not None:
        raise ApplicationError(
            "This invitation was withdrawn. Ask the organization for a new one.",
            code="invitation_revoked",
        )
    if invitation.accepted_at is not None:
        raise ApplicationError("This invitation was already used.", code="invitation_used")
    if invitation.expires_at <= timezone.now():
        raise ApplicationError(
            "This invitation has expired. Ask the organization for a new one.",
            code="invitation_expired",
        )


@transaction.atomic
def invitation_accept(*, token: str, user: User, request: HttpRequest | None = None) -> Membership:
    invitation = invitation_get_by_token(token)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    invitation_check(invitation)
    if normalize_email(user.email) != invitation.email:
        raise PermissionDenied(
            f"This invitation was sent to {invitation.email}. Sign in with that address to "
            "accept it.",
            code="invitation_email_mismatch",
        )
    try:
        with transaction.atomic():
            membership = Membership.objects.create(
                organization=invitation.organization, user=user, role=invitation.role
            )
    except IntegrityError:
        raise Conflict("You are already a member.", code="already_member") from None
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        action="invitation.accepted",
        actor=user,
        target=invitation,
        request=request,
        data={"organization": invitation.organization_id, "role": invitation.role},
    )
    return membership


@transaction.atomic
def invitation_revoke(
    *, invitation: Invitation, by: User, request: HttpRequest | None = None
) -> Invitation:
    _require_owner(organization=invitation.organization, user=by)
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(action="invitation.revoked", actor=by, target=invitation, request=request)
    return invitation


# --- API keys -------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedApiKey:
    """The only moment the plaintext exists: show ``secret`` once, then drop it."""

    api_key: ApiKey
    secret: str


def _new_prefix() -> str:
    return "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(10))


@transaction.atomic
def api_key_create(
    *,
    name: str,
    created_by: User,
    organization: Organization | None = None,
    performer: PerformerProfile | None = None,
    request: HttpRequest | None = None,
) -> IssuedApiKey:
    if (organization is None) == (performer is None):
        raise ValidationError("A key belongs to one organization or one performer.")
    name = name.strip()
    if not name:
        raise ValidationError("Give the key a name.", details={"name": "required"})
    if organization is not None:
        _require_owner(organization=organization, user=created_by)
    elif performer.user_id != created_by.pk:
        raise NotFound("No such performer profile.")
    prefix = _new_prefix()
    while ApiKey.objects.filter(prefix=prefix).exists():
        prefix = _new_prefix()
    secret = f"{settings.API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        name=name[:100],
        prefix=prefix,
        secret_hash=sha256_hex(secret),
        organization=organization,
        performer=performer,
        created_by=created_by,
    )
    audit_record(
        action="api_key.created",
        actor=created_by,
        target=api_key,
        request=request,
        data={"name": api_key.name, "prefix": prefix},
    )
    return IssuedApiKey(api_key=api_key, secret=secret)


def api_key_can_manage(*, api_key: ApiKey, user: User) -> bool:
    if api_key.organization_id is not None:
        return Membership.objects.filter(
            organization_id=api_key.organization_id, user=user, role=Membership.Role.OWNER
        ).exists()
    return api_key.performer.user_id == user.pk


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, by: User, request: HttpRequest | None = None) -> ApiKey:
    api_key = (
        ApiKey.objects.select_for_update(of=("self",))
        .select_related("performer")
        .get(pk=api_key.pk)
    )
    if not api_key_can_manage(api_key=api_key, user=by):
        raise PermissionDenied("Only an owner can revoke this key.", code="owner_required")
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.revoked_by = by
        api_key.save(update_fields=["revoked_at", "revoked_by"])
        audit_record(action="api_key.revoked", actor=by, target=api_key, request=request)
    return api_key


class ApiKeyError(ApplicationError):
    status_code = 401


# Writing last_used_at on every request would make each API call a write;
# once a minute is precise enough to tell a live key from a dead one.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_key_authenticate(raw: str) -> ApiKey:
    """The active key for a presented secret, or ApiKeyError with a stable code."""
    parts = raw.split("_")
    if len(parts) < 3 or parts[0] != settings.API_KEY_PREFIX:
        raise ApiKeyError("The API key is malformed.", code="invalid_api_key")
    prefix = parts[1]
    api_key = (
        ApiKey.objects.select_related("organization", "performer", "created_by")
        .filter(prefix=prefix)
        .first()
    )
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, sha256_hex(raw)):
        raise ApiKeyError("The API key is not valid.", code="invalid_api_key")
    if api_key.revoked_at is not None:
        raise ApiKeyError("The API key was revoked.", code="api_key_revoked")
    if api_key.created_by is None or not api_key.created_by.is_active:
        raise ApiKeyError(
            "The person who created this API key no longer has an active account.",
            code="api_key_owner_inactive",
        )
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > _LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
