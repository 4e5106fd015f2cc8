"""Test data made through the project's own services, as the product makes it."""

from __future__ import annotations

import factory
from allauth.account.models import EmailAddress

from accounts import services
from accounts.models import Organization, PerformerProfile, User

PASSWORD = "correct horse battery staple"


def make_user(
    *, email: str, full_name: str = "", is_staff: bool = False, verified: bool = True
) -> User:
    user = services.user_create(
        email=email, password=PASSWORD, full_name=full_name, is_staff=is_staff
    )
    EmailAddress.objects.create(user=user, email=user.email, verified=verified, primary=True)
    return user


class PerformerProfileFactory(factory.Factory):
    """Field values for a performer profile; saved by performer_profile_save."""

    class Meta:
        model = dict

    stage_name = factory.Faker("name")
    legal_name = factory.Faker("name")
    contact_email = factory.Faker("email")
    contact_phone = "+44 20 7946 0000"
    country = "GB"
    jurisdiction = "England"
    bio = "Improv actor."


def make_performer(*, email: str, user: User | None = None, **fields) -> PerformerProfile:
    user = user or make_user(email=email, full_name=fields.get("legal_name", ""))
    values = PerformerProfileFactory(**fields)
    return services.performer_profile_save(user=user, **values)


def make_organization(*, owner: User, name: str = "Acme AI") -> Organization:
    return services.organization_create(
        creator=owner,
        name=name,
        country="US",
        billing_email=f"billing@{name.lower().replace(' ', '')}.example",
        intended_use="Training an emotion-aware speech model for customer support agents.",
    )
