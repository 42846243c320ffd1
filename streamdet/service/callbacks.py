"""Job callbacks: when a job with a `callback` URL ends, POST a short signed JSON event to it, with `watch`'s webhook
sender (a timeout per try, retries with doubling pauses on network errors, 5xx and 429).

The body is signed with HMAC-SHA256 under the operator's secret (STREAMDET_WEBHOOK_SECRET), sent as
`X-Streamdet-Signature: sha256=<hex>`, so a receiver can tell the event came from this server. URLs must
start with one of the operator's `serve.webhooks` prefixes. Delivery is best effort: an event that is still
being retried when the server stops is not sent again after a restart (the job's result stays readable).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence
from urllib.parse import urlsplit

from ..errors import ConfigError, StreamdetError
from ..live.webhook import Webhook

SECRET_ENV = "STREAMDET_WEBHOOK_SECRET"
SIGNATURE = "X-Streamdet-Signature"
log = logging.getLogger("streamdet.serve")


def allowed(url: str, prefixes: Sequence[str]) -> bool:
    """Whether `url` is an http(s) URL under one of the allow-listed prefixes."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and any(url.startswith(prefix) for prefix in prefixes)


def signature(secret: bytes, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class Callbacks:
    """Sends job events from a few threads; each event gets its own webhook sender and all its retries."""

    def __init__(self, prefixes: Sequence[str], retries: int = 3, backoff_s: float = 1.0, timeout_s: float = 5.0) -> None:
        secret = os.environ.get(SECRET_ENV, "")
        if prefixes and not secret:
            raise ConfigError(f"serve.webhooks: callbacks are signed; set the {SECRET_ENV} environment variable to the secret receivers check")
        self.prefixes = list(prefixes)
        self._secret = secret.encode()
        self._retries, self._backoff_s, self._timeout_s = retries, backoff_s, timeout_s
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="streamdet-serve-callback")

    def send(self, url: str, event: dict[str, Any]) -> None:
        """Deliver `event` to `url` in the background."""
        self._pool.submit(self._deliver, url, event)

    def _deliver(self, url: str, event: dict[str, Any]) -> None:
        try:
            hook = Webhook(url, self._timeout_s, self._retries, self._backoff_s, on_error=log.warning,
                           sign=lambda body: {SIGNATURE: signature(self._secret, body)})
        except StreamdetError as exc:
            log.warning("callback %s: %s", url, exc)
            return
        hook.send(event)
        hook.close(wait_s=(self._timeout_s + self._backoff_s * 2 ** self._retries) * (self._retries + 1))

    def close(self) -> None:
        """Stop: events not yet being sent are dropped, those being sent get their current try."""
        self._pool.shutdown(wait=False, cancel_futures=True)
