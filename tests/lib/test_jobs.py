"""lib.jobs: publishing through the local QStash, verifying deliveries, claiming them once, and cron auth."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lib import config, db, jobs
from lib.http import create_app
from localdev.qstash_server import Handle, running, sign
from tests.conftest import SetEnv

OTHER_KEY = "sig_someone_elses_key_0123456789abcdef0123"


def _app(seen: list[jobs.JobMessage]) -> FastAPI:
    app = create_app(rate_limit=None)

    @app.post("/api/jobs/echo")
    def echo(job: jobs.QStashJob) -> dict[str, Any]:
        seen.append(job)
        return {"body": job.body, "messageId": job.message_id, "retried": job.retried}

    @app.api_route("/api/cron/sweep", methods=["GET", "POST"])
    def sweep(_: jobs.CronAuth) -> dict[str, bool]:
        return {"swept": True}

    return app


@pytest.fixture
def qstash() -> Iterator[Handle]:
    with running(
        token=os.environ["QSTASH_TOKEN"],
        current_signing_key=os.environ["QSTASH_CURRENT_SIGNING_KEY"],
        next_signing_key=os.environ["QSTASH_NEXT_SIGNING_KEY"],
        retry_base_ms=20,
    ) as handle:
        yield handle


@pytest.fixture
def served() -> Iterator[tuple[str, list[jobs.JobMessage]]]:
    """The test app on a real port (QStash delivers over HTTP), and the jobs it accepted."""
    seen: list[jobs.JobMessage] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(_app(seen), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", seen
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def via_local_qstash(set_env: SetEnv, qstash: Handle, served: tuple[str, list[jobs.JobMessage]]) -> Handle:
    """Settings pointing lib.jobs at the local QStash, and PUBLIC_BASE_URL at the served app."""
    set_env(QSTASH_URL=qstash.url, PUBLIC_BASE_URL=served[0])
    return qstash


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(_app([]), raise_server_exceptions=False)


def _signed(
    body: bytes, *, url: str | None = None, key: str | None = None, now: float | None = None
) -> dict[str, str]:
    """Delivery headers exactly as QStash sends them (signed by localdev's signer)."""
    base = config.get_settings().public_base_url
    signature = sign(
        key or os.environ["QSTASH_CURRENT_SIGNING_KEY"],
        url=url or f"{base}/api/jobs/echo",
        body=body,
        now=now,
    )
    return {
        "Upstash-Signature": signature,
        "Upstash-Message-Id": "msg_test_1",
        "Upstash-Retried": "2",
        "Content-Type": "application/json",
    }


# --- publish


def test_published_job_reaches_the_function_and_passes_verification(
    via_local_qstash: Handle, served: tuple[str, list[jobs.JobMessage]]
) -> None:
    message_id = jobs.publish("/api/jobs/echo", {"callId": "c1", "minute": 3})

    assert message_id is not None
    [attempt] = via_local_qstash.wait_for_deliveries(1)
    assert (attempt["messageId"], attempt["status"]) == (message_id, 200), attempt
    [job] = served[1]
    assert job == jobs.JobMessage(body={"callId": "c1", "minute": 3}, message_id=message_id, retried=0)


def test_publish_with_a_dedup_id_delivers_once(
    via_local_qstash: Handle, served: tuple[str, list[jobs.JobMessage]]
) -> None:
    first = jobs.publish("/api/jobs/echo", {"n": 1}, dedup_id="bill:c1:1")
    second = jobs.publish("/api/jobs/echo", {"n": 1}, dedup_id="bill:c1:1")

    assert first is not None and first == second
    via_local_qstash.wait_for_deliveries(1)
    time.sleep(0.2)
    assert len(served[1]) == 1


def test_publish_with_a_delay_is_due_that_much_later(via_local_qstash: Handle) -> None:
    message_id = jobs.publish("/api/jobs/echo", {}, delay_s=60)

    [message] = [
        m for m in httpx.get(f"{via_local_qstash.url}/_local/messages").json() if m["messageId"] == message_id
    ]
    assert message["notBefore"] - message["createdAt"] == 60_000
    assert message["state"] == "CREATED"


def test_publish_after_commit_publishes_only_when_the_transaction_commits(via_local_qstash: Handle) -> None:
    with pytest.raises(RuntimeError), db.transaction() as conn:
        jobs.publish_after_commit(conn, "/api/jobs/echo", {"rolled": "back"})
        raise RuntimeError("roll back")
    with db.transaction() as conn:
        jobs.publish_after_commit(conn, "/api/jobs/echo", {"committed": True}, delay_s=60)
        assert httpx.get(f"{via_local_qstash.url}/_local/messages").json() == []  # not before the commit

    bodies = [json.loads(m["body"]) for m in httpx.get(f"{via_local_qstash.url}/_local/messages").json()]
    assert bodies == [{"committed": True}]


def test_publish_returns_none_and_logs_when_qstash_is_down(caplog: pytest.LogCaptureFixture) -> None:
    # tests/conftest.py points QSTASH_URL at a port nobody listens on.
    with caplog.at_level(logging.ERROR, logger="digis.jobs"):
        assert jobs.publish("/api/jobs/echo", {"n": 1}) is None
    assert "job publish to /api/jobs/echo failed" in caplog.text


def test_publish_gives_up_within_the_timeout_when_qstash_hangs(set_env: SetEnv) -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        set_env(QSTASH_URL=f"http://127.0.0.1:{silent.getsockname()[1]}", QSTASH_TIMEOUT_S="0.3")
        started = time.monotonic()
        assert jobs.publish("/api/jobs/echo", {}) is None
        assert time.monotonic() - started < 2


def test_publish_refuses_a_path_that_is_not_canonical() -> None:
    with pytest.raises(ValueError, match="canonical"):
        jobs.publish("/jobs/echo", {})


# --- the /jobs dependency


@pytest.mark.parametrize("path", ["/api/jobs/echo", "/api/v1/jobs/echo"])
def test_signed_delivery_is_accepted_under_either_prefix(client: TestClient, path: str) -> None:
    body = b'{"callId":"c1","minute":4}'
    r = client.post(path, content=body, headers=_signed(body))

    assert r.status_code == 200, r.text
    assert r.json() == {"body": {"callId": "c1", "minute": 4}, "messageId": "msg_test_1", "retried": 2}


def test_delivery_signed_with_the_next_key_is_accepted(client: TestClient) -> None:
    body = b'{"rotated":true}'
    r = client.post(
        "/api/jobs/echo", content=body, headers=_signed(body, key=os.environ["QSTASH_NEXT_SIGNING_KEY"])
    )
    assert r.status_code == 200, r.text


def _forged(body: bytes) -> dict[str, str]:
    return _signed(body, key=OTHER_KEY)


def _retargeted(body: bytes) -> dict[str, str]:
    return _signed(body, url=f"{config.get_settings().public_base_url}/api/jobs/other")


def _other_host(body: bytes) -> dict[str, str]:
    return _signed(body, url="https://evil.example/api/jobs/echo")


def _tampered(body: bytes) -> dict[str, str]:
    return _signed(body.replace(b"4", b"5"))


def _expired(body: bytes) -> dict[str, str]:
    return _signed(body, now=time.time() - 3600)


def _missing(body: bytes) -> dict[str, str]:
    return {k: v for k, v in _signed(body).items() if k != "Upstash-Signature"}


def _garbage(body: bytes) -> dict[str, str]:
    return {**_signed(body), "Upstash-Signature": "not.a.jwt"}


@pytest.mark.parametrize(
    "headers",
    [_forged, _retargeted, _other_host, _tampered, _expired, _missing, _garbage],
    ids=lambda f: f.__name__,
)
def test_delivery_with_a_bad_signature_is_rejected(
    client: TestClient, headers: Callable[[bytes], dict[str, str]]
) -> None:
    body = b'{"callId":"c1","minute":4}'
    r = client.post("/api/jobs/echo", content=body, headers=headers(body))

    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "INVALID_SIGNATURE"


def test_signed_body_that_is_not_a_json_object_is_a_bad_request(client: TestClient) -> None:
    for body in (b"not json", b"[1,2]"):
        r = client.post("/api/jobs/echo", content=body, headers=_signed(body))
        assert r.status_code == 400, r.text


# --- claim_delivery


def test_claim_delivery_is_true_once_then_false(clean: None) -> None:
    with db.transaction() as conn:
        assert jobs.claim_delivery(conn, "msg_once") is True
    with db.transaction() as conn:
        assert jobs.claim_delivery(conn, "msg_once") is False
        assert jobs.claim_delivery(conn, "msg_other") is True


def test_claim_in_a_rolled_back_transaction_does_not_count(clean: None) -> None:
    with pytest.raises(RuntimeError), db.transaction() as conn:
        assert jobs.claim_delivery(conn, "msg_rolled_back") is True
        raise RuntimeError("the job failed")
    with db.transaction() as conn:
        assert jobs.claim_delivery(conn, "msg_rolled_back") is True


def test_concurrent_redelivery_waits_for_the_first_and_gets_false(clean: None) -> None:
    results: list[bool] = []
    with db.transaction() as first:
        assert jobs.claim_delivery(first, "msg_racing") is True

        def redeliver() -> None:
            with db.transaction(statement_timeout_ms=5000) as second:
                results.append(jobs.claim_delivery(second, "msg_racing"))

        thread = threading.Thread(target=redeliver)
        thread.start()
        time.sleep(0.3)
        assert thread.is_alive() and results == []  # blocked on the first delivery's uncommitted row
    thread.join(10)
    assert results == [False]


# --- the /cron dependency


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_cron_accepts_the_right_bearer(client: TestClient, method: str) -> None:
    r = client.request(
        method, "/api/cron/sweep", headers={"Authorization": f"Bearer {os.environ['CRON_SECRET']}"}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"swept": True}


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-secret", "Bearer ", "Basic dGVzdC1jcm9uLXNlY3JldA==", "test-cron-secret"],
    ids=["missing", "wrong", "empty", "basic", "no-scheme"],
)
def test_cron_rejects_anything_else(client: TestClient, method: str, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    r = client.request(method, "/api/v1/cron/sweep", headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "UNAUTHORIZED"
