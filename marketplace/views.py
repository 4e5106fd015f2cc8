"""Web pages for what a performer does with a recording after upload (its
page, provenance, consent, emotional signature, splits), their listings, and
the staff review queue. Thin: reads through ``marketplace.selectors``, writes
through ``marketplace.services``; service errors are shown on the field they
name."""

from __future__ import annotations

import mimetypes

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.models import PerformerProfile
from core.errors import ApplicationError
from core.staff_views import staff_required
from marketplace import selectors, services
from marketplace.forms import (
    LISTING_FIELD_MAP,
    SPLIT_MIN_ROWS,
    ConsentForm,
    ListingForm,
    ProvenanceForm,
    RejectForm,
    SignatureForm,
    TakeOffSaleForm,
    apply_service_error,
    arc_rows_for_display,
    arc_rows_for_service,
    arc_rows_from_post,
    split_rows_from_post,
)
from marketplace.models import EmotionalSignature, Listing, Recording
from marketplace.taxonomy import (
    FACS_ACTION_UNITS,
    Emotion,
    SensitiveContent,
    Use,
    VocalEvent,
)

# --- Helpers ----------------------------------------------------------------------------


def _performer_or_404(request) -> PerformerProfile:
    performer = selectors.performer_for(request.user)
    if performer is None:
        raise Http404("You have no performer profile yet.")
    return performer


def _arc_view(signature: EmotionalSignature | None, duration: float) -> list[dict]:
    """Arc segments with their position on a timeline, in percent."""
    if signature is None or not duration:
        return []
    segments = []
    for s in signature.arc:
        left = max(0.0, min(100.0, s["start"] / duration * 100))
        width = max(0.5, min(100.0 - left, (s["end"] - s["start"]) / duration * 100))
        segments.append(
            {
                **s,
                "label": Emotion(s["emotion"]).label if s["emotion"] in Emotion.values else "",
                "left": f"{left:.3f}",
                "width": f"{width:.3f}",
            }
        )
    return segments


def _signature_view(signature: EmotionalSignature | None) -> dict | None:
    if signature is None:
        return None
    return {
        "obj": signature,
        "emotion": signature.get_primary_emotion_display(),
        "authenticity": signature.get_authenticity_display(),
        "annotator": signature.get_annotator_display(),
        "vocal_events": [VocalEvent(v).label for v in signature.vocal_events],
        "action_units": [(n, FACS_ACTION_UNITS.get(n, "")) for n in signature.action_units],
    }


def _consent_view(consent) -> dict | None:
    if consent is None:
        return None
    return {
        "obj": consent,
        "uses": selectors.uses_labels(consent.allowed_uses),
        "sensitive": [
            SensitiveContent(c).label for c in consent.sensitive_content if c in SensitiveContent
        ],
    }


def _listing_terms_view(listing: Listing) -> dict:
    from django_countries import countries

    names = dict(countries)
    rates = []
    for metric, rate in (listing.per_unit_rates or {}).items():
        per = rate.get("per", 1)
        unit = metric.replace("_", " ")
        rates.append(
            {
                "metric": metric,
                "amount": selectors.money_label(rate["amount_minor"], listing.currency),
                "per": f"per {per:,} {unit}" if per != 1 else f"per {unit}",
            }
        )
    return {
        "price": selectors.money_label(listing.price_minor, listing.currency),
        "duration": selectors.duration_label(listing.duration_days),
        "uses": selectors.uses_labels(listing.permitted_uses),
        "territories": "Worldwide"
        if listing.worldwide
        else ", ".join(names.get(c, c) for c in listing.territories),
        "revenue_share": selectors.bps_label(listing.revenue_share_bps),
        "threshold": selectors.money_label(listing.revenue_threshold_minor, listing.currency),
        "rates": rates,
        "caps": [
            (key.replace("_", " ").capitalize(), value)
            for key, value in (listing.reuse_caps or {}).items()
        ],
    }


_NEXT_ACTIONS = {
    "draft": ("recording_provenance", "Start with provenance"),
    "missing_provenance": ("recording_provenance", "Complete provenance"),
    "needs_consent": ("recording_consent", "Record consent"),
    "sensitive_not_licensable": ("recording_consent", "Review consent"),
    "consent_withdrawn": ("recording_consent", "Give consent again"),
    "needs_signature": ("recording_signature", "Describe the signature"),
    "splits_incomplete": ("recording_splits", "Fix splits"),
}


