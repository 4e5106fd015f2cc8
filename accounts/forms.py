from django import forms

from accounts.models import Membership, Organization, PerformerProfile


class PerformerProfileForm(forms.ModelForm):
    class Meta:
        model = PerformerProfile
        fields = [
            "stage_name",
            "legal_name",
            "contact_email",
            "contact_phone",
            "country",
            "jurisdiction",
            "bio",
        ]
        widgets = {"bio": forms.Textarea(attrs={"rows": 4})}
        help_texts = {
            "stage_name": "The name buyers see in the catalogue.",
            "contact_email": "Where buyers' provenance questions and takedown notices reach you.",
        }


class OrganizationForm(forms.ModelForm):
    intended_use = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        min_length=40,
        max_length=5000,
        help_text=(
            "What you will use licensed recordings for (for example: training an empathetic "
            "voice assistant). Performers read this. At least 40 characters."
        ),
    )

    class Meta:
        model = Organization
        fields = ["name", "country", "billing_email", "intended_use"]


class InvitationForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="Something that tells you where it is used, e.g. 'training-cluster'.",
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)
