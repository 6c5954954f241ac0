"""The local Sentry sink receives what the real SDK sends, keeps it and shows it to tests."""

from __future__ import annotations

import gzip
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from localdev.sentry_sink import EnvelopeError, parse_envelope, running

ROOT = Path(__file__).resolve().parents[2]

# The SDK keeps global state: it runs in its own interpreter so nothing leaks into this test process.
_SDK_SCRIPT = textwrap.dedent(
    """
    import sys
    import sentry_sdk

    sentry_sdk.init(dsn=sys.argv[1], environment="test", release="digis@test")
    sentry_sdk.capture_message("hello from the sdk")
    try:
        1 / 0
    except ZeroDivisionError as exc:
        sentry_sdk.capture_exception(exc)
    sentry_sdk.flush(timeout=10)
    """
)


def test_real_sdk_events_arrive_gzipped_and_are_listed() -> None:
    with running() as sink:
        done = subprocess.run(
            [sys.executable, "-c", _SDK_SCRIPT, sink.dsn()],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        events = sink.wait_for(lambda i: i["type"] == "event", timeout_s=5)
        listed = httpx.get(f"{sink.url}/_local/events", params={"type": "event"}, timeout=5).json()

    assert listed == events
    assert len(events) == 2
    message, error = events
    assert message["payload"]["message"] == "hello from the sdk"
    assert message["payload"]["environment"] == "test"
    assert error["payload"]["exception"]["values"][-1]["type"] == "ZeroDivisionError"
    assert {e["content_encoding"] for e in events} == {"gzip"}
    assert {e["project"] for e in events} == {"1"}
    assert {e["sentry_key"] for e in events} == {"public"}
    assert message["envelope"]["event_id"] == message["payload"]["event_id"]


def test_plain_envelope_items_are_parsed_and_appended_to_the_out_file(tmp_path: Path) -> None:
    attachment = b"line one\nline two"
    body = b"\n".join(
        [
            json.dumps({"event_id": "9ec79c33ec9942ab8353589fcb2e04dc"}).encode(),
            json.dumps({"type": "event"}).encode(),
            json.dumps({"message": "no length header"}).encode(),
            json.dumps({"type": "attachment", "length": len(attachment), "filename": "a.txt"}).encode(),
            attachment,
        ]
    )
    out = tmp_path / "events.jsonl"
    with running(out=out) as sink:
        resp = httpx.post(f"{sink.url}/api/42/envelope/", content=body, timeout=5)
        assert resp.status_code == 200
        assert resp.json() == {"id": "9ec79c33ec9942ab8353589fcb2e04dc"}
        items = sink.items()

    assert [i["type"] for i in items] == ["event", "attachment"]
    assert items[0]["payload"] == {"message": "no length header"}
    assert items[1]["payload"] == "line one\nline two"  # the length header, not the newline, ends the item
    assert items[0]["content_encoding"] is None
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["type"] for line in lines] == ["event", "attachment"]
    assert lines[0]["project"] == "42"


def test_malformed_envelopes_are_refused_and_not_kept() -> None:
    with running() as sink:
        not_json = httpx.post(f"{sink.url}/api/1/envelope/", content=b"{}\nnot json\n{}", timeout=5)
        bad_gzip = httpx.post(
            f"{sink.url}/api/1/envelope/", content=b"xx", headers={"Content-Encoding": "gzip"}, timeout=5
        )
        wrong_path = httpx.post(f"{sink.url}/api/1/other/", content=b"{}", timeout=5)
        assert sink.items() == []
    assert not_json.status_code == 400
    assert bad_gzip.status_code == 400
    assert wrong_path.status_code == 404


def test_item_length_past_the_end_is_an_error() -> None:
    with pytest.raises(EnvelopeError):
        parse_envelope(b'{}\n{"type":"attachment","length":99}\nshort')


def test_a_configured_key_refuses_other_dsns_and_delete_clears() -> None:
    envelope = gzip.compress(b'{}\n{"type":"event"}\n{"message":"x"}\n')
    headers = {"Content-Encoding": "gzip"}
    with running(key="right") as sink:
        wrong = httpx.post(
            f"{sink.url}/api/1/envelope/",
            content=envelope,
            headers={**headers, "X-Sentry-Auth": "Sentry sentry_version=7, sentry_key=wrong"},
            timeout=5,
        )
        right = httpx.post(
            f"{sink.url}/api/1/envelope/?sentry_key=right", content=envelope, headers=headers, timeout=5
        )
        kept = len(sink.items())
        httpx.delete(f"{sink.url}/_local/events", timeout=5)
        after_delete = sink.items()
    assert (wrong.status_code, right.status_code, kept, after_delete) == (401, 200, 1, [])


def test_cli_prints_ready_serves_and_exits_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "localdev.sentry_sink", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        readable, _, _ = select.select([proc.stdout], [], [], 20)
        assert readable, "no ready line within 20 s"
        line = proc.stdout.readline()
        assert line.startswith("ready http://127.0.0.1:")
        url = line.split()[1]
        assert httpx.get(f"{url}/_local/events", timeout=5).json() == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
