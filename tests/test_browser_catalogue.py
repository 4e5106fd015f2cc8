"""The catalogue's pages in a real browser: Debian's Chromium, driven by
Playwright, against the site served by pytest-django's live server.

What only a browser can check: the upload form's script (the file sent with
XMLHttpRequest, a progress bar, the server's refusal shown on the form), the
session import's script (files matched to manifest rows by name and sent
one by one, each row updated in place), and a buyer's search ending in a
preview that Chromium actually decodes and plays.

Every test fails on any script error the page raises."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from marketplace import services
from marketplace.models import ImportRow, Recording
from tests.factories import PASSWORD, make_organization, make_performer, make_user
from tests.factories_marketplace import make_published_listing, make_sellable_recording, wav_bytes
from tests.listings_support import make_staff
from tests.test_imports import manifest_bytes, row, tiny_wav

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests may run as root
    "--disable-gpu",
    "--disable-background-networking",  # this machine has no network but loopback
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Kept in sessionStorage so that it survives the page's navigation once the
# upload is done: every state the upload progress panel went through.
PROGRESS_RECORDER = """
document.addEventListener("DOMContentLoaded", () => {
  const panel = document.querySelector("[data-upload-progress]");
  if (!panel) return;
  const bar = panel.querySelector("progress");
  new MutationObserver(() => {
    const seen = JSON.parse(sessionStorage.getItem("upload-progress") || "[]");
    seen.push({hidden: panel.hidden, value: Number(bar.getAttribute("value") || 0)});
    sessionStorage.setItem("upload-progress", JSON.stringify(seen));
  }).observe(panel, {attributes: true, subtree: true});
});
"""


@pytest.fixture(scope="module")
def chromium(django_db_setup):
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"No Chromium at {CHROMIUM}. Install Debian's (apt-get install chromium) or set "
            "CHROMIUM=/path/to/chromium; 'make test' installs it when it can."
        )
    # Playwright's synchronous API keeps an event loop in this thread for as
    # long as the browser is open, and Django takes that for async code. The
    # tests' own database calls are synchronous, so Django is told so, for
    # this module only.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()


@pytest.fixture
def page(chromium, live_server):
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def on_console(message):
        # A refused request is logged by Chromium itself ("Failed to load
        # resource: … 415"); the tests look at what the page does with it.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    page.on("console", on_console)
    yield page
    context.close()
    assert errors == [], f"the page raised script errors: {errors}"


def sign_in(page: Page, email: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_load_state()
    assert "/accounts/login/" not in page.url, page.inner_text("body")[:500]


def test_upload_shows_progress_then_opens_the_new_recording(page, tmp_path):
    performer = make_performer(email="maya@example.com", legal_name="Maya Okafor")
    take = tmp_path / "corridor.wav"
    take.write_bytes(wav_bytes(3.0, freq=330.0))
    page.add_init_script(PROGRESS_RECORDER)
    sign_in(page, "maya@example.com")

    page.get_by_role("link", name="Upload a take").first.click()
    page.set_input_files("input[name=file]", str(take))
    page.fill("input[name=title]", "Hospital corridor")
    page.fill("input[name=language]", "en")
    page.fill("input[name=recording_date]", "2026-11-20")
    page.click("[data-upload-submit]")
    page.wait_for_url("**/recordings/REC-*/")

    recording = Recording.objects.get(performer=performer)
    assert page.url.endswith(f"/recordings/{recording.uid}/")
    assert recording.title == "Hospital corridor"
    assert recording.original_filename == "corridor.wav"
    assert page.get_by_role("heading", name="Hospital corridor").is_visible()
    # The script sent the form: the progress panel was shown and reached 100%.
    seen = json.loads(page.evaluate("sessionStorage.getItem('upload-progress') || '[]'"))
    assert any(not state["hidden"] for state in seen), seen
    assert max(state["value"] for state in seen) == 100, seen


def test_a_disguised_file_is_refused_on_the_form_and_nothing_is_stored(page, tmp_path):
    performer = make_performer(email="maya@example.com", legal_name="Maya Okafor")
    fake = tmp_path / "take.wav"
    fake.write_bytes(b"These are not audio bytes, whatever the name says.\n" * 200)
    sign_in(page, "maya@example.com")
    page.goto("/recordings/upload/")

    page.set_input_files("input[name=file]", str(fake))
    page.fill("input[name=title]", "Not a take")
    page.click("[data-upload-submit]")

    summary = page.locator("[data-upload-summary]")
    summary.wait_for(state="visible")
    assert "The recording was not uploaded." in summary.inner_text()
    # The server's message for the file field, placed by the script beside it.
    field_error = page.locator("[data-upload-file] ul.errorlist")
    assert "WAV" in field_error.inner_text() or "format" in field_error.inner_text().lower()
    assert page.url.endswith("/recordings/upload/")
    assert page.locator("input[name=title]").input_value() == "Not a take"
    assert not Recording.objects.filter(performer=performer).exists()


def test_a_session_imports_file_by_file_and_each_row_updates_in_place(page, tmp_path):
    performer = make_performer(email="diego@example.com", legal_name="Diego Ramírez Soto")
    names = [f"take-{n:02d}.wav" for n in range(1, 6)]
    rows = [row(name, title=f"Parking ticket {n}") for n, name in enumerate(names, 1)]
    # A repeated file name: that row is refused, and the file still belongs
    # to the first row that names it.
    rows.append(row(names[0], title="Parking ticket again"))
    manifest = tmp_path / "manifest.csv"
    manifest.write_bytes(manifest_bytes(rows))
    folder = tmp_path / "session"
    folder.mkdir()
    for n, name in enumerate(names):
        (folder / name).write_bytes(tiny_wav(n, seconds=0.5))
    (folder / "notes.wav").write_bytes(tiny_wav(99))  # not in the manifest

    sign_in(page, "diego@example.com")
    page.get_by_role("link", name="Import a session").first.click()
    page.set_input_files("input[name=manifest]", str(manifest))
    page.fill("input[name=signature_name]", "Diego Ramírez Soto")
    page.get_by_role("button", name="Sign and check the manifest").click()
    page.wait_for_url("**/recordings/imports/*/")

    refused = page.locator("tr[data-row][data-status=refused]")
    assert refused.count() == 1
    assert "duplicate_file_name" in refused.inner_text()

    page.set_input_files("input[type=file]", [str(folder / n) for n in [*names, "notes.wav"]])
    overall = page.locator("[data-overall-text]")
    page.wait_for_function(
        "() => document.querySelector('[data-overall-text]').textContent.startsWith('Done')"
    )
    assert overall.inner_text() == "Done: 5 imported."
    skipped = page.locator(".upload-item", has_text="notes.wav")
    assert "Not in the manifest" in skipped.inner_text()
    # Each row changed in place, without reloading the page, to a link to
    # its new recording.
    for n in range(1, len(names) + 1):
        table_row = page.locator(f"tr#row-{n}")
        assert table_row.get_attribute("data-status") == "imported"
        uid = table_row.get_by_role("link").inner_text()
        assert Recording.objects.get(uid=uid, performer=performer).title == f"Parking ticket {n}"

    statuses = list(ImportRow.objects.order_by("row_number").values_list("status", flat=True))
    assert statuses == ["imported"] * 5 + ["refused"]
    assert Recording.objects.filter(performer=performer).count() == 5


def test_a_buyer_filters_by_emotion_and_intensity_sees_the_arc_and_plays_the_preview(page):
    maya = make_performer(email="maya@example.com", stage_name="Maya Okafor")
    staff = make_staff()
    grief = make_sellable_recording(maya, title="Hospital corridor", emotion="grief", seconds=6.0)
    services.signature_save(
        recording=grief,
        by=maya.user,
        primary_emotion="grief",
        intensity=5,
        valence=-0.8,
        arousal=0.6,
        authenticity="genuine",
        arc=[
            {"start": 0, "end": 2.5, "emotion": "confusion", "intensity": 2, "note": "Hears it"},
            {"start": 2.5, "end": 6, "emotion": "grief", "intensity": 5, "note": "It lands"},
        ],
    )
    mild = make_sellable_recording(maya, title="Quiet loss", emotion="grief", intensity=2)
    make_published_listing(maya, [grief], reviewer=staff, title="Grief, breaking")
    make_published_listing(maya, [mild], reviewer=staff, title="Grief, held in")
    buyer = make_user(email="ana@lumen.example", full_name="Ana Lumen")
    make_organization(owner=buyer, name="Lumen Labs")

    sign_in(page, "ana@lumen.example")
    page.goto("/")
    page.get_by_role("link", name="Catalogue").first.click()
    page.get_by_role("checkbox", name="Grief").check()
    page.select_option("select[name=intensity_min]", "4")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**/catalogue/?*")

    results = page.locator("main")
    assert results.get_by_role("link", name="Grief, breaking").count() == 1
    assert results.get_by_role("link", name="Grief, held in").count() == 0
    results.get_by_role("link", name="Grief, breaking").click()
    page.wait_for_url("**/catalogue/*/")

    arc = page.locator("svg.cat-arc__svg")
    assert arc.count() == 1
    text = page.locator("main").inner_text()
    assert "Hears it" in text and "It lands" in text
    # Chromium fetches the preview and decodes it: a real, playable excerpt,
    # shorter than the six-second original.
    duration = page.evaluate(
        """() => new Promise((resolve, reject) => {
            const audio = document.querySelector("audio");
            audio.addEventListener("loadedmetadata", () => resolve(audio.duration));
            audio.addEventListener("error", () => reject(new Error("code " + audio.error.code)));
            audio.preload = "auto";
            audio.load();
        })"""
    )
    assert 0 < duration < 6
