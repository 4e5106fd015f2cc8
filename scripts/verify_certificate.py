#!/usr/bin/env python3
"""Verify a Residuals license certificate offline.

    python scripts/verify_certificate.py CERTIFICATE.json KEYS.json

KEYS.json is the platform's published key set, saved from
https://<residuals host>/.well-known/residuals-license-key.json. Needs only
the `cryptography` package. Exit code 0 and a summary when the certificate is
authentic; 1 and the reason when it is not.
"""

from __future__ import annotations

import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify(certificate: dict, keys: dict) -> dict:
    facts, signature = certificate["certificate"], certificate["signature"]
    key = next(k for k in keys["keys"] if k["kid"] == signature["kid"])
    message = json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    Ed25519PublicKey.from_public_bytes(_decode(key["x"])).verify(
        _decode(signature["value"]), message
    )
    return facts


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as c, open(argv[2]) as k:
        certificate, keys = json.load(c), json.load(k)
    try:
        facts = verify(certificate, keys)
    except StopIteration:
        print("NOT VALID: the certificate names a key that is not in the key set.")
        return 1
    except (InvalidSignature, KeyError, ValueError):
        print(
            "NOT VALID: the signature does not match; the certificate was altered or is not ours."
        )
        return 1
    license = facts["license"]
    print(f"VALID: license {license['id']} held by {facts['licensee']['name']}")
    print(f"  {license['listing']}: {license['starts_at']} to {license['ends_at']}")
    print(f"  permitted uses: {', '.join(facts['terms']['permitted_uses'])}")
    print(f"  files: {len(facts['files'])}; certificate issued {facts['issued_at']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
