"""A local Supabase Auth (JWKS, Admin API user update): `python -m localdev.supabase_standin --port 8083`.

Serves `GET /auth/v1/.well-known/jwks.json` (one ES256 key, generated at start or kept in `--key-file`) and
`PUT|GET /auth/v1/admin/users/{id}` (needs `apikey` and `Authorization: Bearer` both equal to the service-role
key). Every request is recorded: `GET /_local/requests` lists them, `DELETE /_local/requests` forgets them,
`POST /_local/fail {"status": 503, "times": 1}` makes the next admin calls fail.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import re
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from localdev import devenv, serving

HOST = "127.0.0.1"
DEFAULT_PORT = 8083
JWKS_PATH = "/auth/v1/.well-known/jwks.json"
_ADMIN_USER = re.compile(r"^/auth/v1/admin/users/(?P<id>[^/]+)/?$")
_RECORDED_HEADERS = ("apikey", "authorization", "content-type")
_MAX_BODY = 1024 * 1024
_NOT_FOUND = {"code": 404, "error_code": "not_found", "msg": "not found"}
_USER_NOT_FOUND = {"code": 404, "error_code": "user_not_found", "msg": "User not found"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_or_create_key(path: Path | None) -> ec.EllipticCurvePrivateKey:
    """The P-256 signing key from `path` (PEM), creating the file if missing; a fresh key when no path."""
    if path is not None and path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError(f"{path}: not a P-256 EC private key")
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    return key


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """The public half as a JWK like Supabase publishes, `kid` = RFC 7638 thumbprint."""
    numbers = key.public_key().public_numbers()
    core = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }
    kid = _b64url(hashlib.sha256(json.dumps(core, separators=(",", ":"), sort_keys=True).encode()).digest())
    return {**core, "alg": "ES256", "ext": True, "key_ops": ["verify"], "kid": kid, "use": "sig"}


class SupabaseStandin(ThreadingHTTPServer):
    """The HTTP server, its signing key, the users it has updated and the requests it has seen."""

    daemon_threads = True

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        *,
        service_role_key: str | None = None,
        key_file: Path | None = None,
        empty_jwks: bool = False,
        quiet: bool = False,
    ) -> None:
        super().__init__((HOST, port), _Handler)
        self.service_role_key = service_role_key or devenv.service_role_key()
        self.private_key = load_or_create_key(key_file)
        self.jwk = public_jwk(self.private_key)
        self.empty_jwks = empty_jwks
        self.quiet = quiet
        self.users: dict[str, dict[str, Any]] = {}
        self._requests: list[dict[str, Any]] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """What SUPABASE_URL should be."""
        return f"http://{HOST}:{self.server_address[1]}"

    @property
    def jwks_url(self) -> str:
        """The JWKS endpoint."""
        return self.url + JWKS_PATH

    @property
    def issuer(self) -> str:
        """The `iss` Supabase puts in access tokens."""
        return self.url + "/auth/v1"

    @property
    def kid(self) -> str:
        """The key id published in the JWKS."""
        return str(self.jwk["kid"])

    @property
    def private_key_pem(self) -> bytes:
        """The signing key as PKCS#8 PEM."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def jwks(self) -> dict[str, Any]:
        """The key set served at JWKS_PATH."""
        return {"keys": [] if self.empty_jwks else [self.jwk]}

    def sign(
        self, claims: Mapping[str, Any], *, kid: str | None = None, headers: Mapping[str, Any] | None = None
    ) -> str:
        """An ES256 token signed with the published key (header `kid` defaults to the published one)."""
        import jwt

        header = {"kid": kid or self.kid, **(headers or {})}
        return jwt.encode(dict(claims), self.private_key, algorithm="ES256", headers=header)

    def requests(self, path_prefix: str | None = None) -> list[dict[str, Any]]:
        """Requests recorded so far, oldest first (only paths starting with `path_prefix` if given)."""
        with self._lock:
            return [dict(r) for r in self._requests if r["path"].startswith(path_prefix or "")]

    def clear(self) -> None:
        """Forget recorded requests, users and pending failures."""
        with self._lock:
            self._requests.clear()
            self.users.clear()
            self._failures.clear()

    def fail_next(self, status: int = 503, times: int = 1) -> None:
        """Answer the next `times` admin calls with `status` (after the key check)."""
        with self._lock:
            self._failures.extend([status] * times)

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(entry)

    def _take_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None


def _now() -> str:
    return datetime.now(UTC).isoformat()


