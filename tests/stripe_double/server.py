"""The Stripe double's HTTP server and its state.

Objects start from Stripe's example objects (stripe_fixtures_subset.json)
and are kept in memory for the life of the server. Tests drive what Stripe
would do on its own (a customer paying, an account finishing onboarding, an
invoice being paid) through methods such as ``pay_checkout_session``, which
return the webhook event Stripe would send; the test then signs it with
``sign_payload`` and posts it to the project's webhook endpoint.
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from tests.stripe_double.validation import Violation, match_route, validate_request

FIXTURES = json.loads((Path(__file__).parent / "stripe_fixtures_subset.json").read_text())
API_VERSION = "2023-08-16"

_PREFIX = {
    "customer": "cus",
    "checkout.session": "cs_test",
    "payment_intent": "pi",
    "charge": "ch",
    "refund": "re",
    "dispute": "dp",
    "account": "acct",
    "transfer": "tr",
    "transfer_reversal": "trr",
    "invoice": "in",
    "invoiceitem": "ii",
    "event": "evt",
}


class StripeError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str,
        param: str | None = None,
        kind: str = "invalid_request_error",
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.kind = (
            status,
            message,
            code,
            param,
            kind,
        )


def _int(params: dict, name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    return int(value) if value not in (None, "") else default


def _bool(value) -> bool:
    return value == "true"


class StripeDouble:
    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.violations: list[Violation] = []
        self._idempotency: dict[str, tuple[str, dict, int, dict]] = {}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle ------------------------------------------------------------------
    def start(self) -> StripeDouble:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                status, payload = double.handle(
                    self.command, self.path, body, dict(self.headers.items())
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", "req_" + secrets.token_hex(7))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        with self._lock:
            self.objects.clear()
            self.requests.clear()
            self.violations.clear()
            self._idempotency.clear()

    # --- request handling -------------------------------------------------------------
    def handle(self, method: str, raw_path: str, body: str, headers: dict) -> tuple[int, dict]:
        split = urlsplit(raw_path)
        with self._lock:
            self.requests.append(
                {
                    "method": method,
                    "path": split.path,
                    "query": split.query,
                    "body": body,
                    "headers": headers,
                }
            )
            if not headers.get("Authorization", "").startswith("Bearer sk_test_"):
                return self._error(
                    StripeError(401, "Invalid API Key provided.", code="api_key_invalid"),
                    record=True,
                )
            route = match_route(method, split.path)
            if isinstance(route, Violation):
                return self._error(
                    StripeError(route.status, route.message, code=route.code), record=True
                )
            _template, path_params, operation = route
            params, errors = validate_request(operation, split.query, body)
            if errors:
                first = errors[0]
                self.violations.extend(errors)
                return self._error(
                    StripeError(first.status, first.message, code=first.code, param=first.param)
                )
            key = headers.get("Idempotency-Key")
            signature = (method, split.path, params)
            if method == "POST" and key:
                seen = self._idempotency.get(key)
                if seen is not None:
                    if seen[:2] != signature[:2] or seen[2] != params:
                        return self._error(
                            StripeError(
                                400,
                                "Keys for idempotent requests can only be used with the same "
                                "parameters they were first used with.",
                                code="idempotency_key_in_use",
                                kind="idempotency_error",
                            )
                        )
                    return seen[3], copy.deepcopy(seen[4])
            try:
                handler = getattr(self, "_" + operation["operationId"])
                status, payload = 200, _public(handler(params, **path_params))
            except StripeError as exc:
                status, payload = self._error(exc)
            if method == "POST" and key:
                self._idempotency[key] = (
                    method,
                    split.path,
                    params,
                    status,
                    copy.deepcopy(payload),
                )
            return status, payload

    def _error(self, exc: StripeError, record: bool = False) -> tuple[int, dict]:
        if record:
            self.violations.append(Violation(exc.status, exc.code, exc.message, exc.param))
        error = {"type": exc.kind, "message": exc.message, "code": exc.code}
        if exc.param:
            error["param"] = exc.param
        return exc.status, {"error": error}

    # --- objects ---------------------------------------------------------------------------
    def _new(self, kind: str, **fields) -> dict:
        obj = copy.deepcopy(FIXTURES[kind])
        obj.update(
            id=f"{_PREFIX[kind]}_{secrets.token_hex(12)}", created=int(time.time()), livemode=False
        )
        if "metadata" in obj:
            obj["metadata"] = {}
        obj.update(fields)
        self.objects[obj["id"]] = obj
        return obj

    def get(self, object_id: str, kind: str | None = None) -> dict:
        obj = self.objects.get(object_id)
        if obj is None or (kind and obj.get("object") != kind):
            raise StripeError(
                404,
                f"No such {kind or 'object'}: '{object_id}'",
                code="resource_missing",
                param="id",
            )
        return obj

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects.values() if o.get("object") == kind]

    def event(self, event_type: str, obj: dict, previous: dict | None = None) -> dict:
        """The event Stripe would send about ``obj`` (also kept, like Stripe does)."""
        data = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = previous
        return self._new(
            "event",
            type=event_type,
            data=data,
            api_version=API_VERSION,
            pending_webhooks=1,
            request={"id": None, "idempotency_key": None},
        )

    # customers
    def _PostCustomers(self, params):
        return self._new(
            "customer",
            email=params.get("email"),
            name=params.get("name"),
            description=params.get("description"),
            metadata=params.get("metadata") or {},
        )

    def _GetCustomersCustomer(self, params, customer):
        return self.get(customer, "customer")

    def _PostCustomersCustomer(self, params, customer):
        obj = self.get(customer, "customer")
        for field in ("email", "name", "description"):
            if field in params:
                obj[field] = params[field]
        if "metadata" in params:
            obj["metadata"] = {**obj.get("metadata", {}), **(params["metadata"] or {})}
        return obj

    # checkout
    def _PostCheckoutSessions(self, params):
        if params.get("mode") not in (None, "payment"):
            raise StripeError(
                400,
                "The double supports payment mode only.",
                code="parameter_invalid_string",
                param="mode",
            )
        if "customer" in params:
            self.get(params["customer"], "customer")
        items = params.get("line_items") or []
        if not items:
            raise StripeError(
                400,
                "line_items is required in payment mode.",
                code="parameter_missing",
                param="line_items",
            )
        total, currency = 0, None
        for index, item in enumerate(items):
            price = item.get("price_data")
            if price is None:
                raise StripeError(
                    400,
                    "The double supports price_data line items only.",
                    code="parameter_missing",
                    param=f"line_items[{index}][price_data]",
                )
            if "unit_amount" not in price:
                raise StripeError(
                    400,
                    "unit_amount is required.",
                    code="parameter_missing",
                    param=f"line_items[{index}][price_data][unit_amount]",
                )
            if currency and price["currency"] != currency:
                raise StripeError(
                    400,
                    "All line items must share one currency.",
                    code="parameter_invalid_string",
                    param="line_items",
                )
            currency = price["currency"]
            total += int(price["unit_amount"]) * int(item.get("quantity", "1"))
        session = self._new(
            "checkout.session",
            mode="payment",
            status="open",
            payment_status="unpaid",
            amount_subtotal=total,
            amount_total=total,
            currency=currency,
            customer=params.get("customer"),
            customer_email=params.get("customer_email"),
            client_reference_id=params.get("client_reference_id"),
            metadata=params.get("metadata") or {},
            success_url=params.get("success_url"),
            cancel_url=params.get("cancel_url"),
            payment_intent=None,
            invoice=None,
            subscription=None,
            expires_at=_int(params, "expires_at", int(time.time()) + 86400),
        )
        session["url"] = f"{self.url}/pay/{session['id']}"
        session["_line_items"] = items
        return session

    def _GetCheckoutSessionsSession(self, params, session):
        return self.get(session, "checkout.session")

    def _PostCheckoutSessionsSessionExpire(self, params, session):
        obj = self.get(session, "checkout.session")
        if obj["status"] != "open":
            raise StripeError(
                400,
                f"Only open sessions can be expired (this one is {obj['status']}).",
                code="checkout_session_not_open",
            )
        obj["status"] = "expired"
        return obj

    def _GetPaymentIntentsIntent(self, params, intent):
        return self.get(intent, "payment_intent")

    def _GetChargesCharge(self, params, charge):
        return self.get(charge, "charge")

    # refunds
    def _PostRefunds(self, params):
        charge = None
        if "charge" in params:
            charge = self.get(params["charge"], "charge")
        elif "payment_intent" in params:
            intent = self.get(params["payment_intent"], "payment_intent")
            charge = self.get(intent["latest_charge"], "charge")
        else:
            raise StripeError(
                400, "Provide a charge or payment_intent.", code="parameter_missing", param="charge"
            )
        remaining = charge["amount"] - charge["amount_refunded"]
        amount = _int(params, "amount", remaining)
        if amount <= 0 or amount > remaining:
            raise StripeError(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount "
                f"on charge ({remaining})",
                code="amount_too_large",
                param="amount",
            )
        refund = self._new(
            "refund",
            amount=amount,
            currency=charge["currency"],
            charge=charge["id"],
            payment_intent=charge.get("payment_intent"),
            status="succeeded",
            reason=params.get("reason"),
            metadata=params.get("metadata") or {},
        )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        return refund

    def _GetRefundsRefund(self, params, refund):
        return self.get(refund, "refund")

    # Connect
    def _PostAccounts(self, params):
        return self._new(
            "account",
            type=params.get("type", "express"),
            country=params.get("country", "US"),
            email=params.get("email"),
            charges_enabled=False,
            payouts_enabled=False,
            details_submitted=False,
            metadata=params.get("metadata") or {},
        )

    def _GetAccountsAccount(self, params, account):
        return self.get(account, "account")

    def _PostAccountLinks(self, params):
        self.get(params["account"], "account")
        return {
            "object": "account_link",
            "created": int(time.time()),
            "expires_at": int(time.time()) + 300,
            "url": f"{self.url}/connect/onboarding/{params['account']}",
        }

    def _PostTransfers(self, params):
        destination = self.get(params["destination"], "account")
        if not destination.get("payouts_enabled"):
            raise StripeError(
                400,
                "The destination account cannot receive payouts yet.",
                code="account_invalid",
                param="destination",
            )
        return self._new(
            "transfer",
            amount=int(params["amount"]),
            currency=params["currency"],
            destination=destination["id"],
            amount_reversed=0,
            reversed=False,
            transfer_group=params.get("transfer_group"),
            description=params.get("description"),
            metadata=params.get("metadata") or {},
        )

    def _GetTransfersTransfer(self, params, transfer):
        return self.get(transfer, "transfer")

    def _PostTransfersIdReversals(self, params, id):
        transfer = self.get(id, "transfer")
        remaining = transfer["amount"] - transfer["amount_reversed"]
        amount = _int(params, "amount", remaining)
        if amount <= 0 or amount > remaining:
            raise StripeError(
                400,
                "Reversal exceeds the transfer's remaining amount.",
                code="amount_too_large",
                param="amount",
            )
        reversal = self._new(
            "transfer_reversal",
            amount=amount,
            currency=transfer["currency"],
            transfer=transfer["id"],
            metadata=params.get("metadata") or {},
        )
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
        return reversal

    # invoices
    def _PostInvoices(self, params):
        self.get(params["customer"], "customer")
        return self._new(
            "invoice",
            customer=params["customer"],
            status="draft",
            collection_method=params.get("collection_method", "charge_automatically"),
            currency=params.get("currency", "usd"),
            amount_due=0,
            amount_paid=0,
            amount_remaining=0,
            total=0,
            subtotal=0,
            paid=False,
            auto_advance=_bool(params.get("auto_advance", "false")),
            description=params.get("description"),
            metadata=params.get("metadata") or {},
            days_until_due=_int(params, "days_until_due"),
            lines={"object": "list", "data": [], "has_more": False, "url": ""},
        )

    def _GetInvoicesInvoice(self, params, invoice):
        return self.get(invoice, "invoice")

    def _PostInvoiceitems(self, params):
        self.get(params["customer"], "customer")
        invoice = self.get(params["invoice"], "invoice") if params.get("invoice") else None
        if invoice and invoice["status"] != "draft":
            raise StripeError(
                400,
                "Items can only be added to draft invoices.",
                code="invoice_not_editable",
                param="invoice",
            )
        item = self._new(
            "invoiceitem",
            customer=params["customer"],
            amount=_int(params, "amount", 0),
            currency=params["currency"],
            description=params.get("description"),
            invoice=invoice["id"] if invoice else None,
            metadata=params.get("metadata") or {},
        )
        if invoice:
            invoice["lines"]["data"].append(
                {
                    "id": item["id"],
                    "amount": item["amount"],
                    "description": item["description"],
                    "metadata": item["metadata"],
                }
            )
            invoice["currency"] = item["currency"]
        return item

    def _PostInvoicesInvoiceFinalize(self, params, invoice):
        obj = self.get(invoice, "invoice")
        if obj["status"] != "draft":
            raise StripeError(
                400, "This invoice is already finalized.", code="invoice_not_editable"
            )
        total = sum(line["amount"] for line in obj["lines"]["data"])
        obj.update(
            status="open",
            total=total,
            subtotal=total,
            amount_due=total,
            amount_remaining=total,
            hosted_invoice_url=f"{self.url}/invoice/{obj['id']}",
        )
        return obj

    def _PostInvoicesInvoiceSend(self, params, invoice):
        obj = self.get(invoice, "invoice")
        if obj["status"] != "open":
            raise StripeError(400, "Only open invoices can be sent.", code="invoice_not_open")
        return obj

    def _PostInvoicesInvoicePay(self, params, invoice):
        obj = self.get(invoice, "invoice")
        if obj["status"] != "open":
            raise StripeError(400, "Only open invoices can be paid.", code="invoice_not_open")
        self._mark_invoice_paid(obj)
        return obj

    def _PostInvoicesInvoiceVoid(self, params, invoice):
        obj = self.get(invoice, "invoice")
        if obj["status"] != "open":
            raise StripeError(400, "Only open invoices can be voided.", code="invoice_not_open")
        obj["status"] = "void"
        return obj

    def _mark_invoice_paid(self, invoice: dict) -> None:
        invoice.update(
            status="paid", paid=True, amount_paid=invoice["amount_due"], amount_remaining=0
        )

    # --- what Stripe does on its own (driven by tests) --------------------------------
    def pay_checkout_session(self, session_id: str, *, delayed: bool = False) -> dict:
        """The customer pays. Returns ``checkout.session.completed``; with
        ``delayed`` the payment is still processing (an async method)."""
        with self._lock:
            session = self.get(session_id, "checkout.session")
            intent = self._new(
                "payment_intent",
                amount=session["amount_total"],
                currency=session["currency"],
                customer=session["customer"],
                status="processing" if delayed else "succeeded",
                metadata=session["metadata"],
            )
            charge = self._new(
                "charge",
                amount=session["amount_total"],
                currency=session["currency"],
                customer=session["customer"],
                payment_intent=intent["id"],
                amount_refunded=0,
                refunded=False,
                paid=not delayed,
                status="pending" if delayed else "succeeded",
                metadata=session["metadata"],
            )
            intent["latest_charge"] = charge["id"]
            session.update(
                status="complete",
                payment_intent=intent["id"],
                payment_status="unpaid" if delayed else "paid",
            )
            return self.event("checkout.session.completed", session)

    def settle_async_payment(self, session_id: str, *, succeeded: bool = True) -> dict:
        with self._lock:
            session = self.get(session_id, "checkout.session")
            intent = self.get(session["payment_intent"], "payment_intent")
            charge = self.get(intent["latest_charge"], "charge")
            intent["status"] = "succeeded" if succeeded else "requires_payment_method"
            charge.update(paid=succeeded, status="succeeded" if succeeded else "failed")
            session["payment_status"] = "paid" if succeeded else "unpaid"
            kind = "succeeded" if succeeded else "failed"
            return self.event(f"checkout.session.async_payment_{kind}", session)

    def expire_checkout_session(self, session_id: str) -> dict:
        with self._lock:
            session = self.get(session_id, "checkout.session")
            session["status"] = "expired"
            return self.event("checkout.session.expired", session)

    def refund_event(self, charge_id: str) -> dict:
        with self._lock:
            return self.event("charge.refunded", self.get(charge_id, "charge"))

    def open_dispute(self, charge_id: str) -> dict:
        with self._lock:
            charge = self.get(charge_id, "charge")
            dispute = self._new(
                "dispute",
                charge=charge["id"],
                amount=charge["amount"],
                currency=charge["currency"],
                payment_intent=charge.get("payment_intent"),
                status="needs_response",
                reason="fraudulent",
            )
            return self.event("charge.dispute.created", dispute)

    def complete_onboarding(self, account_id: str) -> dict:
        with self._lock:
            account = self.get(account_id, "account")
            account.update(charges_enabled=True, payouts_enabled=True, details_submitted=True)
            return self.event("account.updated", account)

    def pay_invoice(self, invoice_id: str) -> dict:
        with self._lock:
            invoice = self.get(invoice_id, "invoice")
            self._mark_invoice_paid(invoice)
            return self.event("invoice.paid", invoice)

    def fail_invoice_payment(self, invoice_id: str) -> dict:
        with self._lock:
            invoice = self.get(invoice_id, "invoice")
            invoice["attempt_count"] = invoice.get("attempt_count", 0) + 1
            return self.event("invoice.payment_failed", invoice)

    def event_json(self, event: dict) -> str:
        """The event as Stripe sends it."""
        return json.dumps(_public(event))


def _public(value):
    """A copy without the double's own bookkeeping keys (those starting with _)."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value
