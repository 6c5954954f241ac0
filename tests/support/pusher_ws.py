"""A small real-websocket Pusher protocol (v7) client for synchronous tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

# auth(socket_id, channel_name) -> {"auth": ..., "channel_data"?: ...}, e.g. a call to /realtime/pusher/auth.
Authorizer = Callable[[str, str], Mapping[str, Any]]


class PusherWsError(AssertionError):
    """The connection failed, closed, or an expected message never came."""


@dataclass(frozen=True)
class Received:
    """One message from the server, with `data` decoded and the monotonic time it arrived."""

    event: str
    channel: str | None
    data: Any
    received_at: float


def _decode(data: Any) -> Any:
    # Pusher sends event data as a JSON string inside the JSON frame.
    if isinstance(data, str):
        try:
            return json.loads(data)
        except ValueError:
            return data
    return data


class PusherWsClient:
    """Connects on construction; a background thread runs the event loop and collects every message."""

    def __init__(self, ws_url: str, *, timeout_s: float = 5.0) -> None:
        self.url = ws_url
        self.timeout_s = timeout_s
        self._messages: list[Received] = []
        self._cond = threading.Condition()
        self._closed: str | None = None
        self._ws: ClientConnection | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pusher-ws", daemon=True)
        self._thread.start()
        self._reader: asyncio.Future[None] | None = None
        try:
            asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(timeout_s + 1)
            established = self.next_message("pusher:connection_established", timeout=timeout_s)
        except BaseException:
            self.close()
            raise
        self.socket_id: str = established.data["socket_id"]

    async def _open(self) -> None:
        # proxy=None: a loopback test must never go through an http(s)_proxy from the environment.
        self._ws = await connect(self.url, open_timeout=self.timeout_s, close_timeout=1, proxy=None)
        self._reader = asyncio.ensure_future(self._read(self._ws))

    async def _read(self, ws: ClientConnection) -> None:
        reason = "closed"
        try:
            async for raw in ws:
                frame = json.loads(raw)
                event = frame.get("event", "")
                if event == "pusher:ping":
                    await ws.send(json.dumps({"event": "pusher:pong", "data": {}}))
                    continue
                msg = Received(event, frame.get("channel"), _decode(frame.get("data")), time.monotonic())
                with self._cond:
                    self._messages.append(msg)
                    self._cond.notify_all()
        except ConnectionClosed as exc:
            reason = f"closed: {exc}"
        except Exception as exc:
            reason = f"reader failed: {exc!r}"
        with self._cond:
            self._closed = reason
            self._cond.notify_all()

    def send(self, event: str, data: Mapping[str, Any]) -> None:
        """Send one protocol frame."""
        if self._ws is None:
            raise PusherWsError("not connected")
        frame = json.dumps({"event": event, "data": dict(data)})
        asyncio.run_coroutine_threadsafe(self._ws.send(frame), self._loop).result(self.timeout_s)

    def _wait(self, matches: Callable[[Received], bool], what: str, timeout: float | None) -> Received:
        deadline = time.monotonic() + (self.timeout_s if timeout is None else timeout)
        with self._cond:
            while True:
                for i, msg in enumerate(self._messages):
                    if matches(msg):
                        return self._messages.pop(i)
                if self._closed is not None:
                    raise PusherWsError(f"connection {self._closed} before {what} arrived; saw {self.seen()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {what} within the timeout; saw {self.seen()}")
                self._cond.wait(remaining)

    def next_message(
        self, event: str, channel: str | None = None, *, timeout: float | None = None
    ) -> Received:
        """Remove and return the first `event` (on `channel` if given); TimeoutError after `timeout`."""
        return self._wait(
            lambda m: m.event == event and (channel is None or m.channel == channel),
            f"{event!r} on {channel!r}",
            timeout,
        )

    def wait_for(self, event: str, channel: str | None = None, timeout: float | None = None) -> Any:
        """The decoded data of the next `event` (on `channel` if given)."""
        return self.next_message(event, channel, timeout=timeout).data

    def assert_no_event(self, event: str, channel: str | None = None, *, within: float = 0.5) -> None:
        """Fail if `event` is waiting or arrives within `within` seconds."""
        try:
            msg = self.next_message(event, channel, timeout=within)
        except TimeoutError:
            return
        raise PusherWsError(f"unexpected {event!r} on {msg.channel!r}: {msg.data!r}")

    def seen(self) -> list[tuple[str, str | None]]:
        """(event, channel) of the messages not yet consumed."""
        with self._cond:
            return [(m.event, m.channel) for m in self._messages]

    def subscribe(
        self, channel: str, authorize: Authorizer | None = None, *, timeout: float | None = None
    ) -> Any:
        """Subscribe, signing private/presence channels with `authorize`; the subscription_succeeded data."""
        data: dict[str, Any] = {"channel": channel}
        if channel.startswith(("private-", "presence-")):
            if authorize is None:
                raise ValueError(f"{channel} needs an authorizer")
            signed = authorize(self.socket_id, channel)
            data["auth"] = signed["auth"]
            if signed.get("channel_data") is not None:
                data["channel_data"] = signed["channel_data"]
        self.send("pusher:subscribe", data)
        answer = self._wait(
            lambda m: (
                m.channel == channel
                and m.event in ("pusher_internal:subscription_succeeded", "pusher:subscription_error")
            ),
            f"subscription answer for {channel}",
            timeout,
        )
        if answer.event == "pusher:subscription_error":
            raise PusherWsError(f"subscription to {channel} refused: {answer.data!r}")
        return answer.data

    def unsubscribe(self, channel: str) -> None:
        """Leave a channel."""
        self.send("pusher:unsubscribe", {"channel": channel})

    def close(self) -> None:
        """Close the socket and stop the background loop."""
        if self._loop.is_closed():
            return
        if self._ws is not None:
            ws = self._ws
            with contextlib.suppress(Exception):  # closing a dead connection has nothing to report
                asyncio.run_coroutine_threadsafe(ws.close(), self._loop).result(2)
        if self._reader is not None:
            reader = self._reader

            async def _finish() -> None:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_finish(), self._loop).result(2)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(2)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> PusherWsClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
