"""Official checkpoints: where they come from, their checksums, where they are cached, how they are fetched and read."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import pickle
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, IncompleteRead, MaxRetryError, NewConnectionError, ProtocolError, ReadTimeoutError, ResponseError

from .errors import WeightsError
from .files import StrPath, atomic_path, write_text

if TYPE_CHECKING:
    import torch

log = logging.getLogger("streamdet")


@dataclass(frozen=True)
class WeightFile:
    """One published checkpoint: its registry name, URL, what it holds and, where known, its sha256 and exact size.

    A `manual` one is published through a file-sharing page (`url`) that cannot be downloaded from: the user fetches
    `file` from there and puts it in the cache (or passes it as a file); streamdet never tries to download it.
    """

    name: str
    kind: str
    url: str
    size_mb: int
    description: str
    sha256: str | None = None
    bytes: int | None = None
    manual: bool = False
    file: str | None = None

    @property
    def filename(self) -> str:
        return self.file or self.url.rsplit("/", 1)[-1]


# The DIRE authors share their classifiers through file-sharing pages (password "dire"), not direct URLs.
# Their size is not published: 283 MB is that of a ResNet-50 saved with its Adam state, as the trainer saves it.
DIRE_SHARE = "https://rec.ustc.edu.cn/share/ec980150-4615-11ee-be0a-eb822f25e070 (password: dire; also BaiduDrive, see github.com/ZhendongWang6/DIRE)"

# Checksums: neither OpenAI nor the DistilDIRE authors publish one beside the file. The ADM value is the one
# Disco Diffusion's model table checks this exact URL against; the ImageNet student's is the digest a DiffDetect
# experiment pinned for Hugging Face revision 1318c17f of yevvonlim/distildire. None where no value was found.
REGISTRY: dict[str, WeightFile] = {
    w.name: w
    for w in (
        WeightFile(
            "adm-256-uncond",
            "adm",
            "https://openaipublic.blob.core.windows.net/diffusion/jul-2021/256x256_diffusion_uncond.pt",
            2108,
            "ADM (guided-diffusion) ImageNet 256x256 unconditional UNet",
            sha256="a37c32fffd316cd494cf3f35b339936debdc1576dad13fe57c42399a5dbc78b1",
        ),
        WeightFile(
            "distildire-imagenet",
            "student",
            "https://huggingface.co/yevvonlim/distildire/resolve/main/imagenet-distil-dire-11e.pth",
            283,
            "DistilDIRE student trained on ImageNet (ADM fakes)",
            sha256="e6b76a13ae49eb83d39fb9b1f7de86bf9f63d1dddf0225ca7ad03690e6bc53bc",
        ),
        WeightFile(
            "distildire-celebahq",
            "student",
            "https://huggingface.co/yevvonlim/distildire/resolve/main/celebahq-distil-dire-34e.pth",
            283,
            "DistilDIRE student trained on CelebA-HQ faces",
        ),
        *(
            WeightFile(
                f"dire-{name}",
                "dire",
                DIRE_SHARE,
                283,
                f"DIRE classifier trained on {what}",
                manual=True,
                file=f"{name.replace('-', '_')}.pth",
            )
            for name, what in (
                ("lsun-adm", "LSUN-Bedroom vs ADM"),
                ("imagenet-adm", "ImageNet vs ADM"),
                ("celebahq-sdv2", "CelebA-HQ vs Stable Diffusion v2"),
            )
        ),
    )
}

Progress = Callable[[int, int | None], None]
# Downloads: seconds without a byte (connecting or reading) before an attempt fails, and attempts after the first;
# waits between attempts double from 2 s (urllib3's Retry backoff). STREAMDET_DOWNLOAD_TIMEOUT / _RETRIES override.
DOWNLOAD_TIMEOUT = 60.0
DOWNLOAD_RETRIES = 4
RETRY_STATUS = (408, 429, 500, 502, 503, 504)
_hashes: dict[tuple[str, int, int, int], str] = {}


def home() -> Path:
    """The cache folder: `$STREAMDET_HOME`, else `~/.cache/streamdet`."""
    root = os.environ.get("STREAMDET_HOME")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "streamdet"


def offline() -> bool:
    """True when `STREAMDET_OFFLINE` asks streamdet never to download."""
    return os.environ.get("STREAMDET_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def cached_path(weight: WeightFile) -> Path:
    """Where the cached copy of `weight` lives (it may not exist yet)."""
    return home() / "weights" / weight.filename


def hash_record(path: StrPath) -> Path:
    """The small JSON in the cache folder that remembers a file's sha256 for one size, mtime and inode (nothing is written beside user files)."""
    return home() / "hashes" / f"{hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:32]}.json"


