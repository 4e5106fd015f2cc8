"""Issue 3's "Done when", end to end: a performer uploads a single take and a
100-file batch, describes them, consents, lists them and gets them approved;
a buyer finds them by emotion and intensity, sees the arc and hears a
preview — in the browser and through the API.

The browser test follows the pages themselves, as tests/test_licensing_journey.py
does: every request is a link or a form found in the page before it, and a
form sends what a browser would (checked boxes only, the selected options,
the hidden fields, nothing inside a <template>), with the CSRF token the page
carries. People sign in through the sign-in form; staff add their TOTP code.
The API test does the same with a performer's API key (the batch is 100
uploads, one request each: the API has no import endpoint), staff review
from a session past its second factor, and a buyer organization's key.

Previews are built by the real Celery task, run eagerly after commit as in
the other page tests (tests/test_previews.py covers a real worker)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from html import unescape
from html.parser import HTMLParser
from urllib.parse import urlencode, urlsplit

import pytest
from allauth.mfa.models import Authenticator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.services import api_key_create
from marketplace.models import (
    CatalogueEntry,
    ConsentRecord,
    EmotionalSignature,
    ImportBatch,
    ImportRow,
    Listing,
    Recording,
)
from marketplace.services import consent_text_current
from tests.factories import PASSWORD, make_performer
from tests.factories_marketplace import wav_bytes
from tests.listings_support import TOTP_SECRET, make_staff
from tests.test_imports import manifest_bytes, row, tiny_wav
from tests.totp import totp_code

pytestmark = pytest.mark.django_db


# --- A browser's view of a page: links, and forms as a browser submits them -----------------


@dataclass
class Control:
    """One form control. ``kind`` is the input type, or select / textarea."""

    name: str
    kind: str
    value: str = ""
    checked: bool = False
    disabled: bool = False
    multiple: bool = False
    options: list[str] = field(default_factory=list)
    selected: list[str] = field(default_factory=list)
    file: object = None


@dataclass
class Form:
    action: str
    method: str
    enctype: str
    id: str = ""
    controls: list[Control] = field(default_factory=list)
    buttons: list[tuple[str, str, str]] = field(default_factory=list)  # (text, name, value)

    def named(self, name: str) -> list[Control]:
        found = [c for c in self.controls if c.name == name and not c.disabled]
        assert found, f"the form {self.action} has no field “{name}”"
        return found

    def fill(self, **values) -> Form:
        """Type, tick, choose and attach as a person would: a checkbox or radio
        value, or a select option, must be one the page offers. A list fills
        same-named fields in order (rows of a table), or ticks several boxes."""
        for name, value in values.items():
            controls = self.named(name)
            kind = controls[0].kind
            if kind in ("checkbox", "radio"):
                if isinstance(value, bool):  # a single box, ticked or not
                    wanted = {controls[0].value} if value else set()
                else:
                    wanted = {value} if isinstance(value, str) else set(value)
                offered = {c.value for c in controls}
                assert wanted <= offered, f"{name}: {wanted - offered} not offered ({offered})"
                for control in controls:
                    control.checked = control.value in wanted
            elif kind == "file":
                assert not isinstance(value, list) or controls[0].multiple, f"{name}: one file"
                controls[0].file = value
            elif kind == "select" and controls[0].multiple:
                wanted = [value] if isinstance(value, str) else list(value)
                assert set(wanted) <= set(controls[0].options), (name, wanted)
                controls[0].selected = wanted
            else:
                items = value if isinstance(value, list) else [value]
                assert len(items) <= len(controls), f"{name}: only {len(controls)} fields"
                for control, item in zip(controls, items, strict=False):
                    if control.kind == "select":
                        assert item in control.options, f"{name}: no option {item!r}"
                        control.selected = [item]
                    else:
                        control.value = str(item)
        return self

    def data(self, button: str) -> list[tuple[str, object]]:
        """The name/value pairs the browser sends, pressing ``button``."""
        pairs: list[tuple[str, object]] = []
        for c in self.controls:
            if c.disabled:
                continue
            if c.kind in ("checkbox", "radio"):
                if c.checked:
                    pairs.append((c.name, c.value))
            elif c.kind == "select":
                pairs += [(c.name, v) for v in c.selected]
            elif c.kind == "file":
                files = c.file if isinstance(c.file, list) else [c.file] if c.file else []
                pairs += [(c.name, f) for f in files]
            else:
                pairs.append((c.name, c.value))
        for text, name, value in self.buttons:
            if text.startswith(button):
                if name:
                    pairs.append((name, value))
                return pairs
        raise AssertionError(f"no button “{button}” in the form {self.action}")


class Page(HTMLParser):
    """The links and forms of one HTML page. Form controls outside their form
    (``form="…"``) belong to it; nothing inside a <template> is a control."""

    def __init__(self, html: str, url: str):
        super().__init__(convert_charrefs=True)
        self.html, self.url = html, url
        self.links: list[tuple[str, str]] = []  # (text, href)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._link: list | None = None
        self._select: Control | None = None
        self._option: list | None = None  # [value or None, text, selected]
        self._textarea: Control | None = None
        self._button: list | None = None
        self._template = 0
        self._by_form_id: list[tuple[str, object]] = []
        self.feed(html)
        self.close()
        forms = {f.id: f for f in self.forms if f.id}
        for form_id, item in self._by_form_id:
            target = forms[form_id]
            if isinstance(item, Control):
                target.controls.append(item)
            else:
                target.buttons.append(item)

    def _owner(self, attrs: dict) -> Form | str | None:
        return attrs.get("form") or self._form

    def _add(self, attrs: dict, item) -> None:
        owner = self._owner(attrs)
        if isinstance(owner, str):
            self._by_form_id.append((owner, item))
        elif owner is not None:
            (owner.controls if isinstance(item, Control) else owner.buttons).append(item)

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "template":
            self._template += 1
        if self._template:
            return
        disabled = "disabled" in attrs
        if tag == "a" and attrs.get("href"):
            self._link = [attrs["href"], ""]
        elif tag == "form":
            self._form = Form(
                action=attrs.get("action") or urlsplit(self.url).path,
                method=(attrs.get("method") or "get").lower(),
                enctype=attrs.get("enctype") or "application/x-www-form-urlencoded",
                id=attrs.get("id", ""),
            )
            self.forms.append(self._form)
        elif tag == "input":
            kind = (attrs.get("type") or "text").lower()
            if kind in ("submit", "image"):
                self._add(attrs, (attrs.get("value", ""), attrs.get("name", ""), ""))
            elif attrs.get("name") and kind not in ("button", "reset"):
                default = "on" if kind in ("checkbox", "radio") else ""
                self._add(
                    attrs,
                    Control(
                        name=attrs["name"],
                        kind=kind,
                        value=attrs.get("value", default),
                        checked="checked" in attrs,
                        disabled=disabled,
                        multiple="multiple" in attrs,
                    ),
                )
        elif tag == "select" and attrs.get("name"):
            self._select = Control(
                name=attrs["name"], kind="select", multiple="multiple" in attrs, disabled=disabled
            )
            self._add(attrs, self._select)
        elif tag == "option" and self._select is not None:
            self._close_option()
            self._option = [attrs.get("value"), "", "selected" in attrs]
        elif tag == "textarea" and attrs.get("name"):
            self._textarea = Control(name=attrs["name"], kind="textarea", disabled=disabled)
            self._add(attrs, self._textarea)
        elif tag == "button" and (attrs.get("type") or "submit").lower() == "submit":
            self._button = ["", attrs.get("name", ""), attrs.get("value", ""), attrs]

    def _close_option(self):
        if self._option is not None and self._select is not None:
            value, text, selected = self._option
            value = " ".join(text.split()) if value is None else value
            self._select.options.append(value)
            if selected:
                self._select.selected.append(value)
        self._option = None

    def handle_data(self, data):
        if self._template:
            return
        if self._link is not None:
            self._link[1] += data
        if self._button is not None:
            self._button[0] += data
        if self._option is not None:
            self._option[1] += data
        if self._textarea is not None:
            self._textarea.value += data

    def handle_endtag(self, tag):
        if tag == "template":
            self._template -= 1
            return
        if self._template:
            return
        if tag == "a" and self._link is not None:
            self.links.append((" ".join(self._link[1].split()), self._link[0]))
            self._link = None
        elif tag == "button" and self._button is not None:
            text, name, value, attrs = self._button
            self._add(attrs, (" ".join(text.split()), name, value))
            self._button = None
        elif tag == "option":
            self._close_option()
        elif tag == "select" and self._select is not None:
            self._close_option()
            if not self._select.multiple and not self._select.selected and self._select.options:
                self._select.selected = [self._select.options[0]]
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self._textarea.value = self._textarea.value.removeprefix("\n")
            self._textarea = None
        elif tag == "form":
            self._form = None

    @property
    def text(self) -> str:
        """The page's words, without markup, spaces collapsed."""
        return " ".join(unescape(re.sub(r"<[^>]+>", " ", self.html)).split())

    def link(self, text: str) -> str:
        hrefs = [href for label, href in self.links if label.startswith(text)]
        assert hrefs, f"no link “{text}” on {self.url}"
        return hrefs[0]

    def form(self, button: str) -> Form:
        for form in self.forms:
            if any(text.startswith(button) for text, _n, _v in form.buttons):
                return form
        raise AssertionError(f"no form with “{button}” on {self.url}")

    def after(self, marker: str) -> Page:
        """The part of the page from ``marker`` on, as a person reads down
        from a heading to the button beneath it."""
        assert marker in self.html, f"“{marker}” is not on {self.url}"
        return Page(self.html[self.html.index(marker) :], self.url)


