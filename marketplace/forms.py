"""Forms for the performer's side of the catalogue. They turn what people type
into the values the services take (e.g. "500.00" into 50000 minor units);
the rules themselves live in ``marketplace.services``, whose errors the views
show on the field they name."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django_countries import countries

from core.errors import ApplicationError
from marketplace.services import (
    LISTING_MAX_DAYS,
    LISTING_MIN_DAYS,
    SUPPORTED_CURRENCIES,
    ListingTerms,
)
from marketplace.taxonomy import (
    FACS_ACTION_UNITS,
    Annotator,
    Authenticity,
    Emotion,
    Metric,
    SensitiveContent,
    Use,
    VocalEvent,
)

# --- Money and percentages, exactly ---------------------------------------------------

# Every supported currency (USD, EUR, GBP, CAD, AUD) has 2 decimal places, so
# one major unit is 100 minor units.
MINOR_PER_MAJOR = 100
_AMOUNT = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d{1,2})?$")
_PERCENT = re.compile(r"^\d{1,3}(?:\.\d{1,2})?$")


def parse_major_units(text: str) -> int:
    """ "500", "500.5", "500.00" or "10,000.00" -> minor units (int), exactly:
    parsed as a Decimal, never a float. More than 2 decimals is refused
    rather than rounded."""
    cleaned = (text or "").strip().replace(" ", "")
    if not _AMOUNT.match(cleaned):
        if re.match(r"^[\d,]*\.\d{3,}$", cleaned):
            raise forms.ValidationError("Use at most 2 decimal places, e.g. 500.00.")
        raise forms.ValidationError("Enter an amount such as 500 or 500.00.")
    minor = Decimal(cleaned.replace(",", "")) * MINOR_PER_MAJOR
    assert minor == minor.to_integral_value()  # guaranteed by the pattern
    return int(minor)


def format_major_units(minor: int | None) -> str:
    """50000 -> "500.00" (the inverse of parse_major_units)."""
    if minor is None:
        return ""
    whole, cents = divmod(int(minor), MINOR_PER_MAJOR)
    return f"{whole}.{cents:02d}"


def parse_percent_to_bps(text: str) -> int:
    """ "20" or "12.5" (percent) -> basis points (2000, 1250), exactly."""
    cleaned = (text or "").strip().rstrip("%").strip()
    if not _PERCENT.match(cleaned):
        raise forms.ValidationError("Enter a percentage such as 20 or 12.5 (at most 2 decimals).")
    bps = int(Decimal(cleaned) * 100)
    if bps > 10_000:
        raise forms.ValidationError("At most 100%.")
    return bps


def format_bps_as_percent(bps: int) -> str:
    return f"{(Decimal(int(bps)) / 100).normalize():f}"


def apply_service_error(form: forms.Form, exc: ApplicationError, field_map: dict | None = None):
    """Show a service error on the fields it names (or on the form)."""
    field_map = field_map or {}
    fields = (exc.details or {}).get("fields") or {}
    if not fields:
        form.add_error(None, exc.message)
        return
    for name, messages in fields.items():
        target = field_map.get(name, name)
        if target not in form.fields:
            target = None
        for message in messages if isinstance(messages, list) else [messages]:
            form.add_error(target, message)


# --- Provenance ----------------------------------------------------------------------


class ProvenanceForm(forms.Form):
    performer_name = forms.CharField(
        max_length=200,
        label="Performer’s name",
        help_text="The real name of the person performing, as provenance records show it.",
    )
    performer_contact = forms.CharField(
        max_length=200,
        label="Contact",
        help_text="An email address or phone number where provenance questions reach you.",
    )
    recording_date = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The day it was recorded.",
    )
    session_name = forms.CharField(
        max_length=200, required=False, help_text="Optional, e.g. “Grief improv, day 2”."
    )
    studio = forms.CharField(
        max_length=200, required=False, label="Studio or location", help_text="Optional."
    )
    annotator = forms.CharField(
        max_length=200,
        required=False,
        help_text="Optional: who described the emotional content, if not you.",
    )


# --- Consent ---------------------------------------------------------------------------


class ConsentForm(forms.Form):
    allowed_uses = forms.MultipleChoiceField(
        choices=Use.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Uses you allow",
        help_text="“Research only” cannot be combined with other uses.",
        error_messages={"required": "Choose at least one use."},
    )
    sensitive_content = forms.MultipleChoiceField(
        choices=SensitiveContent.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Sensitive content this recording holds",
        help_text="Tick everything that applies. Leave empty if none does.",
    )
    sensitive_content_licensable = forms.BooleanField(
        required=False,
        label="I agree to license this sensitive content",
        help_text="Without this, a recording holding sensitive content is never offered.",
    )
    signature_name = forms.CharField(
        max_length=200,
        label="Signature: type your full legal name",
        help_text="It must match the legal name in your performer profile.",
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    consent_text_version = forms.CharField(widget=forms.HiddenInput)


# --- Emotional signature -------------------------------------------------------------------

INTENSITY_CHOICES = [
    (1, "1 · faint"),
    (2, "2 · mild"),
    (3, "3 · clear"),
    (4, "4 · strong"),
    (5, "5 · overwhelming"),
]
AU_CHOICES = [(str(n), f"AU{n} · {name}") for n, name in FACS_ACTION_UNITS.items()]
ARC_MIN_ROWS = 6


class SignatureForm(forms.Form):
    primary_emotion = forms.ChoiceField(choices=[("", "Choose…"), *Emotion.choices])
    intensity = forms.TypedChoiceField(
        choices=INTENSITY_CHOICES, coerce=int, widget=forms.RadioSelect, initial=3
    )
    valence = forms.FloatField(
        min_value=-1,
        max_value=1,
        initial=0,
        widget=forms.NumberInput(attrs={"step": "0.05"}),
        help_text="−1 very unpleasant … 0 neutral … 1 very pleasant.",
    )
    arousal = forms.FloatField(
        min_value=0,
        max_value=1,
        initial=0.5,
        widget=forms.NumberInput(attrs={"step": "0.05"}),
        help_text="0 calm, low energy … 1 highly activated.",
    )
    authenticity = forms.ChoiceField(choices=Authenticity.choices, widget=forms.RadioSelect)
    annotator = forms.ChoiceField(
        choices=Annotator.choices, initial=Annotator.SELF, label="Annotated by"
    )
    description = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="A sentence or two on what happens in the take.",
    )
    tags = forms.CharField(
        required=False,
        max_length=1500,
        help_text="Comma separated, e.g. “monologue, hospital, whisper”.",
    )
    vocal_events = forms.MultipleChoiceField(
        choices=VocalEvent.choices, widget=forms.CheckboxSelectMultiple, required=False
    )
    action_units = forms.MultipleChoiceField(
        choices=AU_CHOICES,
        required=False,
        label="FACS action units",
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text="For video: the facial action units visible. Hold Ctrl or ⌘ to pick several.",
    )

    def cleaned_tags(self) -> list[str]:
        return [t.strip() for t in self.cleaned_data.get("tags", "").split(",") if t.strip()]


def arc_rows_from_post(data) -> list[dict]:
    """The ARC editor's rows as typed (strings), without the blank ones.
    Each row's inputs share a name (arc_start, arc_end …), so rows keep
    their order whether the browser added them with JavaScript or not."""
    columns = {
        key: data.getlist(f"arc_{key}") for key in ("start", "end", "emotion", "intensity", "note")
    }
    count = max((len(v) for v in columns.values()), default=0)
    rows = []
    for i in range(count):
        row = {
            key: (values[i] if i < len(values) else "").strip() for key, values in columns.items()
        }
        if not (row["start"] or row["end"] or row["note"] or row["emotion"]):
            continue
        rows.append(row)
    return rows


def arc_rows_for_service(rows: list[dict]) -> list[dict]:
    """Rows as the service takes them. Numbers stay as typed: the service
    parses them and names the segment when one is not a number."""
    return [
        {
            "start": row["start"],
            "end": row["end"],
            "emotion": row["emotion"],
            "intensity": row["intensity"] or 3,
            "note": row["note"],
        }
        for row in rows
    ]


def arc_rows_for_display(segments: list[dict], minimum: int = ARC_MIN_ROWS) -> list[dict]:
    rows = [
        {
            "start": f"{s['start']:g}" if isinstance(s.get("start"), int | float) else s["start"],
            "end": f"{s['end']:g}" if isinstance(s.get("end"), int | float) else s["end"],
            "emotion": s.get("emotion", ""),
            "intensity": str(s.get("intensity", "")),
            "note": s.get("note", ""),
        }
        for s in segments
    ]
    blank = {"start": "", "end": "", "emotion": "", "intensity": "3", "note": ""}
    rows += [dict(blank) for _ in range(max(0, minimum - len(rows)))]
    return rows


# --- Splits ----------------------------------------------------------------------------------

SPLIT_MIN_ROWS = 3


def split_rows_from_post(data) -> list[dict]:
    emails = data.getlist("split_email")
    shares = data.getlist("split_bps")
    rows = []
    for i in range(max(len(emails), len(shares))):
        email = (emails[i] if i < len(emails) else "").strip()
        share = (shares[i] if i < len(shares) else "").strip()
        if email or share:
            rows.append({"email": email, "bps": share})
    return rows


# --- Listings -----------------------------------------------------------------------------

RATE_FIELDS = [
    # (form field, metric, per how many units, label)
    ("rate_training_run", Metric.TRAINING_RUN, 1, "Per training run"),
    ("rate_fine_tune_run", Metric.FINE_TUNE_RUN, 1, "Per fine-tune run"),
    ("rate_evaluation_run", Metric.EVALUATION_RUN, 1, "Per evaluation run"),
    ("rate_inference_calls", Metric.INFERENCE_CALLS, 1000, "Per 1,000 inference calls"),
    ("rate_deployment", Metric.DEPLOYMENT, 1, "Per deployment"),
]
CAP_FIELDS = [
    ("max_models_trained", "Maximum models trained"),
    ("max_fine_tunes", "Maximum fine-tunes"),
    ("max_deployments", "Maximum deployments"),
]
# Service field -> form field, for showing service errors in the right place.
LISTING_FIELD_MAP = {
    "price_minor": "price",
    "revenue_share_bps": "revenue_share_percent",
    "revenue_threshold_minor": "revenue_threshold",
    "worldwide": "territory_scope",
    "per_unit_rates": None,
    "reuse_caps": None,
}


class ListingForm(forms.Form):
    """Terms of a listing, plus the recordings it offers.

    ``choices`` is a list of ``(recording, state, selectable)`` for the
    performer's recordings; only selectable ones may be chosen. Permitted
    uses must be allowed by the consent of every chosen recording."""

    recordings = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one recording."},
    )
    title = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 4})
    )
    duration_days = forms.IntegerField(
        min_value=LISTING_MIN_DAYS,
        max_value=LISTING_MAX_DAYS,
        initial=730,
        label="License duration (days)",
        help_text=(
            f"From {LISTING_MIN_DAYS} days to {LISTING_MAX_DAYS} days (3 years). There is no "
            "perpetual license."
        ),
    )
    permitted_uses = forms.MultipleChoiceField(
        choices=Use.choices,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one permitted use."},
    )
    territory_scope = forms.ChoiceField(
        choices=[("worldwide", "Worldwide"), ("countries", "Only in the countries below")],
        widget=forms.RadioSelect,
        initial="worldwide",
        label="Territories",
    )
    territories = forms.MultipleChoiceField(
        choices=list(countries),
        required=False,
        label="Countries",
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text="Hold Ctrl or ⌘ to pick several.",
    )
    sublicensing_allowed = forms.BooleanField(
        required=False,
        label="Allow sublicensing and resale",
        help_text="Off by default: buyers may not pass the recordings on.",
    )
    attribution_required = forms.BooleanField(
        required=False, label="Require attribution", help_text="Buyers must credit you."
    )
    price = forms.CharField(
        max_length=20,
        label="Price",
        help_text="For the whole listing, e.g. 500.00.",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    currency = forms.ChoiceField(
        choices=[(c, c) for c in sorted(SUPPORTED_CURRENCIES)], initial="USD"
    )
    revenue_share_percent = forms.CharField(
        max_length=8,
        initial="20",
        label="Revenue share (%)",
        help_text="Your share of the buyer’s reported downstream revenue above the threshold.",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    revenue_threshold = forms.CharField(
        max_length=24,
        initial="10,000.00",
        label="Revenue threshold",
        help_text="The share applies to revenue above this amount, per license.",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )

    def __init__(self, *args, choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.recording_choices = list(choices)
        self.fields["recordings"].choices = [
            (r.uid, f"{r.uid} {r.title}") for r, _state, _ok in self.recording_choices
        ]
        for name, _metric, per, label in RATE_FIELDS:
            self.fields[name] = forms.CharField(
                required=False,
                max_length=20,
                label=label,
                widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "—"}),
            )
            self.fields[name].per = per
        for name, label in CAP_FIELDS:
            self.fields[name] = forms.IntegerField(
                required=False, min_value=1, max_value=1_000_000, label=label
            )

    # Field cleaning: exact conversions -------------------------------------------------

    def clean_price(self) -> int:
        return parse_major_units(self.cleaned_data["price"])

    def clean_revenue_share_percent(self) -> int:
        return parse_percent_to_bps(self.cleaned_data["revenue_share_percent"])

    def clean_revenue_threshold(self) -> int:
        return parse_major_units(self.cleaned_data["revenue_threshold"])

    def _clean_rate(self, name: str) -> int | None:
        value = self.cleaned_data.get(name, "")
        return parse_major_units(value) if value.strip() else None

    def clean(self):
        cleaned = super().clean()
        for name, *_ in RATE_FIELDS:
            if name in cleaned:
                try:
                    cleaned[name] = self._clean_rate(name)
                except forms.ValidationError as exc:
                    self.add_error(name, exc)
        by_uid = {r.uid: (r, state, ok) for r, state, ok in self.recording_choices}
        chosen = [by_uid[uid] for uid in cleaned.get("recordings", []) if uid in by_uid]
        refused = [f"{r.uid} ({state.label.lower()})" for r, state, ok in chosen if not ok]
        if refused:
            self.add_error(
                "recordings", f"Not ready to list: {', '.join(refused)}. Finish them first."
            )
        uses = cleaned.get("permitted_uses") or []
        if chosen and uses:
            problems = []
            for recording, _state, _ok in chosen:
                allowed = set(getattr(recording, "allowed_uses", ()))
                wider = [Use(u).label for u in uses if u not in allowed]
                if wider:
                    problems.append(f"{recording.uid} does not allow {', '.join(wider)}")
            if problems:
                self.add_error(
                    "permitted_uses",
                    "Permitted uses may not exceed any recording’s consent: "
                    + "; ".join(problems)
                    + ".",
                )
        if cleaned.get("territory_scope") == "countries" and not cleaned.get("territories"):
            self.add_error("territories", "Choose at least one country, or choose worldwide.")
        return cleaned

    # Output ---------------------------------------------------------------------------------

    def chosen_uids(self) -> list[str]:
        return list(self.cleaned_data["recordings"])

    def terms(self) -> ListingTerms:
        data = self.cleaned_data
        worldwide = data["territory_scope"] == "worldwide"
        return ListingTerms(
            title=data["title"],
            description=data.get("description", ""),
            duration_days=data["duration_days"],
            permitted_uses=list(data["permitted_uses"]),
            worldwide=worldwide,
            territories=[] if worldwide else list(data["territories"]),
            sublicensing_allowed=bool(data.get("sublicensing_allowed")),
            attribution_required=bool(data.get("attribution_required")),
            price_minor=data["price"],
            currency=data["currency"],
            revenue_share_bps=data["revenue_share_percent"],
            revenue_threshold_minor=data["revenue_threshold"],
            per_unit_rates={
                metric: {"amount_minor": data[name], "per": per}
                for name, metric, per, _label in RATE_FIELDS
                if data.get(name)
            },
            reuse_caps={name: data[name] for name, _ in CAP_FIELDS if data.get(name)},
        )

    @staticmethod
    def initial_from(listing) -> dict:
        initial = {
            "recordings": [item.recording.uid for item in listing.items.all()],
            "title": listing.title,
            "description": listing.description,
            "duration_days": listing.duration_days,
            "permitted_uses": list(listing.permitted_uses),
            "territory_scope": "worldwide" if listing.worldwide else "countries",
            "territories": list(listing.territories),
            "sublicensing_allowed": listing.sublicensing_allowed,
            "attribution_required": listing.attribution_required,
            "price": format_major_units(listing.price_minor),
            "currency": listing.currency,
            "revenue_share_percent": format_bps_as_percent(listing.revenue_share_bps),
            "revenue_threshold": format_major_units(listing.revenue_threshold_minor),
        }
        rates = listing.per_unit_rates or {}
        for name, metric, per, _label in RATE_FIELDS:
            rate = rates.get(metric)
            if rate:
                # Shown per the form's unit (e.g. per 1,000 inference calls),
                # exactly: a rate set through the API per another unit may
                # show more decimals, which the form then asks to round.
                major = Decimal(rate["amount_minor"]) * per / Decimal(rate.get("per", 1)) / 100
                initial[name] = (
                    f"{major.quantize(Decimal('0.01'))}"
                    if major == major.quantize(Decimal("0.01"))
                    else f"{major.normalize():f}"
                )
        for name, _label in CAP_FIELDS:
            if (listing.reuse_caps or {}).get(name):
                initial[name] = listing.reuse_caps[name]
        return initial


class RejectForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="What should the performer change?",
        error_messages={"required": "Tell the performer what to change."},
    )


class TakeOffSaleForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Why does it leave the catalogue?",
        error_messages={"required": "Tell the performer why the listing leaves the catalogue."},
    )
