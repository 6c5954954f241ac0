"""The local Pusher: soketi started on loopback with our app, refusing what hosted Pusher refuses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pusher
import pytest

from localdev import soketi
from tests.support.pusher_ws import PusherWsClient

ROOT = Path(__file__).resolve().parents[2]

# The skip reason turns into a failure (tests/support/strict_skips.py): a missing test bed fails the run.
pytestmark = pytest.mark.skipif(
    not soketi.is_installed(), reason="soketi not installed (node or localdev/node/node_modules missing)"
)


def _sdk(h: soketi.Soketi, *, secret: str | None = None) -> pusher.Pusher:
    return pusher.Pusher(
        app_id=h.app_id, key=h.key, secret=secret or h.secret, host=h.host, port=h.port, ssl=False, timeout=2
    )


def test_config_binds_every_listener_to_loopback(tmp_path: Path) -> None:
    path = soketi.write_config(
        tmp_path, port=6001, metrics_port=9601, cluster_port=11002, app_id="1000001", key="k", secret="s"
    )
    config = json.loads(path.read_text())
    assert config["host"] == "127.0.0.1"
    assert config["metrics.host"] == "127.0.0.1"
    assert config["cluster.address"] == "127.0.0.1"
    assert config["cluster.unicast"] == "127.0.0.1:11002"  # unicast: no UDP broadcast to the LAN
    assert config["appManager.array.apps"][0]["id"] == "1000001"


def test_config_refuses_a_non_numeric_app_id(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="numeric"):
        soketi.write_config(
            tmp_path, port=1, metrics_port=2, cluster_port=3, app_id="app", key="k", secret="s"
        )


def test_running_soketi_delivers_sdk_events_to_a_websocket_and_listens_only_on_loopback() -> None:
    server = soketi.SoketiProcess(port=soketi.free_port())
    h = server.start()
    try:
        assert server.proc is not None
        owned = soketi._owned_inodes(server.proc.pid)
        for table in ("/proc/net/tcp", "/proc/net/udp", "/proc/net/tcp6", "/proc/net/udp6"):
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[9] in owned:
                        assert fields[1].startswith("0100007F:"), f"{table}: soketi bound {fields[1]}"
        with PusherWsClient(h.ws_url) as ws:
            ws.subscribe("public-probe")
            assert _sdk(h).trigger("public-probe", "probe", {"n": 1}) == {"ok": True}
            assert ws.wait_for("probe", "public-probe") == {"n": 1}
    finally:
        server.stop()
    assert soketi.port_is_free(h.port)


def test_wrong_secret_is_refused_in_a_200_body() -> None:
    # The gotcha lib.realtime relies on knowing: no HTTP error, an error object instead.
    with soketi.running() as h:
        answer = _sdk(h, secret="not-the-secret").trigger("public-x", "e", {"a": 1})
    assert answer["code"] == 401
    assert "error" in answer


def test_event_data_over_10kb_is_refused_like_hosted_pusher() -> None:
    with soketi.running() as h:
        sdk = _sdk(h)
        fits = '"' + "a" * (10_240 - 2) + '"'
        too_big = '"' + "a" * (10_240 - 1) + '"'
        assert sdk.trigger_batch([{"channel": "c", "name": "e", "data": fits}], already_encoded=True) == {
            "ok": True
        }
        refused = sdk.trigger_batch([{"channel": "c", "name": "e", "data": too_big}], already_encoded=True)
    assert refused["code"] == 413


def test_second_server_on_a_taken_port_is_refused() -> None:
    # uWebSockets listens with SO_REUSEPORT, so node itself would silently share the port.
    with (
        soketi.running() as h,
        pytest.raises(soketi.SoketiFailed, match="in use"),
        soketi.running(port=h.port),
    ):
        pass


def test_cli_prints_ready_and_exits_cleanly_on_sigterm() -> None:
    port = soketi.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "localdev.soketi", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line == f"ready http://127.0.0.1:{port}"
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert time.monotonic() - t0 < 5
        assert soketi.port_is_free(port)  # node is gone, not orphaned
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_cli_exits_3_when_node_is_missing() -> None:
    env = {**os.environ, "PATH": "/nonexistent"}
    done = subprocess.run(
        [sys.executable, "-m", "localdev.soketi", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == soketi.EXIT_UNAVAILABLE == 3
    assert "node" in done.stderr
    assert done.stdout == ""


def test_ensure_installed_is_a_no_op_when_installed() -> None:
    t0 = time.monotonic()
    assert soketi.ensure_installed() is True
    assert time.monotonic() - t0 < 1


def test_a_second_listener_sharing_the_port_is_detected() -> None:
    server = soketi.SoketiProcess(port=soketi.free_port())
    h = server.start()
    try:
        assert server.proc is not None
        assert soketi.listens_alone(server.proc.pid, h.port)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as intruder:
            intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            intruder.bind(("127.0.0.1", h.port))  # succeeds: soketi's listener allows port sharing
            intruder.listen(1)
            assert not soketi.listens_alone(server.proc.pid, h.port)
    finally:
        server.stop()