def next_action(recording: Recording, state: selectors.RecordingState) -> tuple[str, str] | None:
    """(url, button label) for the state's next step, or None."""
    if state.code in _NEXT_ACTIONS:
        name, label = _NEXT_ACTIONS[state.code]
        return reverse(name, args=[recording.uid]), label
    if state.code == "ready":
        return reverse("listing_new") + f"?recording={recording.uid}", "Create a listing"
    if state.code in {"listed", "in_review"}:
        return reverse("listing_list"), "See your listings"
    return None


# --- Recording page -----------------------------------------------------------------------


@login_required
def recording_detail(request, uid: str):
    recording = selectors.recording_for_owner(user=request.user, uid=uid)
    facts = selectors.recording_facts(recording)
    state = selectors.recording_state(recording, facts)
    signature = recording.signature if facts.has_signature else None
    history = list(selectors.consent_history(recording))
    splits = list(recording.splits.select_related("performer__user"))
    listings = list(selectors.listings_including(recording))
    for listing in listings:
        listing.price_text = selectors.money_label(listing.price_minor, listing.currency)
    return render(
        request,
        "marketplace/recordings/detail.html",
        {
            "recording": recording,
            "facts": facts,
            "state": state,
            "action": next_action(recording, state),
            "provenance": facts.provenance,
            "consent": _consent_view(facts.consent),
            "history": [(c, _consent_view(c)) for c in history],
            "signature": _signature_view(signature),
            "arc": _arc_view(signature, recording.duration_seconds),
            "splits": [(s, selectors.bps_label(s.share_bps)) for s in splits],
            "splits_total": selectors.bps_label(facts.splits_total_bps),
            "listings": listings,
            "preview_ready": recording.preview_status == Recording.PreviewStatus.READY
            and bool(recording.preview),
        },
    )


