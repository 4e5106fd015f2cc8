#!/usr/bin/env python3
"""Extract the part of Stripe's published OpenAPI description that the
project uses, so the test suite's Stripe double can check requests without
../shared. Run from the repository root:

    .venv/bin/python scripts/extract_stripe_spec.py ../shared/stripe/spec3.json

It keeps, for each endpoint below, the path and query parameters and the
form-encoded request body schema (Stripe's request schemas are inline, with
no $ref), and writes tests/stripe_double/stripe_spec_subset.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# (path, methods) — every Stripe endpoint the project calls. Add a line here
# when the gateway starts calling a new endpoint, then re-run the script.
ENDPOINTS: list[tuple[str, tuple[str, ...]]] = [
    ("/v1/customers", ("post",)),
    ("/v1/customers/{customer}", ("get", "post")),
    ("/v1/checkout/sessions", ("post",)),
    ("/v1/checkout/sessions/{session}", ("get",)),
    ("/v1/checkout/sessions/{session}/expire", ("post",)),
    ("/v1/payment_intents/{intent}", ("get",)),
    ("/v1/charges/{charge}", ("get",)),
    ("/v1/refunds", ("post",)),
    ("/v1/refunds/{refund}", ("get",)),
    ("/v1/accounts", ("post",)),
    ("/v1/accounts/{account}", ("get",)),
    ("/v1/account_links", ("post",)),
    ("/v1/transfers", ("post",)),
    ("/v1/transfers/{transfer}", ("get",)),
    ("/v1/transfers/{id}/reversals", ("post",)),
    ("/v1/invoices", ("post",)),
    ("/v1/invoices/{invoice}", ("get",)),
    ("/v1/invoices/{invoice}/finalize", ("post",)),
    ("/v1/invoices/{invoice}/send", ("post",)),
    ("/v1/invoices/{invoice}/pay", ("post",)),
    ("/v1/invoices/{invoice}/void", ("post",)),
    ("/v1/invoiceitems", ("post",)),
]

# Example objects (fixtures3.json) the double starts new objects from.
RESOURCES = [
    "customer",
    "checkout.session",
    "payment_intent",
    "charge",
    "refund",
    "dispute",
    "account",
    "account_link",
    "transfer",
    "transfer_reversal",
    "invoice",
    "invoiceitem",
    "event",
]

HERE = Path(__file__).resolve().parent.parent / "tests" / "stripe_double"
OUT = HERE / "stripe_spec_subset.json"
FIXTURES_OUT = HERE / "stripe_fixtures_subset.json"


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    fixtures = json.loads((Path(spec_path).parent / "fixtures3.json").read_text())["resources"]
    FIXTURES_OUT.write_text(
        json.dumps({name: fixtures[name] for name in RESOURCES}, indent=1, sort_keys=True) + "\n"
    )
    subset: dict = {
        "source": "Stripe OpenAPI description spec3.json (MIT license, Stripe, Inc.)",
        "version": spec["info"]["version"],
        "paths": {},
    }
    for path, methods in ENDPOINTS:
        operations = spec["paths"][path]
        kept = {}
        for method in methods:
            operation = operations[method]
            body = (
                operation.get("requestBody", {})
                .get("content", {})
                .get("application/x-www-form-urlencoded", {})
                .get("schema")
            )
            kept[method] = {
                "operationId": operation.get("operationId"),
                "parameters": [
                    {
                        k: p[k]
                        for k in ("name", "in", "required", "schema", "style", "explode")
                        if k in p
                    }
                    for p in operation.get("parameters", [])
                ],
                "requestBody": body,
            }
        subset["paths"][path] = kept
    OUT.write_text(json.dumps(subset, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT} ({len(subset['paths'])} paths)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/stripe/spec3.json")
