"""The consent wording performers accept, by version. A published version is
never edited; a new wording is a new entry here and a data migration that
stores it (``ConsentText``), so every consent record points at the exact
words that were shown.

Enforced: ``marketplace.checks`` compares each stored version's hash with
the hash of its text here (``manage.py migrate`` and ``manage.py check
--database default`` fail on a difference), and tests/test_consent.py pins
the hash of every published version."""

import hashlib


def text_sha256(body: str) -> str:
    """The hash stored with a version and with each consent signed under it."""
    return hashlib.sha256(body.encode()).hexdigest()


CURRENT_VERSION = "2026-11-v1"

TEXTS = {
    "2026-11-v1": """\
Residuals performer consent — version 2026-11-v1

1. I am the person performing in this recording, or I am authorised in writing by every
   person who performs in it to give this consent on their behalf.

2. I allow Residuals to offer this recording to organisations that develop artificial
   intelligence ("buyers"), only for the uses I tick below, only under time-limited
   licenses (never longer than three years each), and only in the territories the listing
   names. Buyers receive no right to use my name or likeness beyond those uses.

3. I understand that a licensed buyer may keep and use copies of the recording until the
   license ends, and must then delete them and attest that they have done so.

4. I have declared any sensitive content this recording holds (such as grief, trauma or
   rage). If I do not agree to license sensitive content, the recording will not be offered.

5. I will be paid the sale price less the platform fee, and royalties on the downstream
   use buyers report, as set out in each listing's terms.

6. I may withdraw this consent at any time from the recording's page. Withdrawal stops new
   sales at once. Existing licenses are handled through a takedown request, which may lead
   to suspension or revocation of those licenses and to deletion by the buyers.

7. Residuals keeps this consent record, the exact text I accepted, the time and the network
   address it was given from, for as long as any license of this recording exists and for
   six years afterwards.

By typing my full legal name below I sign this consent.
""",
}