class _Handler(BaseHTTPRequestHandler):
    server: SupabaseStandin
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)

    def _reply(self, status: int, body: Any, entry: dict[str, Any] | None = None) -> None:
        if entry is not None:
            entry["status"] = status
            self.server._record(entry)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _entry(self, path: str, body: Any = None) -> dict[str, Any]:
        headers = {name: self.headers[name] for name in _RECORDED_HEADERS if name in self.headers}
        return {"at": _now(), "method": self.command, "path": path, "headers": headers, "body": body}

    def _read_json(self) -> tuple[Any, str | None]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            self.close_connection = True
            return None, "body too large"
        raw = self.rfile.read(length)
        if not raw:
            return None, "a JSON body is required"
        try:
            return json.loads(raw), None
        except ValueError:
            return raw.decode("utf-8", errors="replace"), "the body is not JSON"

    def _authorized(self) -> tuple[int, dict[str, Any]] | None:
        """None when both keys are the service-role key, else the 401 to send."""
        key = self.server.service_role_key
        if self.headers.get("apikey") != key:
            hint = "Double check your Supabase `anon` or `service_role` API key."
            return 401, {"message": "Invalid API key", "hint": hint}
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != key:
            return 401, {"code": 401, "error_code": "not_admin", "msg": "User not allowed"}
        return None

    def _user(self, user_id: str) -> dict[str, Any]:
        now = _now()
        return self.server.users.setdefault(
            user_id,
            {
                "id": user_id,
                "aud": "authenticated",
                "role": "authenticated",
                "email": "",
                "phone": "",
                "app_metadata": {"provider": "email", "providers": ["email"]},
                "user_metadata": {},
                "identities": [],
                "created_at": now,
                "updated_at": now,
                "is_anonymous": False,
            },
        )

    def _admin(self, user_id: str, body: Any, entry: dict[str, Any]) -> None:
        denied = self._authorized()
        if denied is not None:
            self._reply(*denied, entry=entry)
            return
        failure = self.server._take_failure()
        if failure is not None:
            body = {"code": failure, "error_code": "unexpected_failure", "msg": "injected failure"}
            self._reply(failure, body, entry)
            return
        try:
            uid = str(uuid.UUID(user_id))
        except ValueError:
            self._reply(404, _USER_NOT_FOUND, entry)
            return
        if self.command == "GET":
            with self.server._lock:
                found = self.server.users.get(uid)
                user = json.loads(json.dumps(found)) if found is not None else None
            if user is None:
                self._reply(404, _USER_NOT_FOUND, entry)
            else:
                self._reply(200, user, entry)
            return
        problem = _validate_update(body)
        if problem is not None:
            self._reply(400, {"code": 400, "error_code": "validation_failed", "msg": problem}, entry)
            return
        with self.server._lock:
            user = self._user(uid)
            for field in ("user_metadata", "app_metadata"):
                for k, v in (body.get(field) or {}).items():
                    # GoTrue merges metadata key by key; a null value removes the key.
                    if v is None:
                        user[field].pop(k, None)
                    else:
                        user[field][k] = v
            for field in ("email", "phone", "role"):
                if isinstance(body.get(field), str):
                    user[field] = body[field]
            user["updated_at"] = _now()
            reply = json.loads(json.dumps(user))
        self._reply(200, reply, entry)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path.rstrip("/") == "/_local/requests":
            self._reply(200, self.server.requests())
            return
        entry = self._entry(path)
        if path == JWKS_PATH:
            self._reply(200, self.server.jwks(), entry)
        elif path.rstrip("/") == "/auth/v1/health":
            self._reply(200, {"name": "GoTrue", "description": "digis local stand-in"}, entry)
        elif match := _ADMIN_USER.match(path):
            self._admin(match.group("id"), None, entry)
        else:
            self._reply(404, _NOT_FOUND, entry)

    def do_PUT(self) -> None:
        path = urlsplit(self.path).path
        body, problem = self._read_json()
        entry = self._entry(path, body)
        match = _ADMIN_USER.match(path)
        if match is None:
            self._reply(404, _NOT_FOUND, entry)
        elif problem is not None:
            denied = self._authorized()
            if denied is not None:
                self._reply(*denied, entry=entry)
            else:
                self._reply(400, {"code": 400, "error_code": "bad_json", "msg": problem}, entry)
        else:
            self._admin(match.group("id"), body, entry)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path.rstrip("/") != "/_local/fail":
            body, _ = self._read_json()
            self._reply(404, _NOT_FOUND, self._entry(path, body))
            return
        body, problem = self._read_json()
        if problem is not None or not isinstance(body, dict):
            self._reply(400, {"detail": problem or "expected a JSON object"})
            return
        self.server.fail_next(int(body.get("status", 503)), int(body.get("times", 1)))
        self._reply(200, {"ok": True})

    def do_DELETE(self) -> None:
        if urlsplit(self.path).path.rstrip("/") == "/_local/requests":
            self.server.clear()
            self._reply(200, {"cleared": True})
        else:
            self._reply(404, _NOT_FOUND)


def _validate_update(body: Any) -> str | None:
    """Why an admin update body is refused, or None."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if "user_metadata" not in body and "app_metadata" not in body:
        return "nothing to update: send user_metadata (or app_metadata)"
    for field in ("user_metadata", "app_metadata"):
        if field in body and not isinstance(body[field], dict):
            return f"{field} must be a JSON object"
    return None


@contextlib.contextmanager
def running(
    *,
    service_role_key: str | None = None,
    key_file: Path | None = None,
    empty_jwks: bool = False,
    quiet: bool = True,
) -> Iterator[SupabaseStandin]:
    """The stand-in on a free port (background thread): `.url`, `.sign()`, `.private_key`, `.requests()`."""
    server = SupabaseStandin(
        0, service_role_key=service_role_key, key_file=key_file, empty_jwks=empty_jwks, quiet=quiet
    )
    with serving.in_thread(server, "supabase-standin"):
        yield server


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--service-role-key", default=devenv.service_role_key())
    parser.add_argument("--key-file", type=Path, help="PEM P-256 key to sign with (created if missing)")
    parser.add_argument("--empty-jwks", action="store_true", help="publish no keys (an HS256-only project)")
    args = parser.parse_args(argv)
    server = SupabaseStandin(
        args.port, service_role_key=args.service_role_key, key_file=args.key_file, empty_jwks=args.empty_jwks
    )
    note = f"JWKS: {server.jwks_url} (kid {server.kid})"
    return serving.serve_until_signal(server, "supabase-standin", server.url, note)


if __name__ == "__main__":
    sys.exit(main())
