"""The local QStash, driven by the real `qstash` SDK and checked by its `Receiver`."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from qstash import QStash, Receiver
from qstash.errors import QStashError, SignatureError
from qstash.message import PublishResponse

from localdev.qstash_server import Handle, LocalQStash, parse_duration_s, running

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-local-qstash-token"
CURRENT = "sig_current_test_key_0123456789abcdef0123"
NEXT = "sig_next_test_key_0123456789abcdef01234567"
OTHER = "sig_someone_elses_key_0123456789abcdef0123"


@dataclass
class Received:
    """One request as the destination saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Destination:
    """A tiny HTTP server that records requests and answers scripted statuses, then 200."""

    def __init__(self, statuses: Sequence[int] = ()) -> None:
        self.requests: list[Received] = []
        self._statuses = list(statuses)
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer._lock:
                    outer.requests.append(
                        Received(self.command, self.path, dict(self.headers.items()), body, time.time())
                    )
                    status = outer._statuses.pop(0) if outer._statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def qstash() -> Iterator[Handle]:
    with running(token=TOKEN, current_signing_key=CURRENT, next_signing_key=NEXT, retry_base_ms=20) as handle:
        yield handle


@pytest.fixture
def client(qstash: Handle) -> QStash:
    return QStash(qstash.token, base_url=qstash.url, retry=False)


@pytest.fixture
def destination() -> Iterator[Callable[..., Destination]]:
    made: list[Destination] = []

    def make(statuses: Sequence[int] = ()) -> Destination:
        made.append(Destination(statuses))
        return made[-1]

    yield make
    for d in made:
        d.close()


def _publish(client: QStash, **kwargs: Any) -> PublishResponse:
    """publish_json to a single URL (which always answers one PublishResponse)."""
    response = client.message.publish_json(**kwargs)
    assert isinstance(response, PublishResponse)
    return response


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_published_message_is_delivered_with_a_signature_the_sdk_receiver_accepts(
    qstash: Handle, client: QStash, destination: Callable[..., Destination]
) -> None:
    dest = destination()
    url = f"{dest.url}/api/jobs/bill-call?source=test"
    published = _publish(client, url=url, body={"callId": "c1", "minute": 2}, headers={"X-Trace": "t-1"})

    log = qstash.wait_for_deliveries(1)
    assert [(d["messageId"], d["status"], d["retried"]) for d in log] == [(published.message_id, 200, 0)]
    [got] = dest.requests
    assert (got.method, got.path) == ("POST", "/api/jobs/bill-call?source=test")
    assert got.body == b'{"callId": "c1", "minute": 2}'
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Trace"] == "t-1"
    assert not any(k.lower().startswith("upstash-forward-") for k in got.headers)
    assert got.headers["Upstash-Message-Id"] == published.message_id
    assert got.headers["Upstash-Retried"] == "0"

    signature = got.headers["Upstash-Signature"]
    Receiver(CURRENT, NEXT).verify(signature=signature, body=got.body.decode(), url=url)
    with pytest.raises(SignatureError):
        Receiver(OTHER, OTHER).verify(signature=signature, body=got.body.decode(), url=url)
    with pytest.raises(SignatureError):
        Receiver(CURRENT, NEXT).verify(
            signature=signature, body=got.body.decode(), url=f"{dest.url}/api/jobs/other"
        )
    claims = jwt.decode(signature, CURRENT, algorithms=["HS256"], issuer="Upstash")
    assert claims["sub"] == url
    assert claims["exp"] - claims["nbf"] == 300
    assert claims["iat"] == claims["nbf"] and claims["jti"]
    assert "=" not in claims["body"]


def test_delay_holds_the_delivery_until_it_is_due(
    qstash: Handle, client: QStash, destination: Callable[..., Destination]
) -> None:
    dest = destination()
    before = time.time()
    published = _publish(client, url=f"{dest.url}/job", body={}, delay="1s")

    time.sleep(0.5)
    assert dest.requests == []
    pending = client.message.get(published.message_id)
    assert pending.not_before - pending.created_at == 1000
    qstash.wait_for_deliveries(1, timeout_s=3)
    assert len(dest.requests) == 1
    assert dest.requests[0].at - before >= 1.0


def test_not_before_holds_the_delivery_until_that_second(
    qstash: Handle, client: QStash, destination: Callable[..., Destination]
) -> None:
    dest = destination()
    not_before = int(time.time()) + 2
    _publish(client, url=f"{dest.url}/job", body={}, not_before=not_before)

    time.sleep(0.3)
    assert dest.requests == []
    [attempt] = qstash.wait_for_deliveries(1, timeout_s=4)
    assert attempt["at"] >= not_before * 1000


def test_deduplication_id_delivers_once_and_returns_the_first_id(
    qstash: Handle, client: QStash, destination: Callable[..., Destination]
) -> None:
    dest = destination()
    first = _publish(client, url=f"{dest.url}/job", body={"n": 1}, deduplication_id="bill:c1:2")
    second = _publish(client, url=f"{dest.url}/job", body={"n": 1}, deduplication_id="bill:c1:2")
    qstash.wait_for_deliveries(1)
    third = _publish(client, url=f"{dest.url}/job", body={"n": 1}, deduplication_id="bill:c1:2")

    assert (first.deduplicated, second.deduplicated, third.deduplicated) == (False, True, True)
    assert first.message_id == second.message_id == third.message_id
    time.sleep(0.3)
    assert len(dest.requests) == 1
    assert len(qstash.deliveries()) == 1


