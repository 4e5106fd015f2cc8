"""The form that starts a batch import: the CSV manifest and the batch's
consent signature. Files are uploaded on the next page."""

from __future__ import annotations

from django import forms

from marketplace.services.imports import MANIFEST_MAX_BYTES


class ImportStartForm(forms.Form):
    manifest = forms.FileField(
        label="CSV manifest",
        help_text="One row per file, with a header row. UTF-8, up to 1,000 rows.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    signature_name = forms.CharField(
        label="Sign with your full legal name",
        max_length=200,
        help_text="Exactly as in your performer profile. Typing it signs the consent text above "
        "for every recording in this batch.",
        widget=forms.TextInput(attrs={"autocomplete": "name", "spellcheck": "false"}),
    )
    consent_text_version = forms.CharField(widget=forms.HiddenInput)

    def clean_manifest(self):
        manifest = self.cleaned_data["manifest"]
        name = manifest.name or ""
        if not name.lower().endswith((".csv", ".txt")):
            raise forms.ValidationError(
                "Upload the manifest as a .csv file (in a spreadsheet: Save as → CSV UTF-8)."
            )
        if manifest.size > MANIFEST_MAX_BYTES:
            raise forms.ValidationError(
                f"The manifest is larger than {MANIFEST_MAX_BYTES // (1024 * 1024)} MB."
            )
        return manifest
