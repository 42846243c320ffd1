"""`streamdet weights list|download|path`: the registered checkpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING, List

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import StreamdetError
from .common import download_progress, fail, stdout_console, user_errors, weights

if TYPE_CHECKING:
    pass


def weights_list() -> None:
    """The registered checkpoints, whether each is cached, and where."""
    out = Table(title=f"checkpoints (cache: {weights.home() / 'weights'})", title_justify="left")
    for column in ("name", "kind", "size", "cached", "description"):
        out.add_column(column, no_wrap=column == "name")
    for w in weights.REGISTRY.values():
        out.add_row(w.name, w.kind, f"{w.size_mb} MB", cached_state(w), w.description)
    stdout_console().print(out)


def cached_state(weight: weights.WeightFile) -> str:
    """'no', or the state of the cached copy: verified, no published checksum, or why it cannot be used."""
    path = weights.cached_path(weight)
    if not path.is_file():
        return "no (manual)" if weight.manual else "no"
    try:
        return f"yes ({weights.verify(weight, path)})"
    except StreamdetError as exc:
        return f"[red]unusable[/]: {escape(str(exc))}"


def weights_download(names: List[str] = typer.Argument(None, help="Names from `streamdet weights list` (default: all).")) -> None:
    """Download checkpoints into the cache (skipping those already there)."""
    with user_errors():
        for path in weights.fetch_all(list(names or []), lambda w: download_progress(w.name)):
            typer.echo(str(path))


def weights_path(name: str = typer.Argument(..., help="A name from `streamdet weights list`.")) -> None:
    """Print where a checkpoint is (or will be) cached; exit 1 if it is not there yet."""
    weight = weights.REGISTRY.get(name)
    if weight is None:
        fail(f"{name}: not a registered checkpoint (registered: {', '.join(weights.REGISTRY)})")
    path = weights.cached_path(weight)
    typer.echo(str(path))
    raise typer.Exit(0 if path.is_file() else 1)