def _digest(path: Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _record(path: Path, stat: os.stat_result) -> dict[str, Any]:
    """What the cache folder remembers about this file at this size, mtime and inode ({} if nothing)."""
    try:
        record = json.loads(hash_record(path).read_text())
        if isinstance(record, dict) and (record.get("size"), record.get("mtime_ns"), record.get("inode")) == (stat.st_size, stat.st_mtime_ns, stat.st_ino):
            return record
    except (OSError, ValueError):
        pass
    return {}


def _remember(path: Path, stat: os.stat_result, sha256: str | None = None, **facts: Any) -> None:
    """Keep `sha256` (and other `facts`) for this size, mtime and inode, in memory and (where the cache folder is
    writable) in its record."""
    if sha256 is not None:
        _hashes[(str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)] = sha256
        facts["sha256"] = sha256
    record = {**_record(path, stat), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino, **facts}
    try:
        write_text(hash_record(path), json.dumps(record) + "\n")
    except OSError:
        pass


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file, hashed once per size, mtime_ns and inode (remembered beside it), so a 2 GB file is not re-read at every start."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key in _hashes:
        return _hashes[key]
    record = _record(path, stat)
    if "sha256" in record:
        _hashes[key] = str(record["sha256"])
        return _hashes[key]
    try:
        sha256 = _digest(path)
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    _remember(path, stat, sha256)
    return sha256


def _fix(weight: WeightFile) -> str:
    if weight.manual:
        return f"delete it and get {weight.filename} again from {weight.url}, or pass your own file with --{weight.kind}"
    return f"delete it and run `streamdet weights download {weight.name}`, or pass your own file with --{weight.kind}"


def verify(weight: WeightFile, path: StrPath) -> str:
    """Check a cached copy of `weight`: "verified", or "no published checksum" where none is known; else a one-line error."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise WeightsError(f"{path}: empty file, not the {weight.name} checkpoint; {_fix(weight)}")
    if weight.bytes is not None and size != weight.bytes:
        raise WeightsError(f"{path}: has {size} bytes, the published {weight.name} checkpoint has {weight.bytes}; {_fix(weight)}")
    if weight.sha256 is None:
        try:
            with zipfile.ZipFile(path):
                pass
        except (zipfile.BadZipFile, OSError):
            raise WeightsError(f"{path}: truncated or corrupt (not a complete checkpoint archive); {_fix(weight)}") from None
        return "no published checksum"
    got = file_sha256(path)
    if got != weight.sha256:
        raise WeightsError(
            f"{path}: does not match the published {weight.name} checkpoint "
            f"(sha256 {got[:12]}…, expected {weight.sha256[:12]}…); {_fix(weight)}"
        )
    return "verified"


def _download_settings() -> tuple[float, int]:
    """The timeout (seconds) and retry count of downloads, from the environment where set."""
    try:
        timeout = float(os.environ.get("STREAMDET_DOWNLOAD_TIMEOUT") or DOWNLOAD_TIMEOUT)
        retries = int(os.environ.get("STREAMDET_DOWNLOAD_RETRIES") or DOWNLOAD_RETRIES)
    except ValueError:
        raise WeightsError("STREAMDET_DOWNLOAD_TIMEOUT must be seconds and STREAMDET_DOWNLOAD_RETRIES a whole number") from None
    if timeout <= 0 or retries < 0:
        raise WeightsError("STREAMDET_DOWNLOAD_TIMEOUT must be above 0 and STREAMDET_DOWNLOAD_RETRIES at least 0")
    return timeout, retries


def _failure(exc: Exception, timeout: float, tries: int) -> str:
    """What went wrong with a download, in a few words, from urllib3's error."""
    reason = exc.reason if isinstance(exc, MaxRetryError) else exc
    inner = reason.args[1] if isinstance(reason, ProtocolError) and len(reason.args) > 1 else reason
    after = f" ({tries} attempts)" if tries > 1 else ""
    if isinstance(reason, ConnectTimeoutError):
        return f"timed out connecting (no answer for {timeout:g} s){after}"
    if isinstance(reason, ReadTimeoutError):
        return f"timed out (no data for {timeout:g} s){after}"
    if isinstance(reason, NewConnectionError):
        return f"cannot connect ({str(reason).rsplit(': ', 1)[-1]}){after}"
    if isinstance(inner, IncompleteRead):
        return f"download cut short (got {inner.partial} of {inner.partial + inner.expected} bytes){after}"
    if isinstance(inner, (http.client.BadStatusLine, http.client.LineTooLong)):
        return f"the server's reply is not HTTP{after}"
    if isinstance(reason, ResponseError):
        return f"the server kept failing ({str(reason).removeprefix('too many ')}){after}"
    text = str(inner).strip().splitlines()
    return f"{text[0] if text else type(inner).__name__}{after}"


def _fetch(url: str, tmp: Path, progress: Progress | None) -> None:
    """Stream `url` into `tmp`, with timeouts, and retries with backoff (urllib3's Retry) for connection failures,
    server errors and replies that stop part-way (those start again); any failure is a one-line `WeightsError`."""
    timeout, retries = _download_settings()
    retry = urllib3.Retry(total=retries, backoff_factor=1.0, status_forcelist=RETRY_STATUS)
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout, read=timeout))
    while True:
        try:
            response = http.request("GET", url, preload_content=False, retries=retry)
        except (HTTPError, ValueError) as exc:  # MaxRetryError once the retries are spent, ValueError for a bad URL
            raise WeightsError(f"{url}: download failed: {_failure(exc, timeout, retries + 1)}") from None
        try:
            if response.status != 200:
                raise WeightsError(f"{url}: download failed: HTTP {response.status} {response.reason or ''}".rstrip())
            known = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            with open(tmp, "wb") as out:
                for chunk in response.stream(1 << 16):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, known)
            return
        except (ReadTimeoutError, ProtocolError) as exc:  # the body stopped: start again while attempts are left
            try:
                retry = (response.retries or retry).increment("GET", url, error=exc)
            except MaxRetryError as spent:
                raise WeightsError(f"{url}: download failed: {_failure(spent, timeout, retries + 1)}") from None
            retry.sleep()
        finally:
            response.release_conn()


