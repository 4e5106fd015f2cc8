"""Forms for the licensing pages. They collect and display; the rules (what
is a valid attestation, what is a valid certificate) live in the services."""

from __future__ import annotations

from django import forms


class DeletionAttestationForm(forms.Form):
    """What is required (a name, a statement of 20+ characters) is checked by
    licensing.lifecycle.attestation_submit, for the web and the API alike."""

    signer_name = forms.CharField(
        label="Your full name",
        max_length=200,
        required=False,
        help_text="The person attesting, on behalf of the organization.",
    )
    signer_title = forms.CharField(
        label="Your role", max_length=200, required=False, help_text="E.g. Head of Data."
    )
    statement = forms.CharField(
        label="What was deleted",
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=5000,
        required=False,
        help_text=(
            "Say that every copy of the licensed files, and raw data derived from them, "
            "was deleted, and when."
        ),
    )
    systems = forms.CharField(
        label="Where copies were held",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=5000,
        required=False,
        help_text="Storage buckets, training clusters, laptops, backups — and how each was purged.",
    )


class CertificateVerifyForm(forms.Form):
    certificate = forms.CharField(
        label="Certificate JSON",
        widget=forms.Textarea(
            attrs={"rows": 12, "spellcheck": "false", "class": "mono", "autocomplete": "off"}
        ),
        max_length=200_000,
        help_text="Paste the whole contents of the certificate file (certificate.json).",
    )
