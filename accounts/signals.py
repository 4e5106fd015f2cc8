"""Receivers for allauth's signals. They record facts; no business rules here."""

from allauth.account.internal.flows.login import record_authentication
from allauth.mfa.signals import authenticator_added
from django.dispatch import receiver

from core.services import audit_record


@receiver(authenticator_added)
def _authenticator_added(sender, request, user, authenticator, **kwargs):
    # Activating TOTP means the person just typed a valid code from the
    # authenticator, so this session has passed a second factor.
    if request is not None:
        record_authentication(request, user, "mfa", type=authenticator.type, id=authenticator.pk)
    audit_record(
        action="mfa.authenticator_added",
        actor=user,
        target=authenticator,
        request=request,
        data={"type": authenticator.type},
    )