def download(weight: WeightFile, dest: StrPath, progress: Progress | None = None) -> Path:
    """Fetch `weight` into `dest` through a temporary file, renamed (durably) only once complete and verified."""
    dest = Path(dest)
    with atomic_path(dest, fsync=True) as tmp:
        _fetch(weight.url, tmp, progress)
        size = tmp.stat().st_size
        if size == 0 or (weight.bytes is not None and size != weight.bytes):
            raise WeightsError(f"{weight.url}: download has {size} bytes, the published file has {weight.bytes or 'more'}")
        sha256 = _digest(tmp)
        if weight.sha256 is not None and sha256 != weight.sha256:
            raise WeightsError(f"{weight.url}: downloaded file does not match the published sha256 (got {sha256[:12]}…, expected {weight.sha256[:12]}…)")
    _remember(dest, dest.stat(), sha256)
    if weight.sha256 is None:
        log.warning("%s: no published checksum; downloaded %d bytes, sha256 %s", weight.name, size, sha256)
    return dest


def _missing_message(weight: WeightFile, reason: str) -> str:
    return (
        f"{weight.name}: checkpoint {weight.filename} is not cached ({reason}); "
        f"download {weight.url} and put it at {cached_path(weight)}, or pass the file with --{weight.kind}"
    )


def resolve(spec: str | Path, progress: Progress | None = None) -> Path:
    """Turn a registry name or a file path into a local file; an official file is downloaded if needed and verified."""
    spec_str = str(spec)
    if not spec_str:
        raise WeightsError("no checkpoint given: this config names none, pass a file with --adm / --student / --dire")
    weight = REGISTRY.get(spec_str)
    if weight is None:
        path = Path(spec_str).expanduser()
        if not path.exists():
            known = ", ".join(REGISTRY)
            raise WeightsError(f"{spec_str}: no such checkpoint file or registered name (registered: {known})")
        if not path.is_file():
            raise WeightsError(f"{spec_str}: is not a file")
        return path
    path = cached_path(weight)
    if path.is_file():
        verify(weight, path)
        return path
    if weight.manual:
        raise WeightsError(
            f"{weight.name}: checkpoint {weight.filename} is not cached and cannot be downloaded automatically; "
            f"get it from {weight.url} and put it at {path}, or pass the file with --{weight.kind}"
        )
    if offline():
        raise WeightsError(_missing_message(weight, "STREAMDET_OFFLINE is set"))
    try:
        return download(weight, path, progress)
    except WeightsError as exc:
        raise WeightsError(_missing_message(weight, str(exc))) from None


def check_archive(path: StrPath) -> None:
    """Refuse a zip checkpoint (torch's format) whose bytes do not match the CRC-32s stored with them: torch.load does
    not check them, so a damaged tensor would load silently. Checked once per size, mtime and inode (remembered)."""
    path = Path(path)
    stat = path.stat()
    if _record(path, stat).get("zip_crc") == "ok" or not zipfile.is_zipfile(path):
        return  # checked before, or the legacy pickle format (no CRCs to check)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise WeightsError(f"{path}: truncated or corrupt checkpoint ({exc})") from None
    if bad is not None:
        raise WeightsError(f"{path}: corrupt checkpoint: the bytes of {bad} do not match their CRC-32 (damaged on disk or in transfer); get the file again")
    _remember(path, stat, zip_crc="ok")