@login_required
def recording_owner_preview(request, uid: str):
    """The platform-made preview of the performer's own recording. Buyers hear
    previews through the catalogue's own view; originals never leave here."""
    recording = selectors.recording_for_owner(user=request.user, uid=uid)
    if recording.preview_status != Recording.PreviewStatus.READY or not recording.preview:
        raise Http404("The preview is not ready.")
    content_type = mimetypes.guess_type(recording.preview.name)[0] or "application/octet-stream"
    response = FileResponse(recording.preview.open("rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
def recording_provenance(request, uid: str):
    recording = selectors.recording_for_owner(user=request.user, uid=uid)
    provenance = selectors.recording_facts(recording).provenance
    profile = recording.performer
    initial = {
        "performer_name": (provenance and provenance.performer_name) or profile.legal_name,
        "performer_contact": (provenance and provenance.performer_contact) or profile.contact_email,
        "recording_date": provenance.recording_date if provenance else None,
        "session_name": provenance.session_name if provenance else "",
        "studio": provenance.studio if provenance else "",
        "annotator": provenance.annotator if provenance else "",
    }
    form = ProvenanceForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.provenance_save(
                recording=recording, by=request.user, request=request, **form.cleaned_data
            )
        except ApplicationError as exc:
            apply_service_error(form, exc)
        else:
            messages.success(request, "Provenance saved.")
            return redirect("recording_detail", uid=recording.uid)
    return render(
        request,
        "marketplace/recordings/provenance.html",
        {"recording": recording, "form": form},
    )


@login_required
def recording_consent(request, uid: str):
    recording = selectors.recording_for_owner(user=request.user, uid=uid)
    text = services.consent_text_current()
    current = selectors.recording_facts(recording).active_consent
    initial = {"consent_text_version": text.version}
    if current is not None:
        initial.update(
            allowed_uses=current.allowed_uses,
            sensitive_content=current.sensitive_content,
            sensitive_content_licensable=current.sensitive_content_licensable,
        )
    form = ConsentForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.consent_give(
                recording=recording,
                by=request.user,
                allowed_uses=data["allowed_uses"],
                sensitive_content=data["sensitive_content"],
                sensitive_content_licensable=data["sensitive_content_licensable"],
                signature_name=data["signature_name"],
                consent_text_version=data["consent_text_version"],
                request=request,
            )
        except ApplicationError as exc:
            if exc.code == "consent_text_outdated":
                # Show the new wording with its version; the next submit
                # signs what is now on the page.
                fresh = request.POST.copy()
                fresh["consent_text_version"] = text.version
                form = ConsentForm(fresh)
                form.is_valid()
                form.add_error(None, exc.message)
            else:
                apply_service_error(form, exc)
        else:
            messages.success(
                request,
                f"Consent recorded under consent text {text.version}. You can withdraw it at "
                "any time from this page.",
            )
            return redirect("recording_detail", uid=recording.uid)
    return render(
        request,
        "marketplace/recordings/consent.html",
        {
            "recording": recording,
            "form": form,
            "text": text,
            "current": _consent_view(current),
            "legal_name": recording.performer.legal_name,
        },
    )


@login_required
@require_POST
def recording_consent_withdraw(request, uid: str):
    recording = selectors.recording_for_owner(user=request.user, uid=uid)
    before = set(
        Listing.objects.filter(
            items__recording=recording,
            status__in=[Listing.Status.PUBLISHED, Listing.Status.IN_REVIEW],
        ).values_list("pk", flat=True)
    )
    try:
        services.consent_withdraw(
            recording=recording,
            by=request.user,
            reason=request.POST.get("reason", "")[:2000],
            request=request,
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        count = len(before)
        suffix = (
            f" {count} listing{'s were' if count != 1 else ' was'} unpublished." if count else ""
        )
        messages.success(
            request, f"Consent withdrawn. {recording.uid} is no longer for sale.{suffix}"
        )
    return redirect("recording_detail", uid=recording.uid)


@login_required
def recording_signature(request, uid: str):
    recording = selectors.recording_for_owner(user=request.user, uid=uid)
    signature = EmotionalSignature.objects.filter(recording=recording).first()
    initial = {}
    rows = arc_rows_for_display(signature.arc if signature else [])
    if signature is not None:
        initial = {
            "primary_emotion": signature.primary_emotion,
            "intensity": signature.intensity,
            "valence": signature.valence,
            "arousal": signature.arousal,
            "authenticity": signature.authenticity,
            "annotator": signature.annotator,
            "description": signature.description,
            "tags": ", ".join(signature.tags),
            "vocal_events": signature.vocal_events,
            "action_units": [str(n) for n in signature.action_units],
        }
    form = SignatureForm(request.POST or None, initial=initial)
    arc_errors: list[str] = []
    bad_segment = None
    if request.method == "POST":
        posted_rows = arc_rows_from_post(request.POST)
        rows = arc_rows_for_display(posted_rows)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.signature_save(
                    recording=recording,
                    by=request.user,
                    primary_emotion=data["primary_emotion"],
                    intensity=data["intensity"],
                    valence=data["valence"],
                    arousal=data["arousal"],
                    authenticity=data["authenticity"],
                    arc=arc_rows_for_service(posted_rows),
                    action_units=data["action_units"],
                    vocal_events=data["vocal_events"],
                    annotator=data["annotator"],
                    description=data["description"],
                    tags=form.cleaned_tags(),
                    request=request,
                )
            except ApplicationError as exc:
                fields = (exc.details or {}).get("fields") or {}
                if "arc" in fields:
                    arc_errors = list(fields["arc"])
                    bad_segment = exc.details.get("segment")
                else:
                    apply_service_error(form, exc)
            else:
                messages.success(request, "Emotional signature saved.")
                return redirect("recording_detail", uid=recording.uid)
    for number, row in enumerate(rows, start=1):
        row["number"] = number
        row["has_error"] = number == bad_segment
    return render(
        request,
        "marketplace/recordings/signature.html",
        {
            "recording": recording,
            "form": form,
            "rows": rows,
            "arc_errors": arc_errors,
            "emotions": Emotion.choices,
            "duration": recording.duration_seconds,
        },
    )


@login_required
def recording_splits(request, uid: str):
    recording = selectors.recording_for_owner(user=request.user, uid=uid)
    current = list(recording.splits.select_related("performer__user"))
    rows = [{"email": s.performer.user.email, "bps": str(s.share_bps)} for s in current]
    errors: list[str] = []
    if request.method == "POST":
        rows = split_rows_from_post(request.POST)
        emails = [r["email"].lower() for r in rows if r["email"]]
        profiles = {
            p.user.email.lower(): p
            for p in PerformerProfile.objects.filter(user__email__in=emails).select_related("user")
        }
        shares = []
        for number, row in enumerate(rows, start=1):
            profile = profiles.get(row["email"].lower())
            if not row["email"]:
                errors.append(f"Row {number}: enter the co-performer’s email address.")
            elif profile is None:
                errors.append(
                    f"Row {number}: no performer uses {row['email']}. Co-performers need a "
                    "Residuals performer profile first."
                )
            try:
                bps = int(row["bps"])
            except ValueError:
                errors.append(f"Row {number}: the share is a whole number of basis points.")
                continue
            if profile is not None:
                shares.append((profile, bps))
        if not rows:
            errors.append("Add at least one performer.")
        if not errors:
            try:
                services.splits_set(
                    recording=recording, by=request.user, shares=shares, request=request
                )
            except ApplicationError as exc:
                errors.append(exc.message.removeprefix("splits: "))
            else:
                messages.success(request, "Splits saved.")
                return redirect("recording_detail", uid=recording.uid)
    while len(rows) < SPLIT_MIN_ROWS:
        rows.append({"email": "", "bps": ""})
    for row in rows:
        row["percent"] = (
            selectors.bps_label(int(row["bps"])) if row["bps"].strip().isdigit() else ""
        )
    total = sum(int(r["bps"]) for r in rows if r["bps"].strip().isdigit())
    return render(
        request,
        "marketplace/recordings/splits.html",
        {
            "recording": recording,
            "rows": rows,
            "errors": errors,
            "total_bps": total,
            "total_label": selectors.bps_label(total),
            "owner_email": request.user.email,
        },
    )


# --- Listings ---------------------------------------------------------------------------


@login_required
def listing_list(request):
    performer = _performer_or_404(request)
    listings = list(selectors.listings_for_performer(performer))
    for listing in listings:
        listing.terms_view = _listing_terms_view(listing)
    return render(request, "marketplace/listings/list.html", {"listings": listings})


def _listing_choices(performer: PerformerProfile, *, keep: set[int] = frozenset()):
    """(recording, state, selectable) for each of the performer's recordings,
    with ``recording.allowed_uses`` set from its active consent."""
    choices = []
    for recording in selectors.recordings_for_performer(performer):
        facts = selectors.recording_facts(recording)
        state = selectors.recording_state(recording, facts)
        consent = facts.active_consent
        recording.allowed_uses = list(consent.allowed_uses) if consent else []
        recording.allowed_labels = selectors.uses_labels(recording.allowed_uses)
        choices.append((recording, state, state.is_listable or recording.pk in keep))
    return choices


def _listing_form_context(form: ListingForm, **extra) -> dict:
    from marketplace.forms import CAP_FIELDS, RATE_FIELDS

    selected = set(form["recordings"].value() or [])
    chosen = [r for r, _s, _ok in form.recording_choices if r.uid in selected]
    common = set.intersection(*(set(r.allowed_uses) for r in chosen)) if chosen else None
    days = str(form["duration_days"].value() or "")
    return {
        "form": form,
        "choices": form.recording_choices,
        "selected": selected,
        "common_uses": None
        if common is None
        else [label for value, label in Use.choices if value in common],
        "duration_text": selectors.duration_label(int(days)) if days.isdigit() else "",
        "rate_fields": [form[name] for name, *_ in RATE_FIELDS],
        "cap_fields": [form[name] for name, _ in CAP_FIELDS],
        "selectable_count": sum(1 for *_, ok in form.recording_choices if ok),
        "use_labels": dict(Use.choices),
        **extra,
    }


@login_required
def listing_new(request):
    performer = _performer_or_404(request)
    choices = _listing_choices(performer)
    initial = {"currency": "USD", "duration_days": 730, "territory_scope": "worldwide"}
    preselect = request.GET.getlist("recording")
    if preselect:
        initial["recordings"] = preselect
        chosen = [r for r, _s, ok in choices if r.uid in preselect and ok]
        if chosen:
            common = set.intersection(*(set(r.allowed_uses) for r in chosen))
            initial["permitted_uses"] = [u for u in Use.values if u in common]
            if len(chosen) == 1:
                initial["title"] = chosen[0].title
    form = ListingForm(request.POST or None, initial=initial, choices=choices)
    if request.method == "POST" and form.is_valid():
        by_uid = {r.uid: r for r, _s, _ok in choices}
        try:
            listing = services.listing_create(
                performer=performer,
                by=request.user,
                recording_ids=[by_uid[u].pk for u in form.chosen_uids()],
                terms=form.terms(),
                request=request,
            )
        except ApplicationError as exc:
            apply_service_error(form, exc, LISTING_FIELD_MAP)
        else:
            if "submit_for_review" in request.POST:
                return _submit(request, listing)
            messages.success(
                request, "Draft listing saved. Submit it for review when you are ready."
            )
            return redirect("listing_detail", pk=listing.pk)
    return render(
        request, "marketplace/listings/form.html", _listing_form_context(form, listing=None)
    )


_HISTORY_LABELS = {
    "listing.created": "Created",
    "listing.updated": "Terms edited",
    "listing.in_review": "Sent to review",
    "listing.published": "Approved and published",
    "listing.rejected": "Changes requested",
    "listing.unpublished": "Unpublished",
}


@login_required
def listing_detail(request, pk: int):
    listing = selectors.listing_for_owner(user=request.user, listing_id=pk)
    recordings = list(
        selectors.with_readiness(Recording.objects.filter(listing_items__listing=listing)).order_by(
            "listing_items__position", "listing_items__id"
        )
    )
    rows = [(r, selectors.recording_state(r)) for r in recordings]
    problems = services.listing_problems(listing, recordings)
    history = [
        {
            "event": event,
            "label": _HISTORY_LABELS.get(event.action, event.action),
            "by_you": event.actor_id == request.user.pk,
        }
        for event in selectors.listing_history(listing)
    ]
    return render(
        request,
        "marketplace/listings/detail.html",
        {
            "listing": listing,
            "terms": _listing_terms_view(listing),
            "rows": rows,
            "problems": problems,
            "history": history,
            "can_submit": listing.status
            in {Listing.Status.DRAFT, Listing.Status.REJECTED, Listing.Status.UNPUBLISHED},
            "can_unpublish": listing.status in {Listing.Status.PUBLISHED, Listing.Status.IN_REVIEW},
            "on_sale": listing.status == Listing.Status.PUBLISHED and not problems,
        },
    )


@login_required
def listing_edit(request, pk: int):
    listing = selectors.listing_for_owner(user=request.user, listing_id=pk)
    current_ids = set(listing.items.values_list("recording_id", flat=True))
    choices = _listing_choices(listing.performer, keep=current_ids)
    form = ListingForm(
        request.POST or None, initial=ListingForm.initial_from(listing), choices=choices
    )
    if request.method == "POST" and form.is_valid():
        by_uid = {r.uid: r for r, _s, _ok in choices}
        was_published = listing.status == Listing.Status.PUBLISHED
        try:
            listing = services.listing_update(
                listing=listing,
                by=request.user,
                terms=form.terms(),
                recording_ids=[by_uid[u].pk for u in form.chosen_uids()],
                request=request,
            )
        except ApplicationError as exc:
            apply_service_error(form, exc, LISTING_FIELD_MAP)
        else:
            if was_published and listing.status == Listing.Status.PUBLISHED:
                note = "It stays published; the new terms apply to future sales only."
            elif was_published:
                note = "The recordings changed, so it went back to review."
            else:
                note = ""
            messages.success(request, f"Listing saved (revision {listing.revision}). {note}")
            return redirect("listing_detail", pk=listing.pk)
    return render(
        request,
        "marketplace/listings/form.html",
        _listing_form_context(form, listing=listing),
    )


def _submit(request, listing: Listing):
    try:
        services.listing_submit(listing=listing, by=request.user, request=request)
    except ApplicationError as exc:
        problems = (exc.details or {}).get("problems")
        if problems:
            messages.error(
                request, "Not sent to review yet. Fix these first: " + " ".join(problems)
            )
        else:
            messages.error(request, exc.message)
    else:
        messages.success(
            request, "Sent to review. Staff check every listing before it goes on sale."
        )
    return redirect("listing_detail", pk=listing.pk)


@login_required
@require_POST
def listing_submit(request, pk: int):
    listing = selectors.listing_for_owner(user=request.user, listing_id=pk)
    return _submit(request, listing)


@login_required
@require_POST
def listing_unpublish(request, pk: int):
    listing = selectors.listing_for_owner(user=request.user, listing_id=pk)
    try:
        services.listing_unpublish(listing=listing, by=request.user, request=request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            "Unpublished: the listing left the catalogue. Licenses already sold are not affected.",
        )
    return redirect("listing_detail", pk=listing.pk)


# --- Staff review --------------------------------------------------------------------------


@staff_required
def staff_listing_review_queue(request):
    listings = list(selectors.listings_review_queue())
    current_text = services.consent_text_current()
    entries = []
    for listing in listings:
        recordings = [item.recording for item in listing.items.all()]
        rows = []
        for recording in recordings:
            facts = selectors.recording_facts(recording)
            signature = recording.signature if facts.has_signature else None
            rows.append(
                {
                    "recording": recording,
                    "facts": facts,
                    "state": selectors.recording_state(recording, facts),
                    "consent": _consent_view(facts.consent),
                    "consent_text": facts.consent.consent_text if facts.consent else None,
                    "signature": _signature_view(signature),
                    "arc": _arc_view(signature, recording.duration_seconds),
                }
            )
        entries.append(
            {
                "listing": listing,
                "terms": _listing_terms_view(listing),
                "rows": rows,
                "problems": services.listing_problems(listing, recordings),
                "reject_form": RejectForm(prefix=f"l{listing.pk}"),
            }
        )
    changed = [
        {
            "listing": listing,
            "changes": selectors.listing_changes_since_review(listing),
            "form": TakeOffSaleForm(prefix=f"u{listing.pk}"),
        }
        for listing in selectors.listings_changed_since_review()
    ]
    return render(
        request,
        "marketplace/staff/review_queue.html",
        {"entries": entries, "changed": changed, "current_text": current_text},
    )


@staff_required
@require_POST
def staff_listing_approve(request, pk: int):
    listing = selectors.listing_for_staff(pk)
    try:
        services.listing_review(listing=listing, by=request.user, approve=True, request=request)
    except ApplicationError as exc:
        problems = (exc.details or {}).get("problems")
        messages.error(
            request,
            f"“{listing.title}” was not approved: "
            + (" ".join(problems) if problems else exc.message),
        )
    else:
        messages.success(request, f"“{listing.title}” is published and in the catalogue.")
    return redirect(reverse("staff_listing_review") + f"#listing-{listing.pk}")


@staff_required
@require_POST
def staff_listing_reject(request, pk: int):
    listing = selectors.listing_for_staff(pk)
    form = RejectForm(request.POST, prefix=f"l{listing.pk}")
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        services.listing_review(
            listing=listing, by=request.user, approve=False, reason=reason, request=request
        )
    except ApplicationError as exc:
        messages.error(request, f"“{listing.title}” was not rejected: {exc.message}")
        return redirect(reverse("staff_listing_review") + f"#listing-{listing.pk}")
    messages.success(
        request, f"Changes requested on “{listing.title}”. The performer sees your reason."
    )
    return redirect("staff_listing_review")


@staff_required
@require_POST
def staff_listing_changes_ok(request, pk: int):
    listing = selectors.listing_for_staff(pk)
    try:
        services.listing_changes_acknowledge(listing=listing, by=request.user, request=request)
    except ApplicationError as exc:
        messages.error(request, f"“{listing.title}”: {exc.message}")
    else:
        messages.success(request, f"The edits to “{listing.title}” stand.")
    return redirect(reverse("staff_listing_review") + "#changed")


@staff_required
@require_POST
def staff_listing_take_off_sale(request, pk: int):
    listing = selectors.listing_for_staff(pk)
    form = TakeOffSaleForm(request.POST, prefix=f"u{listing.pk}")
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        services.listing_unpublish(listing=listing, by=request.user, reason=reason, request=request)
    except ApplicationError as exc:
        messages.error(request, f"“{listing.title}” was not taken off sale: {exc.message}")
        return redirect(reverse("staff_listing_review") + f"#changed-{listing.pk}")
    messages.success(
        request,
        f"“{listing.title}” left the catalogue. The performer sees your reason; licenses "
        "already sold are not affected.",
    )
    return redirect(reverse("staff_listing_review") + "#changed")
