"""A local Stripe Connect (localstripe has none): `python -m localdev.stripe_connect_standin --port 8421`.

Speaks Stripe's REST dialect to stripe-python: form-encoded bodies with bracket keys, `Authorization: Bearer
<secret key>` (or Basic with the key as user name), JSON answers and Stripe's error envelope. It checks the
method and path of every call, the key, and the `Idempotency-Key` (same key and parameters: the first answer
replayed with `Idempotent-Replayed: true`; other parameters: 400 `idempotency_error`), and records each request.

- Accounts: `POST /v1/accounts`, `GET|POST /v1/accounts/{id}`, `GET /v1/accounts`.
- Account links: `POST /v1/account_links`; opening its `url` (`GET /connect/onboarding/{id}`) plays the hosted
  onboarding: the account gets payouts and the transfers capability, `account.updated` is sent, and the browser
  is redirected to the link's return_url.
- Transfers: `POST|GET /v1/transfers`, `GET /v1/transfers/{id}`; reversals: `POST|GET /v1/transfers/{id}/reversals`.
  Transfers need a destination with the transfers capability and a platform balance that covers them.
- Checkout Sessions (localstripe has none): `POST /v1/checkout/sessions` (mode `payment`, `line_items[].price_data`),
  `GET /v1/checkout/sessions/{id}`. Opening its `url` (`GET /checkout/pay/{id}`) plays the hosted page paid with a
  test card: a succeeded PaymentIntent carrying `payment_intent_data.metadata` (created and confirmed at the
  upstream localstripe when there is one, else made here), then `payment_intent.succeeded` and
  `checkout.session.completed` are sent, and the browser is redirected to the session's success_url.
- Anything else under /v1 goes to `--upstream` (localstripe) when given, so STRIPE_API_BASE can point here. POSTs
  passed on get the same Idempotency-Key handling as our own routes (localstripe ignores the header), so a
  retried PaymentIntent create is answered from the first one, as Stripe does.
- Events (`account.updated`, `transfer.created`, `transfer.reversed`, `payout.paid|failed`) are signed like Stripe
  signs them and posted to each webhook target (`--webhook-url`/`--webhook-secret`, or `POST /_local/webhooks`).
- Test controls: `GET|DELETE /_local/requests`, `GET /_local/events`, `POST /_local/fail {"status", "times",
  "path"?, "code"?}`, `POST /_local/slow {"seconds", "times", "path"?}` (the call takes effect, its answer comes
  late: a client timeout after Stripe acted), `POST /_local/accounts/{id}/enable {"payouts_enabled"?}`, `POST /_local/accounts/{id}/payouts
  {"status": "paid"|"failed", "amount"?, "failure_code"?}` (a bank payout of the account's balance).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import re
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from localdev import devenv, serving

HOST = "127.0.0.1"
DEFAULT_PORT = 8421
API_VERSION = "2025-01-27.acacia"
_MAX_BODY = 1024 * 1024
_DELIVERY_ATTEMPTS = 3
_RECORDED_HEADERS = ("authorization", "content-type", "idempotency-key", "stripe-version", "stripe-account")
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"^/v1/accounts$"), "create_account"),
    ("GET", re.compile(r"^/v1/accounts$"), "list_accounts"),
    ("GET", re.compile(r"^/v1/accounts/(?P<id>[^/]+)$"), "get_account"),
    ("POST", re.compile(r"^/v1/accounts/(?P<id>[^/]+)$"), "update_account"),
    ("POST", re.compile(r"^/v1/account_links$"), "create_account_link"),
    ("POST", re.compile(r"^/v1/transfers$"), "create_transfer"),
    ("GET", re.compile(r"^/v1/transfers$"), "list_transfers"),
    ("GET", re.compile(r"^/v1/transfers/(?P<id>[^/]+)$"), "get_transfer"),
    ("POST", re.compile(r"^/v1/transfers/(?P<id>[^/]+)/reversals$"), "create_reversal"),
    ("GET", re.compile(r"^/v1/transfers/(?P<id>[^/]+)/reversals$"), "list_reversals"),
    ("POST", re.compile(r"^/v1/checkout/sessions$"), "create_checkout_session"),
    ("GET", re.compile(r"^/v1/checkout/sessions/(?P<id>[^/]+)$"), "get_checkout_session"),
]
_OWN_PATH = re.compile(r"^/v1/(accounts|account_links|transfers|checkout/sessions)(/|$)")
_TEST_CARD = {"number": "4242424242424242", "exp_month": "12", "exp_year": "2034", "cvc": "123"}


class StripeError(Exception):
    """An answer in Stripe's error envelope."""

    def __init__(
        self, status: int, message: str, *, type: str = "invalid_request_error", **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type, "message": message, **extra}}


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket form encoding as nested values: `a[b][c]=1` -> {"a": {"b": {"c": "1"}}}, `l[0]=x` -> lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        head, *rest = [p.strip("[]") for p in parts] or [key]
        node: Any = root
        path = [head, *rest]
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if isinstance(node, list):
                if part == "" or (part.isdigit() and int(part) >= len(node)):
                    node.append(value if last else {})
                    node = node[-1]
                else:
                    idx = int(part)
                    if last:
                        node[idx] = value
                    node = node[idx]
                continue
            nxt_is_list = not last and (path[i + 1] == "" or path[i + 1].isdigit())
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, [] if nxt_is_list else {})
    return root


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header for `payload`: t=<unix time>,v1=HMAC-SHA256(secret, "<t>.<payload>")."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _flag(value: Any) -> bool:
    return str(value).lower() in ("true", "1", "yes")