def _refusal(path: Path, exc: Exception) -> str:
    """Why torch's data-only loader refused a file, without its advice to load it as code: a file naming Python
    objects is refused as such; anything else is not a checkpoint (its own reason, the boilerplate dropped)."""
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    if found:
        return f"{path}: refused: it holds Python objects ({found.group(1)}), not only tensors; streamdet loads checkpoints as data only and never runs code from one"
    own = [line.strip() for line in str(exc).splitlines()[1:] if line.strip() and not line.startswith(("Please file", "Check the documentation"))]
    return f"{path}: not a PyTorch checkpoint ({own[0] if own else 'unpickling error'})"


def load_checkpoint(path: str | Path) -> Any:
    """Read a checkpoint as data only (`weights_only=True`), after checking its CRCs; any failure is one line naming the file."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise WeightsError(f"{path}: empty file, not a checkpoint")
        check_archive(path)
        import torch

        return torch.load(path, map_location="cpu", weights_only=True)
    except WeightsError:
        raise
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such checkpoint file") from None
    except (zipfile.BadZipFile, EOFError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "zip" in first.lower() or "central directory" in first.lower() or isinstance(exc, EOFError):
            raise WeightsError(f"{path}: truncated or corrupt checkpoint ({first})") from None
        raise WeightsError(f"{path}: cannot load checkpoint ({first})") from None
    except pickle.UnpicklingError as exc:
        raise WeightsError(_refusal(path, exc)) from None
    except Exception as exc:  # other pickle errors, OS errors: all are "not a checkpoint"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: not a PyTorch checkpoint ({first})") from None


def state_dict_of(obj: Any, path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: a plain state_dict or a `{"model": state_dict, ...}` file, `module.` stripped."""
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{path}: checkpoint holds no state_dict (found {type(obj).__name__})")
    import torch

    state: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        state[key[len("module.") :] if key.startswith("module.") else key] = value
    return state


def load_into(module: torch.nn.Module, state: Mapping[str, torch.Tensor], path: str | Path, what: str) -> None:
    """Copy `state` into `module` after checking keys and shapes, so that a mismatch is one clear line."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first: {unexpected[0]})")
        raise WeightsError(f"{path}: does not fit the {what}: {', '.join(parts)}")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise WeightsError(
                f"{path}: does not fit the {what}: {key} has shape {tuple(state[key].shape)}, "
                f"the config needs {tuple(tensor.shape)}"
            )
    module.load_state_dict(state, strict=True)


def fetch_all(names: list[str], progress_factory: Callable[[WeightFile], Progress] | None = None) -> list[Path]:
    """Download the named official files (all that can be downloaded when `names` is empty) into the cache."""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise WeightsError(f"{unknown[0]}: not a registered checkpoint (registered: {', '.join(REGISTRY)})")
    paths = []
    for name in names or [w.name for w in REGISTRY.values() if not w.manual]:
        weight = REGISTRY[name]
        progress = progress_factory(weight) if progress_factory else None
        paths.append(resolve(name, progress))
    return paths



def resolve_all(specs: Mapping[str, str | Path], progress: Callable[[str], Progress] | None = None) -> dict[str, Path]:
    """Resolve every checkpoint a run needs (`specs`: label → name or file), downloading what is missing; the
    registered ones that cannot be had are reported together in one error, with their sizes and the command
    that fetches them all, rather than one at a time after each download."""
    found: dict[str, Path] = {}
    missing: list[tuple[WeightFile, str]] = []
    for label, spec in specs.items():
        weight = REGISTRY.get(str(spec))
        try:
            found[label] = resolve(spec, progress(label) if progress else None)
        except WeightsError as exc:
            if weight is None or cached_path(weight).is_file():
                raise
            missing.append((weight, str(exc)))
    if len(missing) == 1:
        raise WeightsError(missing[0][1])
    if missing:
        total = sum(w.size_mb for w, _ in missing)
        listed = ", ".join(f"{w.name} ({w.size_mb} MB{', a manual download' if w.manual else ''})" for w, _ in missing)
        fetchable = [w.name for w, _ in missing if not w.manual]
        how = f"run `streamdet weights download {' '.join(fetchable)}` where the network is reachable" if fetchable else "see `streamdet weights list`"
        raise WeightsError(f"{len(missing)} checkpoints are not cached ({total} MB in all): {listed}; {how}, or pass files with " + " / ".join(f"--{w.kind}" for w, _ in missing))
    return found
