"""API tokens: where they come from, who may listen without them, and the constant-time check of a request's token.

Tokens are read from `--tokens FILE` (one per line, `#` comments) or the STREAMDET_TOKENS environment
variable (separated by commas or white space). A server that listens on anything but loopback must have
tokens; with tokens, every API request needs `Authorization: Bearer TOKEN`. Each token's jobs are its own:
another token cannot see, read or delete them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from pathlib import Path

from ..errors import ConfigError

ENV = "STREAMDET_TOKENS"
MIN_LENGTH = 16
ANONYMOUS = "-"  # the owner of every job on a server without tokens


def load_tokens(path: Path | None) -> list[str]:
    """The tokens of `path` (a file), else of STREAMDET_TOKENS, else none; a one-line error for unusable ones."""
    if path is not None:
        try:
            lines = Path(path).read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--tokens {path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
        tokens, where = [line.split("#", 1)[0].strip() for line in lines], f"--tokens {path}"
    else:
        tokens, where = re.split(r"[\s,]+", os.environ.get(ENV, "")), ENV
    tokens = [t for t in tokens if t]
    short = [t for t in tokens if len(t) < MIN_LENGTH]
    if short:
        raise ConfigError(f"{where}: a token of {len(short[0])} characters; tokens need at least {MIN_LENGTH}")
    if path is not None and not tokens:
        raise ConfigError(f"--tokens {path}: no tokens in the file")
    return tokens


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (or `localhost`), reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_tokens_off_loopback(host: str, tokens: list[str]) -> None:
    """Refuse to listen beyond loopback without tokens (one line naming the way to give them)."""
    if not is_loopback(host) and not tokens:
        raise ConfigError(f"--host {host}: listening beyond loopback needs API tokens (--tokens FILE or the {ENV} environment variable)")


class Tokens:
    """The server's tokens; `owner` maps a request's Authorization header to the owner of its jobs, or None."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = [t.encode() for t in tokens]

    @property
    def required(self) -> bool:
        """Whether requests need a token."""
        return bool(self._tokens)

    def owner(self, authorization: str | None) -> str | None:
        """The owner id (a digest of the token) of a valid `Bearer` header, ANONYMOUS without tokens, else None.

        Every token is compared, each with `hmac.compare_digest`, so the time taken does not say which matched or how much.
        """
        if not self._tokens:
            return ANONYMOUS
        scheme, _, given = (authorization or "").partition(" ")
        candidate = given.strip().encode() if scheme.lower() == "bearer" else b""
        matches = [hmac.compare_digest(candidate, token) for token in self._tokens]
        if not any(matches) or not candidate:
            return None
        return hashlib.sha256(candidate).hexdigest()[:16]