def test_failed_deliveries_are_retried_with_upstash_retried_counting_up(
    qstash: Handle, client: QStash, destination: Callable[..., Destination]
) -> None:
    dest = destination(statuses=[500, 500])
    url = f"{dest.url}/job"
    published = _publish(client, url=url, body={"x": 1}, retries=3)

    log = qstash.wait_for_deliveries(3)
    time.sleep(0.2)  # a fourth attempt would show up by now
    assert [(d["retried"], d["status"]) for d in qstash.deliveries()] == [(0, 500), (1, 500), (2, 200)]
    assert [r.headers["Upstash-Retried"] for r in dest.requests] == ["0", "1", "2"]
    assert {r.headers["Upstash-Message-Id"] for r in dest.requests} == {published.message_id}
    for r in dest.requests:  # every attempt carries a fresh, valid signature
        Receiver(CURRENT, NEXT).verify(
            signature=r.headers["Upstash-Signature"], body=r.body.decode(), url=url
        )
    # Backoff: base 20 ms, then 40 ms.
    assert log[1]["at"] - log[0]["at"] >= 15
    assert log[2]["at"] - log[1]["at"] >= 35


def test_delivery_gives_up_after_the_retry_count(
    qstash: Handle, client: QStash, destination: Callable[..., Destination]
) -> None:
    dest = destination(statuses=[500] * 10)
    published = _publish(client, url=f"{dest.url}/job", body={}, retries=1)

    qstash.wait_for_deliveries(2)
    time.sleep(0.3)
    assert [d["status"] for d in qstash.deliveries()] == [500, 500]
    states = {m["messageId"]: m["state"] for m in httpx.get(f"{qstash.url}/_local/messages").json()}
    assert states[published.message_id] == "FAILED"
    with pytest.raises(QStashError):
        client.message.get(published.message_id)


def test_connection_errors_are_retried(qstash: Handle, client: QStash) -> None:
    _publish(client, url=f"http://127.0.0.1:{_free_port()}/job", body={}, retries=2)

    log = qstash.wait_for_deliveries(3)
    assert [(d["retried"], d["status"]) for d in log] == [(0, None), (1, None), (2, None)]
    assert all("ConnectError" in d["error"] for d in log)


def test_cancelled_message_is_never_delivered(
    qstash: Handle, client: QStash, destination: Callable[..., Destination]
) -> None:
    dest = destination()
    published = _publish(client, url=f"{dest.url}/job", body={}, delay=1)
    client.message.cancel(published.message_id)

    time.sleep(1.3)
    assert dest.requests == []
    with pytest.raises(QStashError):
        client.message.get(published.message_id)


def test_upstash_method_is_the_delivery_method(
    qstash: Handle, client: QStash, destination: Callable[..., Destination]
) -> None:
    dest = destination()
    client.message.publish(url=f"{dest.url}/job", body="raw", content_type="text/plain", method="PUT")

    qstash.wait_for_deliveries(1)
    [got] = dest.requests
    assert (got.method, got.body, got.headers["Content-Type"]) == ("PUT", b"raw", "text/plain")


def test_enqueued_message_is_delivered(
    qstash: Handle, client: QStash, destination: Callable[..., Destination]
) -> None:
    dest = destination()
    client.message.enqueue_json(queue="billing", url=f"{dest.url}/job", body={"q": True})

    qstash.wait_for_deliveries(1)
    assert [r.body for r in dest.requests] == [b'{"q": true}']


def test_wrong_token_is_refused_and_nothing_is_delivered(
    qstash: Handle, destination: Callable[..., Destination]
) -> None:
    dest = destination()
    with pytest.raises(QStashError, match="401"):
        _publish(QStash("not-the-token", base_url=qstash.url, retry=False), url=f"{dest.url}/j", body={})
    time.sleep(0.2)
    assert qstash.deliveries() == []


def test_signing_keys_shorter_than_32_bytes_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        LocalQStash(token=TOKEN, current_signing_key="sig_short", next_signing_key=NEXT)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("60s", 60), ("2m", 120), ("1h30m", 5400), ("1d", 86400)]
)
def test_delay_strings_parse_like_qstash(text: str, seconds: int) -> None:
    assert parse_duration_s(text) == seconds


def test_cli_prints_ready_and_stops_on_sigterm() -> None:
    args = ["--port", "0", "--token", TOKEN, "--current-signing-key", CURRENT, "--next-signing-key", NEXT]
    proc = subprocess.Popen(
        [sys.executable, "-m", "localdev.qstash_server", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()  # bounded by the pytest timeout
        assert line.startswith("ready http://127.0.0.1:"), line
        url = line.removeprefix("ready ")
        assert httpx.get(f"{url}/_local/health", timeout=5).json() == {"ok": True}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