class Browser:
    """The test client, as a person clicks through the site; it checks CSRF
    like a real deployment does."""

    def __init__(self):
        self.client = Client(enforce_csrf_checks=True)
        self.page: Page | None = None

    def open(self, url: str, status: int = 200) -> Page:
        response = self.client.get(url, follow=True)
        assert response.status_code == status, (url, response.status_code)
        self.page = Page(response.content.decode(), response.request["PATH_INFO"])
        return self.page

    def click(self, text: str) -> Page:
        return self.open(self.page.link(text))

    def submit(self, button: str, form: Form | None = None, **values):
        form = (form or self.page.form(button)).fill(**values)
        pairs = form.data(button)
        data: dict[str, list] = {}
        for name, value in pairs:
            data.setdefault(name, []).append(value)
        if form.method == "get":
            return self.client.get(form.action, data)
        if form.enctype == "multipart/form-data":
            return self.client.post(form.action, data)
        assert not any(c.kind == "file" and c.file for c in form.controls), (
            f"{form.action}: a browser sends no file without multipart/form-data"
        )
        return self.client.post(
            form.action,
            urlencode(pairs, doseq=True),
            content_type="application/x-www-form-urlencoded",
        )

    def submit_and_follow(self, button: str, form: Form | None = None, **values) -> Page:
        response = self.submit(button, form, **values)
        assert response.status_code in (200, 302), response.status_code
        if response.status_code == 200:  # a GET form's results
            self.page = Page(response.content.decode(), form.action if form else self.page.url)
            return self.page
        assert response.status_code == 302, response.content.decode()[:2000]
        return self.open(response["Location"])

    def sign_in(self, email: str, *, totp_secret: str | None = None) -> Page:
        self.open("/")
        self.click("Sign in")
        response = self.submit("Sign In", login=email, password=PASSWORD)
        assert response.status_code == 302, Page(response.content.decode(), "").text[:2000]
        page = self.open(response["Location"])
        if totp_secret is not None:
            assert "/2fa/authenticate/" in page.url  # the password alone is not enough
            page = self.submit_and_follow("Sign In", code=totp_code(totp_secret))
        return page


