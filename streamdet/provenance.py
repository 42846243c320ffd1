"""What a file says about itself: its C2PA manifest (Content Credentials), read and validated with c2pa-python.

The result sits beside the detector's verdict and is never folded into it. A valid manifest that declares AI
generation is strong evidence; a missing one is no evidence either way (most files have none, and re-encoding
strips them); an invalid one (a signature or content hash that fails) is flagged. `c2pa-python` is the optional
extra `provenance`: without it every file reads as "not checked", with a note saying so.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from .errors import ConfigError

# IPTC digital source types that declare generation by a trained model (https://cv.iptc.org/newscodes/digitalsourcetype/).
AI_SOURCE_TYPES = ("trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia")
# Failure codes about who signed, not about what was signed: reported as `trusted`, not among `errors`.
TRUST_CODES = ("signingCredential.untrusted",)
MISSING = "c2pa-python is not installed, so C2PA manifests were not read (pip install 'streamdet[provenance]')"


@dataclass(frozen=True)
class Provenance:
    """A file's C2PA manifest store, as read: whether there is one, whether it validates, what it declares.

    `valid`: the active manifest's signature and every content hash check out (None without a manifest).
    `trusted`: its signer chains to a configured trust anchor (False without anchors). `declares_ai`: some
    manifest in the store (the active one or an ingredient's) gives an AI `digitalSourceType`. `generator` and
    `signer` are the active manifest's claim generator and the signing certificate's organization (common name);
    `source_types` the IPTC terms found (the active manifest's first), `actions` the active manifest's actions.
    `errors` are the validation failures, `note` why nothing could be read (no package, a format C2PA skips).
    """

    present: bool
    valid: bool | None = None
    declares_ai: bool | None = None
    generator: str | None = None
    signer: str | None = None
    trusted: bool | None = None
    source_types: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples as lists), fields in declaration order."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        """The inverse of `to_dict`."""
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})


def load_anchors(path: str | Path) -> str:
    """PEM trust anchors (root or intermediate certificates) from a file; a clear ConfigError if it holds none."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read trust anchors ({exc})") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(f"{path}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the trust anchors file")
    return text


def read_provenance(path: str | Path, anchors: str | None = None) -> Provenance:
    """Read and validate the C2PA manifest store of an image or video file; `anchors` (PEM text) are the signers to trust."""
    try:
        import c2pa
    except (ImportError, OSError):  # OSError: the wheel's native library would not load
        return Provenance(present=False, note=MISSING)
    try:
        context = c2pa.Context(c2pa.Settings.from_dict({"trust": {"user_anchors": anchors}, "verify": {"verify_trust": True}})) if anchors else None
        reader = c2pa.Reader.try_create(str(path), context=context)
    except c2pa.C2paError.NotSupported:
        return Provenance(present=False, note=f"C2PA manifests are not read from {Path(path).suffix or 'extensionless'} files")
    except (c2pa.C2paError.Io, c2pa.C2paError.FileNotFound, OSError) as exc:
        return Provenance(present=False, note=f"cannot read the file for C2PA ({exc})")
    except c2pa.C2paError as exc:  # a manifest store is there but cannot be parsed: damaged or forged
        return Provenance(present=True, valid=False, errors=(str(exc),))
    if reader is None:
        return Provenance(present=False)
    with reader:
        return from_store(json.loads(reader.json()))


def from_store(store: dict[str, Any]) -> Provenance:
    """The Provenance of a manifest store in c2pa's JSON report (`Reader.json()`)."""
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest")) or {}
    state = store.get("validation_state")
    failures = store.get("validation_status") or []
    others = [m for label, m in manifests.items() if label != store.get("active_manifest")]
    source_types = tuple(dict.fromkeys(t for manifest in [active, *others] for t in _source_types(manifest)))
    return Provenance(
        present=True,
        valid=state in ("Valid", "Trusted"),
        declares_ai=any(t in AI_SOURCE_TYPES for t in source_types),
        generator=_generator(active),
        signer=_signer(active.get("signature_info") or {}),
        trusted=state == "Trusted",
        source_types=source_types,
        actions=tuple(dict.fromkeys(_actions(active))),
        errors=tuple(f"{f.get('code')}: {f.get('explanation', '')}".rstrip(": ") for f in failures if f.get("code") not in TRUST_CODES),
    )


def _generator(manifest: dict[str, Any]) -> str | None:
    """`name version` of the first claim_generator_info entry, else the v1 claim_generator string."""
    for info in manifest.get("claim_generator_info") or []:
        if info.get("name"):
            return " ".join(str(info[k]) for k in ("name", "version") if info.get(k))
    return manifest.get("claim_generator")


def _signer(info: dict[str, Any]) -> str | None:
    """The signing certificate's organization (c2pa calls it `issuer`), with its common name where that differs."""
    org, name = info.get("issuer"), info.get("common_name")
    if org and name and name != org:
        return f"{org} ({name})"
    return org or name


def _actions(manifest: dict[str, Any]) -> Iterator[str]:
    """The action names (c2pa.created, c2pa.edited, …) of the manifest's actions assertions."""
    for assertion in manifest.get("assertions") or []:
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            for action in (assertion.get("data") or {}).get("actions") or []:
                if action.get("action"):
                    yield action["action"]


def _source_types(node: Any) -> Iterator[str]:
    """Every digitalSourceType in a manifest's assertions (actions, IPTC metadata), as the IPTC term without its URL."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.lower().endswith("digitalsourcetype") and isinstance(value, str):
                yield value.rstrip("/").rsplit("/", 1)[-1]
            else:
                yield from _source_types(value)
    elif isinstance(node, list):
        for item in node:
            yield from _source_types(item)
