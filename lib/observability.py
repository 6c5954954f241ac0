"""Logs as JSON lines and Sentry (only when SENTRY_DSN is set), with secrets scrubbed."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

from lib.config import get_settings

_SECRET_HEADERS = {
    "authorization",
    "cookie",
    "set-cookie",
    "stripe-signature",
    "upstash-signature",
    "x-api-key",
    "apikey",
    "idempotency-key",
}
# Bearer tokens / JWTs, Stripe and webhook secrets, wherever they appear in a string.
_SECRET_VALUE = re.compile(
    r"(eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*|(?:sk|rk|whsec|pi_[A-Za-z0-9]+_secret)_[A-Za-z0-9_]{6,}"
    r"|Bearer\s+\S+)"
)
FILTERED = "[Filtered]"
_state = {"sentry": False, "logging": False}


class _JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message.startswith("{"):
            return message
        line: dict[str, Any] = {"level": record.levelname.lower(), "logger": record.name, "msg": message}
        if record.exc_info:
            line["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line, separators=(",", ":"))


def setup() -> None:
    """Configure JSON logging and, when a DSN is set, Sentry; idempotent."""
    if not _state["logging"]:
        root = logging.getLogger("digis")
        if not root.handlers:
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(_JsonLines())
            root.addHandler(handler)
            root.setLevel(logging.INFO)
            root.propagate = False
        _state["logging"] = True
    dsn = get_settings().sentry_dsn
    if dsn and not _state["sentry"]:
        import sentry_sdk

        sentry_sdk.init(
            dsn=dsn,
            environment=get_settings().environment,
            release=get_settings().app_version,
            send_default_pii=False,
            traces_sample_rate=0.0,
            default_integrations=False,
            before_send=_before_send,  # type: ignore[arg-type]
        )
        _state["sentry"] = True


def scrub(value: Any) -> Any:
    """Replace tokens and secrets anywhere inside a JSON-like value."""
    if isinstance(value, str):
        return _SECRET_VALUE.sub(FILTERED, value)
    if isinstance(value, dict):
        return {
            k: (FILTERED if isinstance(k, str) and k.lower() in _SECRET_HEADERS else scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def _before_send(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any]:
    scrubbed: dict[str, Any] = scrub(event)
    return scrubbed


def capture_exception(exc: BaseException, **tags: str) -> None:
    """Report to Sentry (when configured) and flush before the response completes."""
    logging.getLogger("digis.error").error("unhandled %s", type(exc).__name__, exc_info=exc)
    if not _state["sentry"]:
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        for key, value in tags.items():
            scope.set_tag(key, value)
        sentry_sdk.capture_exception(exc)
    # Serverless: the instance may freeze right after the response, so send now.
    sentry_sdk.flush(timeout=2.0)


def capture_message(message: str, level: str = "warning", **extra: Any) -> None:
    """Report a notable condition (drift, fallbacks) to logs and Sentry."""
    logging.getLogger("digis.alert").warning("%s %s", message, json.dumps(scrub(extra), default=str))
    if not _state["sentry"]:
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        for key, value in extra.items():
            scope.set_extra(key, scrub(value))
        sentry_sdk.capture_message(message, level=level)  # type: ignore[arg-type]
    sentry_sdk.flush(timeout=2.0)
