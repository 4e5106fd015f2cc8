"""The provenance manifest of a license as MLCommons Croissant 1.0 JSON-LD,
with the Responsible-AI (RAI) vocabulary for how the data was collected,
what consent covers it and what personal or sensitive information it holds.

Each licensed file is a FileObject (contentUrl relative to the licence's zip
download, SHA-256); one RecordSet, ``recordings``, carries per file the
signature labels, provenance fields, consent scope and license terms as
inline data.

The license terms are also given once, at dataset level and machine-readable,
as ``licenseTerms`` (a JSON object, ``residuals:licenseTerms`` under the
platform's ``/ns/license-terms#`` namespace): term, permitted uses,
territories, sublicensing, attribution, exclusivity, royalties, reuse caps
and the deletion duty — see docs/licensing.md for its fields. Standard
schema.org properties carry what they can: ``expires`` (the end date) and
``creditText`` (the attribution owed, when the terms require one).
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from licensing.models import License
from marketplace.models import ConsentRecord
from marketplace.taxonomy import Emotion, SensitiveContent, Use

CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "data": {"@id": "cr:data", "@type": "@json"},
    "equivalentProperty": "cr:equivalentProperty",
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

# (field name, Croissant data type, description)
FIELDS = [
    ("recording_id", "sc:Text", "The platform's unique recording ID."),
    ("file", "sc:Text", "Path of the file inside the license's zip download."),
    ("sha256", "sc:Text", "SHA-256 of the original file."),
    ("title", "sc:Text", "Title given by the performer."),
    ("language", "sc:Text", "BCP 47 tag of the spoken language."),
    ("duration_seconds", "sc:Float", "Duration read from the file."),
    ("primary_emotion", "sc:Text", "Primary emotion, from the Residuals taxonomy."),
    ("intensity", "sc:Integer", "Intensity of the primary emotion, 1 to 5."),
    ("valence", "sc:Float", "Valence, -1 (negative) to 1 (positive)."),
    ("arousal", "sc:Float", "Arousal, 0 (calm) to 1 (excited)."),
    ("authenticity", "sc:Text", "genuine, suppressed, forced, masked or exaggerated."),
    ("arc", "sc:Text", "Timed segments as JSON: start, end, emotion, intensity, note."),
    ("annotator", "sc:Text", "Who annotated the signature: self, expert or automatic."),
    ("performer_name", "sc:Text", "Performer's name (provenance)."),
    ("performer_contact", "sc:Text", "Performer's contact (provenance)."),
    ("recording_date", "sc:Date", "Date of the recording (provenance)."),
    ("session", "sc:Text", "Recording session, where known."),
    ("studio", "sc:Text", "Studio or location, where known."),
    ("consent_scope", "sc:Text", "Uses the performer consented to, separated by ';'."),
    ("consent_text_version", "sc:Text", "Version of the consent text the performer signed."),
    ("consent_text_sha256", "sc:Text", "SHA-256 of that consent text."),
    ("consent_signed_at", "sc:DateTime", "When consent was given."),
    ("sensitive_content", "sc:Text", "Sensitive content the recording holds, separated by ';'."),
    ("license_permitted_uses", "sc:Text", "Uses this license permits, separated by ';'."),
]


def _consent_at_sale(recording, license: License) -> ConsentRecord | None:
    """The consent in force when the license was sold."""
    return (
        ConsentRecord.objects.filter(recording=recording, signed_at__lte=license.created_at)
        .order_by("-signed_at")
        .select_related("consent_text")
        .first()
    )


TERMS_VERSION = 1


def license_terms_structured(license: License) -> dict:
    """The license's frozen terms as data: what a buyer's compliance tooling
    reads instead of the prose in the RAI fields. Money in integer minor
    units of ``currency``; rates in basis points; times in ISO 8601 (UTC)."""
    terms = license.terms
    site = settings.SITE_URL
    return {
        "version": TERMS_VERSION,
        "license_id": license.uid,
        "licensee": license.organization.name,
        "licensor": terms.get("performer_stage_name", ""),
        "certificate": site + reverse("license_certificate_page", args=[license.uid]),
        "starts_at": license.starts_at.isoformat(),
        "ends_at": license.ends_at.isoformat(),
        "duration_days": terms["duration_days"],
        "permitted_uses": list(terms["permitted_uses"]),
        "territories": {
            "worldwide": bool(terms["worldwide"]),
            # ISO 3166-1 alpha-2; empty when worldwide.
            "countries": [] if terms["worldwide"] else list(terms["territories"]),
        },
        "sublicensing_allowed": bool(terms["sublicensing_allowed"]),
        "attribution": {
            "required": bool(terms["attribution_required"]),
            "credit": terms.get("performer_stage_name", "")
            if terms["attribution_required"]
            else None,
        },
        "exclusivity": terms.get("exclusivity", "non_exclusive"),
        "price_paid": {"amount_minor": license.price_minor, "currency": license.currency},
        "royalties": {
            "currency": license.currency,
            "revenue_share_bps": terms["revenue_share_bps"],
            "revenue_threshold_minor": terms["revenue_threshold_minor"],
            "per_unit_rates": [
                {
                    "metric": metric,
                    "amount_minor": int(rate.get("amount_minor", 0)),
                    "per": int(rate.get("per", 1)),
                }
                for metric, rate in sorted((terms.get("per_unit_rates") or {}).items())
            ],
        },
        "reuse_caps": dict(sorted((terms.get("reuse_caps") or {}).items())),
        "deletion_required_at_end": True,
    }


def manifest_for(license: License) -> dict:
    terms = license.terms
    items = list(
        license.items.select_related(
            "recording__signature", "recording__provenance", "recording__performer"
        ).order_by("id")
    )
    files, rows, sensitive_all = [], [], set()
    for item in items:
        recording = item.recording
        signature = getattr(recording, "signature", None)
        provenance = getattr(recording, "provenance", None)
        consent = _consent_at_sale(recording, license)
        path = f"files/{recording.uid}.{recording.container}"
        files.append(
            {
                "@type": "cr:FileObject",
                "@id": recording.uid,
                "name": path,
                "description": recording.title,
                "contentUrl": path,
                "encodingFormat": recording.mime_type,
                "contentSize": f"{recording.size_bytes} B",
                "sha256": item.sha256,
            }
        )
        sensitive = consent.sensitive_content if consent else []
        sensitive_all.update(sensitive)
        rows.append(
            {
                "recordings/recording_id": recording.uid,
                "recordings/file": path,
                "recordings/sha256": item.sha256,
                "recordings/title": recording.title,
                "recordings/language": recording.language,
                "recordings/duration_seconds": recording.duration_seconds,
                "recordings/primary_emotion": signature.primary_emotion if signature else "",
                "recordings/intensity": signature.intensity if signature else 0,
                "recordings/valence": signature.valence if signature else 0.0,
                "recordings/arousal": signature.arousal if signature else 0.0,
                "recordings/authenticity": signature.authenticity if signature else "",
                "recordings/arc": _json(signature.arc if signature else []),
                "recordings/annotator": signature.annotator if signature else "",
                "recordings/performer_name": provenance.performer_name if provenance else "",
                "recordings/performer_contact": provenance.performer_contact if provenance else "",
                "recordings/recording_date": provenance.recording_date.isoformat()
                if provenance and provenance.recording_date
                else "",
                "recordings/session": provenance.session_name if provenance else "",
                "recordings/studio": provenance.studio if provenance else "",
                "recordings/consent_scope": ";".join(consent.allowed_uses) if consent else "",
                "recordings/consent_text_version": consent.consent_text.version if consent else "",
                "recordings/consent_text_sha256": consent.consent_text_sha256 if consent else "",
                "recordings/consent_signed_at": consent.signed_at.isoformat() if consent else "",
                "recordings/sensitive_content": ";".join(sensitive),
                "recordings/license_permitted_uses": ";".join(terms["permitted_uses"]),
            }
        )
    uses = ", ".join(Use(u).label.lower() for u in terms["permitted_uses"] if u in Use.values)
    territory = "worldwide" if terms["worldwide"] else ", ".join(terms["territories"])
    emotions = sorted(
        {r["recordings/primary_emotion"] for r in rows if r["recordings/primary_emotion"]}
    )
    sensitive_text = (
        "The performers declared sensitive content: "
        + ", ".join(
            SensitiveContent(s).label.lower()
            for s in sorted(sensitive_all)
            if s in SensitiveContent.values
        )
        + ", and agreed to license it."
        if sensitive_all
        else "The performers declared no sensitive content."
    )
    site = settings.SITE_URL
    sublicensing = (
        "Sublicensing is allowed."
        if terms["sublicensing_allowed"]
        else "No sublicensing or resale."
    )
    structured = license_terms_structured(license)
    return {
        "@context": {
            **CONTEXT,
            "residuals": site + "/ns/license-terms#",
            "licenseTerms": {"@id": "residuals:licenseTerms", "@type": "@json"},
        },
        "@type": "sc:Dataset",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": f"{terms['listing_title']} (license {license.uid})",
        "description": (
            terms.get("listing_description")
            or f"Emotional performance recordings licensed under {license.uid}."
        ),
        "url": site
        + reverse("buyer_license_detail", args=[license.organization.slug, license.uid]),
        "license": site + reverse("license_certificate_page", args=[license.uid]),
        "version": f"{terms.get('listing_revision', 1)}.0.0",
        "datePublished": license.starts_at.date().isoformat(),
        "creator": {"@type": "sc:Person", "name": terms.get("performer_stage_name", "")},
        "citeAs": (
            f"{terms.get('performer_stage_name', '')}, “{terms['listing_title']}”, licensed to "
            f"{license.organization.name} under Residuals license {license.uid}, {site}."
        ),
        "publisher": {"@type": "sc:Organization", "name": "Residuals", "url": site},
        "keywords": [
            "emotional speech",
            "acted emotion",
            *[Emotion(e).label.lower() for e in emotions if e in Emotion.values],
        ],
        "isLiveDataset": False,
        "expires": license.ends_at.date().isoformat(),
        **(
            {"creditText": structured["attribution"]["credit"]}
            if terms["attribution_required"]
            else {}
        ),
        "licenseTerms": structured,
        "rai:dataCollection": (
            "Recorded by professional performers (improv, voice and screen actors) who uploaded "
            "their own takes to Residuals. Each recording carries provenance (performer, "
            "contact, recording date, session, studio) and a per-recording consent record: the "
            "exact consent text version and its SHA-256, the uses consented to, a typed "
            "signature, the time and network address."
        ),
        "rai:dataCollectionType": ["Direct"],
        "rai:dataAnnotationProtocol": (
            "Emotional signatures (primary emotion from a fixed 20-emotion taxonomy, intensity "
            "1-5, valence, arousal, authenticity, timed arc) were described by the performer, an "
            "expert or automatically, as stated per recording in the 'annotator' field."
        ),
        "rai:personalSensitiveInformation": (
            "Voices (and, for video, faces) of identifiable performers, who consented to the uses "
            f"listed. {sensitive_text}"
        ),
        "rai:dataUseCases": f"Permitted by this license: {uses}. Territory: {territory}.",
        "rai:dataLimitations": (
            f"Licensed to {license.organization.name} from {license.starts_at.date().isoformat()} "
            f"to {license.ends_at.date().isoformat()}. "
            f"{sublicensing} "
            "All copies must be deleted when the license ends, and deletion attested."
        ),
        "rai:dataReleaseMaintenancePlan": (
            "A performer may withdraw consent; affected licenses are then handled through a "
            "takedown request, which may require deletion of the recording."
        ),
        "distribution": files,
        "recordSet": [
            {
                "@type": "cr:RecordSet",
                "@id": "recordings",
                "name": "recordings",
                "description": "One record per licensed recording.",
                "key": {"@id": "recordings/recording_id"},
                "field": [
                    {
                        "@type": "cr:Field",
                        "@id": f"recordings/{name}",
                        "name": name,
                        "description": description,
                        "dataType": data_type,
                    }
                    for name, data_type, description in FIELDS
                ],
                "data": rows,
            }
        ],
    }


def _json(value) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))