def _int(params: dict[str, Any], name: str, *, required: bool) -> int | None:
    raw = params.get(name)
    if raw is None:
        if required:
            raise StripeError(400, f"Missing required param: {name}.", code="parameter_missing", param=name)
        return None
    if not str(raw).lstrip("-").isdigit():
        raise StripeError(400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name)
    return int(raw)


class ConnectStandin(ThreadingHTTPServer):
    """The HTTP server and its state: accounts, transfers, idempotency records, requests, events."""

    daemon_threads = True

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        *,
        secret_key: str = devenv.STRIPE_SECRET_KEY,
        webhooks: list[tuple[str, str]] | None = None,
        upstream: str | None = None,
        platform_balance: int = 10_000_000_00,
        quiet: bool = False,
    ) -> None:
        super().__init__((HOST, port), _Handler)
        self.secret_key = secret_key
        self.webhooks = list(webhooks or [])
        self.upstream = upstream.rstrip("/") if upstream else None
        self.platform_balance = platform_balance
        self.quiet = quiet
        self.accounts: dict[str, dict[str, Any]] = {}
        self.transfers: dict[str, dict[str, Any]] = {}
        self.links: dict[str, dict[str, Any]] = {}
        self.checkout_sessions: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}  # made here (no upstream) for paid sessions
        self._key_locks: dict[str, threading.Lock] = {}
        self.paid_out: dict[str, int] = {}  # account -> cents already sent to its bank
        self._idempotency: dict[str, tuple[str, int, Any]] = {}
        self._requests: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._failures: list[dict[str, Any]] = []
        self._slow: list[dict[str, Any]] = []
        self.lock = threading.RLock()

    @property
    def url(self) -> str:
        """What STRIPE_API_BASE should be."""
        return f"http://{HOST}:{self.server_address[1]}"

    # --- inspection and control (tests call these directly) -------------------------------------------------

    def requests(self, path_prefix: str = "") -> list[dict[str, Any]]:
        """Requests recorded so far, oldest first (only paths starting with `path_prefix`)."""
        with self.lock:
            return [json.loads(json.dumps(r)) for r in self._requests if r["path"].startswith(path_prefix)]

    def events(self, type: str | None = None) -> list[dict[str, Any]]:
        """Events emitted so far, oldest first."""
        with self.lock:
            return [json.loads(json.dumps(e)) for e in self._events if type is None or e["type"] == type]

    def clear(self) -> None:
        """Forget recorded requests, events and pending failures (objects are kept)."""
        with self.lock:
            self._requests.clear()
            self._events.clear()
            self._failures.clear()
            self._slow.clear()

    def fail_next(
        self, status: int = 503, times: int = 1, *, path: str = "", code: str | None = None
    ) -> None:
        """Answer the next `times` API calls under `path` with `status` (after the key check; nothing recorded)."""
        with self.lock:
            self._failures.extend({"status": status, "path": path, "code": code} for _ in range(times))

    def slow_next(self, seconds: float, times: int = 1, *, path: str = "") -> None:
        """Answer the next `times` API calls under `path` only after `seconds` (they take effect at once)."""
        with self.lock:
            self._slow.extend({"seconds": seconds, "path": path} for _ in range(times))

    def take_slow(self, path: str) -> float:
        """The delay for this call, if one is queued for its path."""
        with self.lock:
            for i, slow in enumerate(self._slow):
                if path.startswith(slow["path"]):
                    return float(self._slow.pop(i)["seconds"])
        return 0.0

    def add_webhook(self, url: str, secret: str) -> None:
        """Also deliver every event to `url`, signed with `secret`."""
        with self.lock:
            self.webhooks.append((url, secret))

    def enable_account(self, account_id: str, *, payouts_enabled: bool = True) -> dict[str, Any]:
        """Finish (or undo) the account's onboarding and send account.updated."""
        with self.lock:
            account = self.accounts.get(account_id)
            if account is None:
                raise KeyError(account_id)
            account.update(
                details_submitted=True, payouts_enabled=payouts_enabled, charges_enabled=payouts_enabled
            )
            account["capabilities"]["transfers"] = "active" if payouts_enabled else "inactive"
            account["requirements"] = {
                "currently_due": [] if payouts_enabled else ["external_account"],
                "disabled_reason": None if payouts_enabled else "requirements.past_due",
            }
            snapshot = json.loads(json.dumps(account))
        self.emit("account.updated", snapshot, account=account_id)
        return snapshot

    def pay_out(
        self,
        account_id: str,
        *,
        status: str = "paid",
        amount: int | None = None,
        failure_code: str | None = None,
    ) -> dict[str, Any]:
        """A bank payout of the account's balance (or `amount`): payout.paid or payout.failed."""
        with self.lock:
            if account_id not in self.accounts:
                raise KeyError(account_id)
            due = self.balance_of(account_id) if amount is None else amount
            payout = {
                "id": _new_id("po"),
                "object": "payout",
                "amount": due,
                "currency": "usd",
                "automatic": True,
                "created": int(time.time()),
                "arrival_date": int(time.time()) + 86_400,
                "status": status,
                "failure_code": failure_code or ("account_closed" if status == "failed" else None),
                "failure_message": "The bank account has been closed." if status == "failed" else None,
                "metadata": {},
            }
            if status == "paid":
                self.paid_out[account_id] = self.paid_out.get(account_id, 0) + due
        self.emit(f"payout.{status}", payout, account=account_id)
        return payout

    def balance_of(self, account_id: str) -> int:
        """Cents transferred to the account, less reversals and bank payouts."""
        with self.lock:
            moved = sum(
                t["amount"] - t["amount_reversed"]
                for t in self.transfers.values()
                if t["destination"] == account_id
            )
            return moved - self.paid_out.get(account_id, 0)

    def emit(self, type: str, obj: dict[str, Any], *, account: str | None = None) -> dict[str, Any]:
        """Record an event and deliver it (signed) to every webhook target in the background."""
        event: dict[str, Any] = {
            "id": _new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": len(self.webhooks),
            "request": {"id": None, "idempotency_key": None},
            "type": type,
            "deliveries": [],
        }
        if account is not None:
            event["account"] = account
        with self.lock:
            self._events.append(event)
            targets = list(self.webhooks)
        for url, secret in targets:
            threading.Thread(
                target=self._deliver, args=(event, url, secret), name="connect-webhook", daemon=True
            ).start()
        return event

    def _deliver(self, event: dict[str, Any], url: str, secret: str) -> None:
        body = {k: v for k, v in event.items() if k != "deliveries"}
        payload = json.dumps(body).encode()
        for attempt in range(_DELIVERY_ATTEMPTS):
            status = _post(url, payload, {"Stripe-Signature": sign_payload(payload, secret)})
            with self.lock:
                event["deliveries"].append({"url": url, "status": status, "attempt": attempt + 1})
            if status is not None and 200 <= status < 300:
                return
            time.sleep(0.5 * (attempt + 1))

    # --- the API ------------------------------------------------------------------------------------------

    def create_account(self, params: dict[str, Any]) -> dict[str, Any]:
        kind = params.get("type") or "express"
        if kind not in ("express", "custom", "standard"):
            raise StripeError(400, "Invalid type: must be one of express, custom, or standard", param="type")
        requested = {
            name for name, v in (params.get("capabilities") or {}).items() if _flag(v.get("requested"))
        }
        account: dict[str, Any] = {
            "id": _new_id("acct"),
            "object": "account",
            "type": kind,
            "country": params.get("country") or "US",
            "email": params.get("email"),
            "business_type": params.get("business_type"),
            "capabilities": {name: "inactive" for name in sorted(requested)},
            "charges_enabled": False,
            "payouts_enabled": False,
            "details_submitted": False,
            "created": int(time.time()),
            "default_currency": "usd",
            "metadata": dict(params.get("metadata") or {}),
            "requirements": {
                "currently_due": ["external_account", "individual.dob.day"],
                "disabled_reason": None,
            },
        }
        self.accounts[account["id"]] = account
        return account

    def list_accounts(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._list("/v1/accounts", list(self.accounts.values()), params)

    def get_account(self, params: dict[str, Any], id: str) -> dict[str, Any]:
        return self._account(id)

    def update_account(self, params: dict[str, Any], id: str) -> dict[str, Any]:
        account = self._account(id)
        if "metadata" in params:
            account["metadata"].update(params["metadata"] or {})
        if "email" in params:
            account["email"] = params["email"]
        return account

    def create_account_link(self, params: dict[str, Any]) -> dict[str, Any]:
        for name in ("account", "type"):
            if not params.get(name):
                raise StripeError(
                    400, f"Missing required param: {name}.", code="parameter_missing", param=name
                )
        if params["type"] not in ("account_onboarding", "account_update"):
            raise StripeError(400, f"Invalid type: {params['type']}", param="type")
        self._account(str(params["account"]), param="account")
        token = secrets.token_urlsafe(12)
        self.links[token] = {
            "account": params["account"],
            "return_url": params.get("return_url"),
            "refresh_url": params.get("refresh_url"),
        }
        now = int(time.time())
        return {
            "object": "account_link",
            "created": now,
            "expires_at": now + 300,
            "url": f"{self.url}/connect/onboarding/{params['account']}?link={token}",
        }

    def create_transfer(self, params: dict[str, Any]) -> dict[str, Any]:
        amount = _int(params, "amount", required=True)
        assert amount is not None
        if amount <= 0:
            raise StripeError(
                400, "Invalid positive integer", code="parameter_invalid_integer", param="amount"
            )
        if not params.get("currency"):
            raise StripeError(
                400, "Missing required param: currency.", code="parameter_missing", param="currency"
            )
        destination = str(params.get("destination") or "")
        if not destination:
            raise StripeError(
                400, "Missing required param: destination.", code="parameter_missing", param="destination"
            )
        account = self._account(destination, param="destination")
        if account["capabilities"].get("transfers") != "active":
            raise StripeError(
                400,
                "Your destination account needs to have at least one of the following capabilities enabled: "
                "transfers, crypto_transfers, legacy_payments",
                code="insufficient_capabilities_for_transfer",
                param="destination",
            )
        if amount > self.platform_balance:
            raise StripeError(
                400,
                "You have insufficient available funds in your Stripe account.",
                code="balance_insufficient",
            )
        self.platform_balance -= amount
        transfer: dict[str, Any] = {
            "id": _new_id("tr"),
            "object": "transfer",
            "amount": amount,
            "amount_reversed": 0,
            "currency": str(params["currency"]).lower(),
            "created": int(time.time()),
            "description": params.get("description"),
            "destination": destination,
            "destination_payment": _new_id("py"),
            "livemode": False,
            "metadata": dict(params.get("metadata") or {}),
            "reversals": {"object": "list", "data": [], "has_more": False, "total_count": 0, "url": ""},
            "reversed": False,
            "transfer_group": params.get("transfer_group"),
        }
        transfer["reversals"]["url"] = f"/v1/transfers/{transfer['id']}/reversals"
        self.transfers[transfer["id"]] = transfer
        self._emit_later("transfer.created", transfer)
        return transfer

    def list_transfers(self, params: dict[str, Any]) -> dict[str, Any]:
        found = [
            t
            for t in self.transfers.values()
            if (not params.get("transfer_group") or t["transfer_group"] == params["transfer_group"])
            and (not params.get("destination") or t["destination"] == params["destination"])
        ]
        return self._list("/v1/transfers", found, params)

    def get_transfer(self, params: dict[str, Any], id: str) -> dict[str, Any]:
        return self._transfer(id)

    def create_reversal(self, params: dict[str, Any], id: str) -> dict[str, Any]:
        transfer = self._transfer(id)
        left = transfer["amount"] - transfer["amount_reversed"]
        if left <= 0:
            raise StripeError(
                400, f"Transfer {id} has already been fully reversed.", code="transfer_already_reversed"
            )
        amount = _int(params, "amount", required=False)
        amount = left if amount is None else amount
        if amount <= 0 or amount > left:
            raise StripeError(
                400,
                f"You cannot reverse more than the remaining {left} on this transfer.",
                code="parameter_invalid_integer",
                param="amount",
            )
        if amount > self.balance_of(transfer["destination"]):
            raise StripeError(
                400,
                "The connected account has insufficient funds for this reversal.",
                code="balance_insufficient",
            )
        reversal = {
            "id": _new_id("trr"),
            "object": "transfer_reversal",
            "amount": amount,
            "currency": transfer["currency"],
            "created": int(time.time()),
            "metadata": dict(params.get("metadata") or {}),
            "transfer": id,
        }
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
        transfer["reversals"]["data"].insert(0, reversal)
        transfer["reversals"]["total_count"] += 1
        self.platform_balance += amount
        self._emit_later("transfer.reversed", transfer)
        return reversal

    def list_reversals(self, params: dict[str, Any], id: str) -> dict[str, Any]:
        return self._list(f"/v1/transfers/{id}/reversals", self._transfer(id)["reversals"]["data"], params)

    def create_checkout_session(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("mode") != "payment":
            raise StripeError(400, "This stand-in supports mode=payment only.", param="mode")
        for name in ("success_url", "cancel_url"):
            if not params.get(name):
                raise StripeError(
                    400, f"Missing required param: {name}.", code="parameter_missing", param=name
                )
        items = params.get("line_items") or []
        if not items:
            raise StripeError(
                400, "Missing required param: line_items.", code="parameter_missing", param="line_items"
            )
        total, currency = 0, None
        for i, item in enumerate(items):
            price = item.get("price_data") or {}
            unit = _int(price, "unit_amount", required=True)
            quantity = _int(item, "quantity", required=False) or 1
            assert unit is not None
            if unit <= 0 or quantity <= 0:
                raise StripeError(400, "Invalid positive integer", param=f"line_items[{i}]")
            total += unit * quantity
            currency = currency or str(price.get("currency") or "usd").lower()
        session_id = _new_id("cs_test")
        session: dict[str, Any] = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": total,
            "currency": currency,
            "client_reference_id": params.get("client_reference_id"),
            "metadata": dict(params.get("metadata") or {}),
            "payment_intent": None,  # as in current API versions: made when the customer pays
            "success_url": params["success_url"],
            "cancel_url": params["cancel_url"],
            "created": int(time.time()),
            "expires_at": int(time.time()) + 86_400,
            "url": f"{self.url}/checkout/pay/{session_id}",
            "line_items": items,
            "payment_intent_data": {
                "metadata": dict((params.get("payment_intent_data") or {}).get("metadata") or {})
            },
        }
        self.checkout_sessions[session_id] = session
        return self._public_session(session)

    def get_checkout_session(self, params: dict[str, Any], id: str) -> dict[str, Any]:
        session = self.checkout_sessions.get(id)
        if session is None:
            raise StripeError(404, f"No such checkout.session: '{id}'", code="resource_missing", param="id")
        return self._public_session(session)

    def pay_checkout_session(self, session_id: str) -> dict[str, Any]:
        """What the customer does on the hosted page: pay it with a test card (once; paying again is a no-op)."""
        with self.lock:
            session = self.checkout_sessions.get(session_id)
            if session is None:
                raise KeyError(session_id)
            if session["status"] != "open":
                return self._public_session(session)
            session["status"] = "paying"
        metadata = session["payment_intent_data"]["metadata"]
        intent = self._succeeded_intent(session["amount_total"], session["currency"], metadata)
        with self.lock:
            session.update(status="complete", payment_status="paid", payment_intent=intent["id"])
            snapshot = self._public_session(session)
        self.emit("payment_intent.succeeded", intent)
        self.emit("checkout.session.completed", snapshot)
        return snapshot

    def _succeeded_intent(self, amount: int, currency: str, metadata: dict[str, Any]) -> dict[str, Any]:
        """A confirmed card PaymentIntent: at the upstream localstripe when there is one, else kept here."""
        if self.upstream:
            pm = self._upstream_post(
                "/v1/payment_methods", {"type": "card", **{f"card[{k}]": v for k, v in _TEST_CARD.items()}}
            )
            form = {
                "amount": str(amount),
                "currency": currency,
                "payment_method": pm["id"],
                "confirm": "true",
            }
            form["payment_method_types[0]"] = "card"
            form.update({f"metadata[{k}]": str(v) for k, v in metadata.items()})
            return self._upstream_post("/v1/payment_intents", form)
        intent: dict[str, Any] = {
            "id": _new_id("pi"),
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount,
            "currency": currency,
            "status": "succeeded",
            "created": int(time.time()),
            "metadata": {str(k): str(v) for k, v in metadata.items()},
        }
        with self.lock:
            self.payment_intents[intent["id"]] = intent
        copy: dict[str, Any] = json.loads(json.dumps(intent))
        return copy

    def _upstream_post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        assert self.upstream is not None
        parts = urlsplit(self.upstream)
        conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port or 80, timeout=30)
        try:
            conn.request(
                "POST",
                path,
                body=urlencode(form),
                headers={
                    "Authorization": f"Bearer {self.secret_key}",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            response = conn.getresponse()
            body = json.loads(response.read() or b"{}")
        finally:
            conn.close()
        if response.status >= 300:
            raise StripeError(502, f"upstream {path} answered {response.status}: {body}", type="api_error")
        return dict(body)

    @staticmethod
    def _public_session(session: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in session.items() if k not in ("line_items", "payment_intent_data")}

    def key_lock(self, key: str) -> threading.Lock:
        """One lock per Idempotency-Key: a second request with a key waits for the first, then gets its answer."""
        with self.lock:
            return self._key_locks.setdefault(key, threading.Lock())

    # --- helpers -------------------------------------------------------------------------------------------

    def _account(self, account_id: str, *, param: str | None = None) -> dict[str, Any]:
        account = self.accounts.get(account_id)
        if account is None:
            extra = {"param": param} if param else {}
            raise StripeError(404, f"No such account: '{account_id}'", code="resource_missing", **extra)
        return account

    def _transfer(self, transfer_id: str) -> dict[str, Any]:
        transfer = self.transfers.get(transfer_id)
        if transfer is None:
            raise StripeError(404, f"No such transfer: '{transfer_id}'", code="resource_missing", param="id")
        return transfer

    def _list(self, url: str, items: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        limit = max(1, min(100, _int(params, "limit", required=False) or 10))
        newest = sorted(items, key=lambda o: o.get("created", 0), reverse=True)
        return {"object": "list", "data": newest[:limit], "has_more": len(newest) > limit, "url": url}

    def _emit_later(self, type: str, obj: dict[str, Any]) -> None:
        # After the answer is built: a snapshot, so later changes do not show up in an earlier event.
        snapshot = json.loads(json.dumps(obj))
        timer = threading.Timer(0.05, self.emit, args=(type, snapshot))
        timer.daemon = True
        timer.start()

    def take_failure(self, path: str) -> dict[str, Any] | None:
        """The next injected failure for `path`, if any."""
        with self.lock:
            for i, failure in enumerate(self._failures):
                if path.startswith(failure["path"]):
                    return self._failures.pop(i)
        return None

    def record(self, entry: dict[str, Any]) -> None:
        """Keep one request's summary."""
        with self.lock:
            self._requests.append(entry)

    def idempotent(self, key: str, fingerprint: str) -> tuple[int, Any] | None:
        """The saved answer for `key`, or None; 400 idempotency_error when it was used with other parameters."""
        with self.lock:
            saved = self._idempotency.get(key)
        if saved is None:
            return None
        if saved[0] != fingerprint:
            raise StripeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they were first used "
                f"with. Try using a key other than '{key}' if you meant to execute a different request.",
                type="idempotency_error",
            )
        return saved[1], saved[2]

    def save(self, key: str, fingerprint: str, status: int, body: Any) -> None:
        """Remember the answer to `key`."""
        with self.lock:
            self._idempotency.setdefault(key, (fingerprint, status, body))


def _post(url: str, payload: bytes, headers: dict[str, str]) -> int | None:
    """POST JSON; the status, or None when nothing answered."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port or 80, timeout=10)
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        conn.request("POST", target, body=payload, headers={"Content-Type": "application/json", **headers})
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        conn.close()


class _Handler(BaseHTTPRequestHandler):
    server: ConnectStandin
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", _new_id("req"))
        self.send_header("Stripe-Version", API_VERSION)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self.close_connection = True
            raise StripeError(413, "Request body too large")
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool:
        scheme, _, credentials = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer":
            return hmac.compare_digest(credentials.strip(), self.server.secret_key)
        if scheme.lower() == "basic":
            try:
                user = base64.b64decode(credentials.strip()).decode().partition(":")[0]
            except ValueError:
                return False
            return hmac.compare_digest(user, self.server.secret_key)
        return False

    def _handle(self) -> None:
        split = urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        try:
            raw = self._body()
        except StripeError as exc:
            self._send(exc.status, exc.body)
            return
        if path.startswith("/_local/"):
            self._control(path, raw)
        elif path.startswith("/connect/onboarding/"):
            self._onboarding(path, split.query)
        elif path.startswith("/checkout/pay/"):
            self._checkout_page(path)
        elif path.startswith("/v1/"):
            self._api(path, split.query, raw)
        else:
            self._send(
                404, {"error": {"type": "invalid_request_error", "message": f"Unrecognized path {path}"}}
            )

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle

    def _api(self, path: str, query: str, raw: bytes) -> None:
        key = self.headers.get("Idempotency-Key")
        entry: dict[str, Any] = {
            "at": time.time(),
            "method": self.command,
            "path": path,
            "query": query,
            "headers": {n: self.headers[n] for n in _RECORDED_HEADERS if n in self.headers},
            "idempotency_key": key,
        }
        pairs = parse_qsl(query, keep_blank_values=True) + parse_qsl(raw.decode("utf-8", "replace"), True)
        params = parse_form(pairs)
        entry["params"] = params
        try:
            status, body, replayed = self._dispatch(path, params, key, pairs, raw)
        except StripeError as exc:
            status, body, replayed = exc.status, exc.body, False
        entry["status"] = status
        entry["replayed"] = replayed
        self.server.record(entry)
        delay = self.server.take_slow(path)
        if delay:
            time.sleep(delay)
        with contextlib.suppress(OSError):  # a client that timed out has gone; the call took effect anyway
            self._send(status, body, {"Idempotent-Replayed": "true"} if replayed else None)

    def _dispatch(
        self, path: str, params: dict[str, Any], key: str | None, pairs: list[tuple[str, str]], raw: bytes
    ) -> tuple[int, Any, bool]:
        if not self._authorized():
            given = (self.headers.get("Authorization") or "")[-4:]
            raise StripeError(401, f"Invalid API Key provided: ****{given}")
        route = None
        for method, pattern, name in _ROUTES:
            match = pattern.match(path)
            if match and method == self.command:
                route = (name, match.groupdict())
                break
        if route is None:
            if self.server.upstream and not _OWN_PATH.match(path):
                return self._forward_once(path, pairs, key, raw)
            raise StripeError(
                404,
                f"Unrecognized request URL ({self.command}: {path}). Please see https://stripe.com/docs or we can "
                "help at https://support.stripe.com/.",
            )
        failure = self.server.take_failure(path)
        if failure is not None:
            kind = "api_error" if failure["status"] >= 500 else "invalid_request_error"
            extra = {"code": failure["code"]} if failure["code"] else {}
            raise StripeError(failure["status"], "Injected failure", type=kind, **extra)
        fingerprint = hashlib.sha256(f"{self.command} {path} {urlencode(sorted(pairs))}".encode()).hexdigest()
        if key and self.command == "POST":
            saved = self.server.idempotent(key, fingerprint)
            if saved is not None:
                return saved[0], saved[1], True
        name, args = route
        with self.server.lock:
            try:
                status, body = 200, getattr(self.server, name)(params, **args)
            except StripeError as exc:
                status, body = exc.status, exc.body
            body = json.loads(json.dumps(body))
        if key and self.command == "POST" and status < 500:
            self.server.save(key, fingerprint, status, body)
        return status, body, False

    def _forward_once(
        self, path: str, pairs: list[tuple[str, str]], key: str | None, raw: bytes
    ) -> tuple[int, Any, bool]:
        """Pass on a call we do not serve; a keyed POST is answered once, then replayed (Stripe's semantics)."""
        if not (key and self.command == "POST"):
            return self._forward(raw)
        fingerprint = hashlib.sha256(f"{self.command} {path} {urlencode(sorted(pairs))}".encode()).hexdigest()
        with self.server.key_lock(key):
            saved = self.server.idempotent(key, fingerprint)
            if saved is not None:
                return saved[0], saved[1], True
            status, body, replayed = self._forward(raw)
            if status < 500:
                self.server.save(key, fingerprint, status, body)
            return status, body, replayed

    def _checkout_page(self, path: str) -> None:
        session_id = path.rsplit("/", 1)[-1]
        try:
            session = self.server.pay_checkout_session(session_id)
        except KeyError:
            self._send(
                404, {"error": {"type": "invalid_request_error", "message": "No such checkout session"}}
            )
            return
        except StripeError as exc:
            self._send(exc.status, exc.body)
            return
        self.send_response(302)
        self.send_header("Location", str(session["success_url"]))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _forward(self, raw: bytes) -> tuple[int, Any, bool]:
        """Pass a call this stand-in does not serve on to the upstream Stripe stand-in (localstripe)."""
        assert self.server.upstream is not None
        parts = urlsplit(self.server.upstream)
        conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port or 80, timeout=30)
        headers = {n: v for n, v in self.headers.items() if n.lower() not in ("host", "content-length")}
        try:
            conn.request(self.command, self.path, body=raw or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except OSError as exc:
            raise StripeError(
                502, f"Upstream {self.server.upstream} did not answer: {exc}", type="api_error"
            ) from exc
        finally:
            conn.close()
        try:
            return (
                response.status,
                json.loads(data or b"{}"),
                response.getheader("Idempotent-Replayed") == "true",
            )
        except ValueError:
            return 502, {"error": {"type": "api_error", "message": "Upstream answered non-JSON"}}, False

    def _onboarding(self, path: str, query: str) -> None:
        account_id = path.rsplit("/", 1)[-1]
        token = dict(parse_qsl(query)).get("link", "")
        link = self.server.links.get(token)
        if link is None or link["account"] != account_id or account_id not in self.server.accounts:
            self._send(
                404,
                {"error": {"type": "invalid_request_error", "message": "This link is invalid or expired"}},
            )
            return
        self.server.enable_account(account_id)
        target = link.get("return_url")
        if target:
            self.send_response(302)
            self.send_header("Location", str(target))
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._send(200, {"account": account_id, "onboarded": True})

    def _control(self, path: str, raw: bytes) -> None:
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self._send(400, {"detail": "expected a JSON body"})
            return
        if not isinstance(body, dict):
            self._send(400, {"detail": "expected a JSON object"})
            return
        server = self.server
        if path == "/_local/requests" and self.command == "GET":
            self._send(200, server.requests())
        elif path == "/_local/requests" and self.command == "DELETE":
            server.clear()
            self._send(200, {"cleared": True})
        elif path == "/_local/events" and self.command == "GET":
            self._send(200, server.events())
        elif path == "/_local/fail" and self.command == "POST":
            server.fail_next(
                int(body.get("status", 503)), int(body.get("times", 1)), path=str(body.get("path", "")),
                code=body.get("code"),
            )  # fmt: skip
            self._send(200, {"ok": True})
        elif path == "/_local/slow" and self.command == "POST":
            server.slow_next(
                float(body.get("seconds", 1)), int(body.get("times", 1)), path=str(body.get("path", ""))
            )
            self._send(200, {"ok": True})
        elif path == "/_local/webhooks" and self.command == "POST" and body.get("url") and body.get("secret"):
            server.add_webhook(str(body["url"]), str(body["secret"]))
            self._send(200, {"ok": True})
        elif (m := re.match(r"^/_local/accounts/([^/]+)/(enable|payouts)$", path)) and self.command == "POST":
            try:
                if m.group(2) == "enable":
                    result = server.enable_account(
                        m.group(1), payouts_enabled=body.get("payouts_enabled", True)
                    )
                else:
                    amount = body.get("amount")
                    result = server.pay_out(
                        m.group(1),
                        status=str(body.get("status", "paid")),
                        amount=int(amount) if amount is not None else None,
                        failure_code=body.get("failure_code"),
                    )
            except KeyError:
                self._send(404, {"detail": f"no such account {m.group(1)}"})
                return
            self._send(200, result)
        else:
            self._send(404, {"detail": f"no control {self.command} {path}"})


@contextlib.contextmanager
def running(
    *,
    secret_key: str = devenv.STRIPE_SECRET_KEY,
    webhooks: list[tuple[str, str]] | None = None,
    upstream: str | None = None,
    platform_balance: int = 10_000_000_00,
    quiet: bool = True,
) -> Iterator[ConnectStandin]:
    """The stand-in on a free port (background thread): `.url`, `.requests()`, `.fail_next()`, `.pay_out()`."""
    server = ConnectStandin(
        0,
        secret_key=secret_key,
        webhooks=webhooks,
        upstream=upstream,
        platform_balance=platform_balance,
        quiet=quiet,
    )
    with serving.in_thread(server, "connect-standin"):
        yield server


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument(
        "--secret-key", default=devenv.STRIPE_SECRET_KEY, help="the STRIPE_SECRET_KEY to accept"
    )
    parser.add_argument("--webhook-url", action="append", default=[], help="deliver events here (repeatable)")
    parser.add_argument(
        "--webhook-secret",
        default=devenv.STRIPE_WEBHOOK_SECRET,
        help="signing secret for --webhook-url (STRIPE_CONNECT_WEBHOOK_SECRET or STRIPE_WEBHOOK_SECRET)",
    )
    parser.add_argument("--upstream", help="pass other /v1 calls to this Stripe stand-in (localstripe)")
    parser.add_argument(
        "--platform-balance", type=int, default=10_000_000_00, help="cents available to transfer"
    )
    parser.add_argument("--quiet", action="store_true", help="no access log")
    args = parser.parse_args(argv)
    try:
        server = ConnectStandin(
            args.port,
            secret_key=args.secret_key,
            webhooks=[(url, args.webhook_secret) for url in args.webhook_url],
            upstream=args.upstream,
            platform_balance=args.platform_balance,
            quiet=args.quiet,
        )
    except OSError as exc:
        print(f"stripe connect stand-in: cannot bind {HOST}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return serving.serve_until_signal(server, "connect-standin", server.url)


if __name__ == "__main__":
    sys.exit(main())