# --- The people ----------------------------------------------------------------------------


@pytest.fixture
def mara(db):
    return make_performer(
        email="mara@example.com",
        stage_name="Mara V.",
        legal_name="Mara Okafor-Vance",
        contact_email="mara@agency.example",
    )


@pytest.fixture
def reviewer(db):
    staff = make_staff()
    Authenticator.objects.create(
        user=staff, type=Authenticator.Type.TOTP, data={"secret": TOTP_SECRET}
    )
    return staff


def _stored(fieldfile) -> bytes:
    with fieldfile.storage.open(fieldfile.name, "rb") as handle:
        return handle.read()


# --- In the browser ----------------------------------------------------------------------------

# The session's 100 takes: four emotions in turn, intensity rising every fourth.
SESSION_EMOTIONS = ("joy", "sadness", "fear", "relief")
PACK = ("take-002.wav", "take-006.wav", "take-010.wav")  # fear at intensity 1, 2 and 3


def session_manifest() -> tuple[list[dict], dict[str, bytes]]:
    rows, files = [], {}
    for i in range(100):
        name = f"take-{i:03}.wav"
        rows.append(
            row(
                name,
                primary_emotion=SESSION_EMOTIONS[i % 4],
                intensity=str((i // 4) % 5 + 1),
                authenticity="genuine",
                session_name="Night shift",
            )
        )
        files[name] = tiny_wav(i, seconds=0.4)
    return rows, files


def test_a_performer_lists_a_take_and_a_session_and_a_buyer_finds_and_hears_them(
    mara, reviewer, member, django_capture_on_commit_callbacks
):
    performer = Browser()
    dashboard = performer.sign_in(mara.user.email)
    assert "Performer dashboard" in dashboard.text

    # --- One take: upload, provenance, consent, signature with an arc.
    original = wav_bytes(3.0, rate=22_050, freq=330.0)
    performer.click("Upload a take")
    with django_capture_on_commit_callbacks(execute=True):
        page = performer.submit_and_follow(
            "Upload recording",
            file=SimpleUploadedFile("voicemail.wav", original, "audio/wav"),
            title="Voicemail to my sister",
            language="en",
            recording_date="2026-09-30",
            session_name="Grief improv, day 2",
        )
    take = Recording.objects.get(performer=mara)
    assert take.sha256 == hashlib.sha256(original).hexdigest()
    assert _stored(take.file) == original
    assert f"“Voicemail to my sister” is uploaded as {take.uid}" in page.text
    assert take.preview_status == Recording.PreviewStatus.READY  # built after commit

    performer.click("Provenance")
    page = performer.submit_and_follow(
        "Save provenance", studio="Backroom, Leeds", annotator="Mara herself"
    )
    assert "Provenance saved." in page.text
    take.provenance.refresh_from_db()
    assert take.provenance.missing_fields() == []
    assert take.provenance.recording_date == date(2026, 9, 30)  # given with the upload
    assert (take.provenance.performer_name, take.provenance.studio) == (
        "Mara Okafor-Vance",
        "Backroom, Leeds",
    )

    consent_page = performer.click("Record consent")
    text = consent_text_current()
    assert f"Version {text.version}" in consent_page.text
    assert " ".join(text.body.split()) in consent_page.text  # the words being signed
    page = performer.submit_and_follow(
        "Sign consent",
        allowed_uses=["model_training", "evaluation"],
        signature_name="Mara Okafor-Vance",
    )
    assert f"Consent recorded under consent text {text.version}" in page.text
    consent = ConsentRecord.objects.get(recording=take)
    assert consent.allowed_uses == ["model_training", "evaluation"]
    assert (consent.consent_text, consent.signature_name) == (text, "Mara Okafor-Vance")

    performer.click("Describe it")
    page = performer.submit_and_follow(
        "Save signature",
        primary_emotion="anger",
        intensity="4",
        valence="-0.6",
        arousal="0.85",
        authenticity="genuine",
        description="Starts clipped, breaks on her name.",
        tags="voicemail, sister",
        vocal_events=["tremor"],
        arc_start=["0", "1.2"],
        arc_end=["1.2", "3"],
        arc_emotion=["frustration", "grief"],
        arc_intensity=["3", "5"],
        arc_note=["", "voice cracks"],
    )
    assert "Emotional signature saved." in page.text
    signature = EmotionalSignature.objects.get(recording=take)
    assert (signature.primary_emotion, signature.intensity) == ("anger", 4)
    assert [(s["start"], s["end"], s["emotion"], s["intensity"]) for s in signature.arc] == [
        (0, 1.2, "frustration", 3),
        (1.2, 3, "grief", 5),
    ]
    assert "Frustration from 0.0 to 1.2 seconds, Grief from 1.2 to 3.0 seconds" in page.html

    # --- List it and send it to review.
    listing_form = performer.click("Create a listing")
    assert listing_form.form("Save and submit for review").named("title")[0].value == (
        "Voicemail to my sister"
    )
    page = performer.submit_and_follow(
        "Save and submit for review",
        description="A voicemail that falls apart.",
        permitted_uses=["model_training", "evaluation"],
        price="250.00",
    )
    assert "Sent to review." in page.text
    single = Listing.objects.get(title="Voicemail to my sister")
    assert single.status == Listing.Status.IN_REVIEW
    assert [i.recording_id for i in single.items.all()] == [take.pk]
    assert single.price_minor == 25_000 and single.duration_days == 730

    # --- A session of 100 takes, with a CSV manifest, signed once.
    performer.click("Performer dashboard")
    import_page = performer.click("Import a session")
    assert text.version in import_page.text
    rows, files = session_manifest()
    page = performer.submit_and_follow(
        "Sign and check the manifest",
        manifest=SimpleUploadedFile("night-shift.csv", manifest_bytes(rows), "text/csv"),
        signature_name="Mara Okafor-Vance",
    )
    batch = ImportBatch.objects.get()
    assert batch.rows.count() == 100
    with django_capture_on_commit_callbacks(execute=True):
        page = performer.submit_and_follow(
            "Upload and import",
            files=[SimpleUploadedFile(n, d, "audio/wav") for n, d in files.items()],
        )
    assert "100 files: 100 imported" in page.text
    assert list(batch.rows.values_list("status", flat=True)) == [ImportRow.Status.IMPORTED] * 100
    imported = Recording.objects.filter(performer=mara).exclude(pk=take.pk)
    assert imported.count() == 100
    consents = ConsentRecord.objects.filter(recording__in=imported)
    assert consents.count() == 100
    assert set(consents.values_list("signature_name", "consent_text__version")) == {
        ("Mara Okafor-Vance", text.version)
    }
    assert EmotionalSignature.objects.filter(recording__in=imported).count() == 100
    assert not imported.exclude(preview_status=Recording.PreviewStatus.READY).exists()
    # Each result row links to its recording.
    links = {name: page.after(f'data-file-name="{name}"').link("REC-") for name in PACK}
    pack_uids = [href.strip("/").rsplit("/", 1)[-1] for href in links.values()]

    # Each of the pack's takes is described and consented; one gets an arc.
    for href in links.values():
        recording_page = performer.open(href)
        assert "Ready to list" in recording_page.text, recording_page.text[:600]
        assert "Given" in recording_page.text and "Described" in recording_page.text
    performer.open(links["take-010.wav"])
    signature_form = performer.click("Edit signature")
    prefilled = signature_form.form("Save signature")
    assert prefilled.named("primary_emotion")[0].selected == ["fear"]
    page = performer.submit_and_follow(
        "Save signature",
        arc_start=["0", "0.2"],
        arc_end=["0.2", "0.4"],
        arc_emotion=["anxiety", "fear"],
        arc_intensity=["2", "3"],
    )
    assert "Emotional signature saved." in page.text
    fear_3 = Recording.objects.get(uid=pack_uids[PACK.index("take-010.wav")])
    fear_3.signature.refresh_from_db()
    assert (fear_3.signature.primary_emotion, fear_3.signature.intensity) == ("fear", 3)
    assert [s["emotion"] for s in fear_3.signature.arc] == ["anxiety", "fear"]

    # A pack of three of them.
    performer.click("Performer dashboard")
    performer.click("New listing")
    page = performer.submit_and_follow(
        "Save and submit for review",
        recordings=pack_uids,
        title="Night shift: fear, rising",
        permitted_uses=["model_training"],
        price="900.00",
    )
    assert "Sent to review." in page.text
    pack = Listing.objects.get(title="Night shift: fear, rising")
    assert pack.status == Listing.Status.IN_REVIEW
    assert {i.recording.uid for i in pack.items.all()} == set(pack_uids)

    # --- Staff approve both from the review queue, after their second factor.
    staff = Browser()
    staff.sign_in(reviewer.email, totp_secret=TOTP_SECRET)
    staff.click("Staff dashboard")
    queue = staff.click("Listing review queue")
    assert "Arc: Frustration 0.0–1.2 s, Grief 1.2–3.0 s" in queue.html
    assert f"Text {text.version}" in queue.text and "Mara Okafor-Vance" in queue.text
    for listing in (single, pack):
        section = queue.after(f">{listing.title}</h2>")
        staff.submit_and_follow("Approve and publish", form=section.form("Approve and publish"))
        assert f"“{listing.title}” is published and in the catalogue." in staff.page.text
        listing.refresh_from_db()
        assert (listing.status, listing.reviewed_by) == (Listing.Status.PUBLISHED, reviewer)
        queue = staff.page
    assert CatalogueEntry.objects.filter(listing=pack).count() == 3

    # --- A buyer finds the take by emotion and intensity, sees its arc, hears it.
    buyer = Browser()
    buyer.sign_in(member.email)
    buyer.click("Catalogue")
    found = buyer.submit_and_follow(
        "Apply filters", emotion=["anger"], intensity_min="4", intensity_max="5"
    )
    assert "1 listing" in found.text and "Night shift" not in found.text
    assert found.link("Voicemail to my sister")
    # The results keep the filters; from intensity 5 on, the take (4) drops out.
    assert found.form("Apply filters").named("intensity_min")[0].selected == ["4"]
    too_strong = buyer.submit_and_follow("Apply filters", intensity_min="5")
    assert "No listings" in too_strong.text and "Voicemail to my sister" not in too_strong.text

    buyer.page = found
    detail = buyer.click("Voicemail to my sister")
    assert "Emotional arc" in detail.text
    assert "0 s to 1.2 s: Frustration, intensity 3 of 5; 1.2 s to 3 s: Grief, intensity 5 of 5" in (
        detail.text
    )
    assert "voice cracks" in detail.text
    preview_url = detail.link("Open the preview")
    assert take.uid in preview_url
    response = buyer.client.get(preview_url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("audio/")
    heard = b"".join(response.streaming_content)
    take.refresh_from_db()
    assert heard == _stored(take.preview)
    assert heard and hashlib.sha256(heard).hexdigest() != take.sha256
    assert len(heard) < len(original)

    # The session's pack: fear at intensity 3 to 5 finds it (its third take);
    # at 4 to 5 it does not.
    buyer.click("Catalogue")
    found = buyer.submit_and_follow(
        "Apply filters", emotion=["fear"], intensity_min="3", intensity_max="5"
    )
    assert "Night shift: fear, rising" in found.text
    assert "Pack of 3 recordings" in found.text and "1 match your filters" in found.text
    assert "Voicemail to my sister" not in found.text
    none = buyer.submit_and_follow("Apply filters", intensity_min="4")
    assert "No listings" in none.text and "Night shift: fear, rising" not in none.text
    buyer.page = found
    detail = buyer.click("Night shift: fear, rising")
    assert "0 s to 0.2 s: Anxiety, intensity 2 of 5; 0.2 s to 0.4 s: Fear, intensity 3 of 5" in (
        detail.text
    )
    previews = [href for label, href in detail.links if label == "Open the preview"]
    assert len(previews) == 3
    (third_url,) = [url for url in previews if fear_3.uid in url]
    third = buyer.client.get(third_url)
    fear_3.refresh_from_db()
    assert b"".join(third.streaming_content) == _stored(fear_3.preview) != _stored(fear_3.file)


# --- Through the API -----------------------------------------------------------------------------


def bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_the_same_journey_through_the_api(
    mara, reviewer, owner, organization, django_capture_on_commit_callbacks
):
    key = api_key_create(name="studio laptop", created_by=mara.user, performer=mara).secret
    machine = Client()
    original = wav_bytes(4.0, rate=22_050, freq=262.0)

    # Upload a single take.
    with django_capture_on_commit_callbacks(execute=True):
        response = machine.post(
            "/api/v1/recordings/",
            {
                "file": SimpleUploadedFile("bad-news.wav", original, "audio/wav"),
                "title": "Bad news, take 1",
                "language": "en",
            },
            **bearer(key),
        )
    assert response.status_code == 201, response.content
    body = response.json()
    uid, recording_url = body["uid"], body["links"]["self"]
    assert body["sha256"] == hashlib.sha256(original).hexdigest()
    assert body["duration_seconds"] == pytest.approx(4.0)
    assert machine.get(recording_url, **bearer(key)).json()["preview_status"] == "ready"

    # Provenance, consent (against the text in force), signature with an arc.
    response = machine.put(
        f"{recording_url}provenance/",
        {
            "performer_name": "Mara Okafor-Vance",
            "performer_contact": "mara@agency.example",
            "recording_date": "2026-10-02",
            "studio": "Room 2",
        },
        content_type="application/json",
        **bearer(key),
    )
    assert response.status_code == 200, response.content
    assert response.json()["missing_fields"] == []

    text = machine.get("/api/v1/consent-text/").json()
    response = machine.post(
        f"{recording_url}consent/",
        {
            "allowed_uses": ["model_training", "fine_tuning"],
            "sensitive_content": ["grief"],
            "sensitive_content_licensable": True,
            "signature_name": "Mara Okafor-Vance",
            "consent_text_version": text["version"],
        },
        content_type="application/json",
        **bearer(key),
    )
    assert response.status_code == 201, response.content
    consent = ConsentRecord.objects.get(recording__uid=uid)
    assert consent.consent_text.version == text["version"]
    assert consent.allowed_uses == ["model_training", "fine_tuning"]

    arc = [
        {"start": 0, "end": 1.5, "emotion": "surprise", "intensity": 3, "note": "the call"},
        {"start": 1.5, "end": 4, "emotion": "grief", "intensity": 5, "note": ""},
    ]
    response = machine.put(
        f"{recording_url}signature/",
        {
            "primary_emotion": "grief",
            "intensity": 5,
            "valence": -0.9,
            "arousal": 0.7,
            "authenticity": "suppressed",
            "arc": arc,
            "vocal_events": ["sob"],
        },
        content_type="application/json",
        **bearer(key),
    )
    assert response.status_code == 200, response.content

    # A batch: the session's 100 takes, one request each as a script sends them.
    rows, files = session_manifest()
    batch_uids = {}
    for manifest_row, (name, data) in zip(rows, files.items(), strict=True):
        response = machine.post(
            "/api/v1/recordings/",
            {"file": SimpleUploadedFile(name, data, "audio/wav"), "title": manifest_row["title"]},
            **bearer(key),
        )
        assert response.status_code == 201, (name, response.content)
        batch_uids[name] = response.json()["uid"]
    assert Recording.objects.filter(performer=mara).count() == 101
    pack_uids = [batch_uids[name] for name in PACK]
    for index, pack_uid in enumerate(pack_uids, start=1):
        url = f"/api/v1/recordings/{pack_uid}/"
        for path, payload, expected in (
            (
                "provenance/",
                {
                    "performer_name": "Mara Okafor-Vance",
                    "performer_contact": "mara@agency.example",
                    "recording_date": "2026-10-14",
                },
                200,
            ),
            (
                "consent/",
                {
                    "allowed_uses": ["model_training"],
                    "sensitive_content": [],
                    "sensitive_content_licensable": False,
                    "signature_name": "Mara Okafor-Vance",
                    "consent_text_version": text["version"],
                },
                201,
            ),
            (
                "signature/",
                {
                    "primary_emotion": "fear",
                    "intensity": index,
                    "valence": -0.6,
                    "arousal": 0.6,
                    "authenticity": "genuine",
                },
                200,
            ),
        ):
            method = machine.post if path == "consent/" else machine.put
            response = method(url + path, payload, content_type="application/json", **bearer(key))
            assert response.status_code == expected, (pack_uid, path, response.content)

    # List both and submit them.
    listing_ids = []
    for payload in (
        {
            "recordings": [uid],
            "title": "Bad news, take 1",
            "permitted_uses": ["model_training", "fine_tuning"],
            "price_minor": 30_000,
        },
        {
            "recordings": pack_uids,
            "title": "Night shift: fear, rising",
            "permitted_uses": ["model_training"],
            "price_minor": 90_000,
        },
    ):
        response = machine.post(
            "/api/v1/listings/", payload, content_type="application/json", **bearer(key)
        )
        assert response.status_code == 201, response.content
        assert response.json()["status"] == "draft" and response.json()["problems"] == []
        listing_id = response.json()["id"]
        response = machine.post(f"/api/v1/listings/{listing_id}/submit/", **bearer(key))
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "in_review"
        listing_ids.append(listing_id)

    # A buyer's search does not see them yet.
    buyer_key = api_key_create(name="pipeline", created_by=owner, organization=organization)
    search = {"emotion": "grief", "intensity_min": 4, "intensity_max": 5}
    assert (
        machine.get("/api/v1/catalogue/", search, **bearer(buyer_key.secret)).json()["count"] == 0
    )

    # Staff review through the API, from a browser session past its second factor.
    staff = Browser()
    staff.sign_in(reviewer.email, totp_secret=TOTP_SECRET)
    for listing_id in listing_ids:
        response = staff.client.post(
            f"/api/v1/listings/{listing_id}/review/",
            {"decision": "approve"},
            content_type="application/json",
            HTTP_X_CSRFTOKEN=staff.client.cookies["csrftoken"].value,
        )
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "published"
    single, pack = (Listing.objects.get(pk=pk) for pk in listing_ids)
    assert single.reviewed_by == pack.reviewed_by == reviewer

    # Found by emotion and intensity; the arc and the preview come with it.
    body = machine.get("/api/v1/catalogue/", search, **bearer(buyer_key.secret)).json()
    assert [r["id"] for r in body["results"]] == [single.pk]
    assert body["results"][0]["matched_recordings"] == [uid]
    too_strong = {"emotion": "grief", "intensity_min": 1, "intensity_max": 4}
    assert machine.get("/api/v1/catalogue/", too_strong).json()["count"] == 0

    detail = machine.get(f"/api/v1/catalogue/{single.pk}/", **bearer(buyer_key.secret)).json()
    (recording,) = detail["recordings"]
    assert recording["uid"] == uid
    assert recording["signature"]["arc"] == arc
    assert detail["license_terms"]["permitted_uses"] == ["model_training", "fine_tuning"]
    response = machine.get(recording["preview_url"], **bearer(buyer_key.secret))
    assert response.status_code == 200
    heard = b"".join(response.streaming_content)
    stored = Recording.objects.get(uid=uid)
    assert heard == _stored(stored.preview)
    assert hashlib.sha256(heard).hexdigest() != stored.sha256 and len(heard) < len(original)

    body = machine.get(
        "/api/v1/catalogue/", {"emotion": "fear", "intensity_min": 3, "intensity_max": 5}
    ).json()
    assert [r["id"] for r in body["results"]] == [pack.pk]
    assert body["results"][0]["matched_recordings"] == [batch_uids["take-010.wav"]]
    body = machine.get("/api/v1/catalogue/", {"emotion": "fear", "intensity_min": 4}).json()
    assert body["count"] == 0
    detail = machine.get(f"/api/v1/catalogue/{pack.pk}/").json()
    assert [r["uid"] for r in detail["recordings"]] == pack_uids
    assert [r["signature"]["intensity"] for r in detail["recordings"]] == [1, 2, 3]
