"""The provenance manifest: Croissant 1.0 JSON-LD that the mlcroissant
package loads without warnings, one record per licensed file."""

from __future__ import annotations

import hashlib
import json

import mlcroissant as mlc
import pytest
from django.urls import reverse

from marketplace.services import consent_withdraw
from tests.factories_licensing import bearer, buy, licensing_world
from tests.factories_marketplace import make_published_listing, make_sellable_recording

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning"),
]


@pytest.fixture
def pack(stripe_double):
    """A license for a pack of two recordings."""
    world = licensing_world(stripe_double, buy_first=False)
    performer = world["performer"]
    recordings = [
        make_sellable_recording(performer, title="Hospital corridor", emotion="grief"),
        make_sellable_recording(performer, title="Answering machine", emotion="fear"),
    ]
    listing = make_published_listing(
        performer,
        recordings,
        reviewer=world["staff"],
        title="Two kinds of dread",
        uses=("model_training", "evaluation"),
    )
    (world["license"],) = buy(
        stripe_double, organization=world["organization"], buyer=world["owner"], listings=[listing]
    )
    world["recordings"] = recordings
    return world


def _manifest(client, world) -> tuple[dict, str]:
    headers, _ = bearer(created_by=world["owner"], organization=world["organization"])
    response = client.get(f"/api/v1/licenses/{world['license'].uid}/manifest/", **headers)
    assert response.status_code == 200
    return json.loads(response.content), response["Content-Type"]


def _sha256(recording) -> str:
    with recording.file.storage.open(recording.file.name, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_mlcroissant_reads_one_record_per_file_with_its_sha256(client, pack, tmp_path):
    manifest, content_type = _manifest(client, pack)
    assert content_type == "application/ld+json"
    path = tmp_path / "croissant.json"
    path.write_text(json.dumps(manifest))

    dataset = mlc.Dataset(jsonld=str(path))
    issues = dataset.metadata.ctx.issues
    assert not issues.errors and not issues.warnings
    assert dataset.metadata.name == f"Two kinds of dread (license {pack['license'].uid})"

    records = list(dataset.records("recordings"))
    got = {r["recordings/recording_id"]: r for r in records}
    assert len(records) == 2
    for recording in pack["recordings"]:
        record = got[recording.uid]
        assert record["recordings/sha256"] == _sha256(recording) == recording.sha256
        assert record["recordings/file"] == f"files/{recording.uid}.wav"
        assert record["recordings/consent_scope"] == "model_training;evaluation"
        assert record["recordings/license_permitted_uses"] == "model_training;evaluation"
        assert record["recordings/performer_name"] == pack["performer"].legal_name
    assert got[pack["recordings"][1].uid]["recordings/primary_emotion"] == "fear"
    # Each file is also a FileObject with its checksum.
    files = {f["@id"]: f for f in manifest["distribution"]}
    assert {uid: f["sha256"] for uid, f in files.items()} == {
        r.uid: r.sha256 for r in pack["recordings"]
    }


def test_the_manifest_carries_the_responsible_ai_fields(client, pack):
    manifest, _ = _manifest(client, pack)
    assert manifest["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    for field in (
        "rai:dataCollection",
        "rai:dataCollectionType",
        "rai:personalSensitiveInformation",
        "rai:dataUseCases",
        "rai:dataLimitations",
    ):
        assert manifest[field], field
    assert "model training" in manifest["rai:dataUseCases"]
    assert "Deep Feelings AI" in manifest["rai:dataLimitations"]
    assert manifest["license"].endswith(
        reverse("license_certificate_page", args=[pack["license"].uid])
    )


def test_the_manifest_keeps_the_consent_in_force_at_sale(client, pack):
    """Consent withdrawn after the sale: the manifest still documents what the
    license was sold under."""
    recording = pack["recordings"][0]
    consent_withdraw(recording=recording, by=pack["performer"].user, reason="Changed my mind")
    manifest, _ = _manifest(client, pack)
    rows = {row["recordings/recording_id"]: row for row in manifest["recordSet"][0]["data"]}
    assert rows[recording.uid]["recordings/consent_scope"] == "model_training;evaluation"


def test_the_web_manifest_is_a_download_for_members(client, pack):
    slug, uid = pack["organization"].slug, pack["license"].uid
    url = reverse("buyer_license_manifest", args=[slug, uid])
    client.force_login(pack["member"])
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/ld+json"
    assert response["Content-Disposition"] == f'attachment; filename="{uid}-croissant.jsonld"'
    assert json.loads(response.content)["@type"] == "sc:Dataset"
    client.force_login(pack["other_owner"])
    assert client.get(url).status_code == 404
