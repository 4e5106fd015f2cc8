"""Verify a license certificate: ``python manage.py verify_certificate
CERT.json [--keys KEYS.json]``. Without --keys it uses the platform's own
published key set (what /.well-known/residuals-license-key.json serves).
Exit status 0 when valid, 1 when not."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from licensing.certificates import CertificateInvalid, certificate_verify, public_key_document


class Command(BaseCommand):
    help = "Check a license certificate's Ed25519 signature (exit 0 valid, 1 not valid)."

    def add_arguments(self, parser):
        parser.add_argument("certificate", help="Path to the certificate JSON.")
        parser.add_argument(
            "--keys",
            help="Path to a saved key set (default: this platform's published keys).",
        )

    def handle(self, *args, **options):
        document = self._load(options["certificate"])
        keys = self._load(options["keys"]) if options["keys"] else public_key_document()
        try:
            facts = certificate_verify(document, keys)
        except CertificateInvalid as exc:
            self.stdout.write(self.style.ERROR(f"NOT VALID: {exc}"))
            sys.exit(1)
        license = facts["license"]
        self.stdout.write(
            self.style.SUCCESS(
                f"VALID: license {license['id']} held by {facts['licensee']['name']}"
            )
        )
        self.stdout.write(f"  {license['listing']}: {license['starts_at']} to {license['ends_at']}")
        self.stdout.write(f"  permitted uses: {', '.join(facts['terms']['permitted_uses'])}")
        self.stdout.write(
            f"  files: {len(facts['files'])}; certificate issued {facts['issued_at']}"
        )

    @staticmethod
    def _load(path: str) -> dict:
        try:
            with open(path, encoding="utf-8") as handle:
                document = json.load(handle)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
        except ValueError as exc:
            raise CommandError(f"{path} is not JSON: {exc}.") from None
        if not isinstance(document, dict):
            raise CommandError(f"{path} does not hold a JSON object.")
        return document
