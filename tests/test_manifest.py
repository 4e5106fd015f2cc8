"""The provenance manifest: Croissant 1.0 JSON-LD that the mlcroissant
package loads without warnings, one record per licensed file."""

from __future__ import annotations

import hashlib
import json

import mlcroissant as mlc
import pytest
from django.conf import settings
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
        price_minor=80_000,
        worldwide=False,
        territories=["DE", "FR"],
        attribution_required=True,
        revenue_share_bps=1500,
        revenue_threshold_minor=500_000,
        per_unit_rates={"training_run": {"amount_minor": 2_500, "per": 1}},
        reuse_caps={"max_models_trained": 3},
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
    # The structured terms (test below) sit beside Croissant's own fields, under
    # their own IRI, and mlcroissant loads the whole without a warning (above).
    terms_property = manifest["@context"]["licenseTerms"]["@id"].replace(
        "residuals:", manifest["@context"]["residuals"]
    )
    assert terms_property == f"{settings.SITE_URL}/ns/license-terms#licenseTerms"
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


def test_the_terms_are_machine_readable_at_dataset_level(client, pack):
    manifest, _ = _manifest(client, pack)
    license = pack["license"]
    terms = manifest["licenseTerms"]
    assert terms == {
        "version": 1,
        "license_id": license.uid,
        "licensee": "Deep Feelings AI",
        "licensor": pack["performer"].stage_name,
        "certificate": manifest["license"],
        "starts_at": license.starts_at.isoformat(),
        "ends_at": license.ends_at.isoformat(),
        "duration_days": 730,
        "permitted_uses": ["model_training", "evaluation"],
        "territories": {"worldwide": False, "countries": ["DE", "FR"]},
        "sublicensing_allowed": False,
        "attribution": {"required": True, "credit": pack["performer"].stage_name},
        "exclusivity": "non_exclusive",
        "price_paid": {"amount_minor": 80_000, "currency": "USD"},
        "royalties": {
            "currency": "USD",
            "revenue_share_bps": 1500,
            "revenue_threshold_minor": 500_000,
            "per_unit_rates": [{"metric": "training_run", "amount_minor": 2_500, "per": 1}],
        },
        "reuse_caps": {"max_models_trained": 3},
        "deletion_required_at_end": True,
    }
    assert manifest["expires"] == license.ends_at.date().isoformat()
    assert manifest["creditText"] == pack["performer"].stage_name
    # A JSON literal in the JSON-LD sense: consumers of the graph get it whole.
    assert manifest["@context"]["licenseTerms"]["@type"] == "@json"


def test_worldwide_terms_without_attribution(client, pack, stripe_double):
    """No countries listed and no credit owed; empty caps and rates stay empty."""
    performer = pack["performer"]
    listing = make_published_listing(
        performer,
        [make_sellable_recording(performer, title="Lift", emotion="joy")],
        reviewer=pack["staff"],
        title="Plain terms",
    )
    (pack["license"],) = buy(
        stripe_double, organization=pack["organization"], buyer=pack["owner"], listings=[listing]
    )
    manifest, _ = _manifest(client, pack)
    terms = manifest["licenseTerms"]
    assert terms["territories"] == {"worldwide": True, "countries": []}
    assert terms["attribution"] == {"required": False, "credit": None}
    assert terms["reuse_caps"] == {} and terms["royalties"]["per_unit_rates"] == []
    assert "creditText" not in manifest
