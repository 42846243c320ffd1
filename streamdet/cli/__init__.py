"""The `streamdet` command: one module per command, each a thin wrapper that parses options, calls the library and prints.

Every module imports the heavy libraries (torch, PyAV, pydantic, the report code) inside its command, so
`--help`, `--version` and a mistyped option answer without loading them.
"""

from __future__ import annotations

import logging
import os
import warnings

import typer
from typer.core import TyperCommand, TyperGroup

from ..allocator import reuse_frame_buffers
from ..errors import OneLineFormatter
from ..version import __version__
from . import batch, calibrate, checkpoints, compression, datasets, export, scan, serve, training, watch

def print_version(on: bool) -> None:
    """`--version`: print and exit before any command is needed."""
    if on:
        typer.echo(f"streamdet {__version__}")
        raise typer.Exit(0)


def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", metavar="", help="Log what streamdet is doing."),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=print_version, metavar="", help="Print the version and exit."),
) -> None:
    logging.basicConfig(format="streamdet: %(levelname)s: %(message)s", level=logging.INFO if verbose else logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(OneLineFormatter("streamdet: %(levelname)s: %(message)s"))
    reuse_frame_buffers()
    if not verbose:
        quiet_libraries()


def quiet_libraries() -> None:
    """Keep the libraries' own warnings (torch's CUDA_HOME notice, guided-diffusion's FutureWarnings, OpenCV's
    `[ WARN:0@…]` lines for damaged images) off stderr: users see streamdet's messages; --verbose shows all."""
    warnings.simplefilter("ignore")
    logging.getLogger("torch").setLevel(logging.ERROR)
    os.environ.setdefault("TORCH_LOGS", "-torch")  # torch, imported later, resets its loggers from this on import
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # read when OpenCV is first imported, which the CLI defers


class _Flagged:
    """`--help` listed as the flag it is: typer gives click's help option a `<bool>` type column, as if it took a value."""

    def get_help_option(self, ctx):  # type: ignore[no-untyped-def]
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = ""
        return option


class Group(_Flagged, TyperGroup):
    """The app and its sub-apps (weights, compress)."""


class Command(_Flagged, TyperCommand):
    """Every command."""


app = typer.Typer(cls=Group, rich_markup_mode=None, add_completion=False, no_args_is_help=True, help="Find diffusion- and GAN-made frames in videos and streams.")
app.callback()(main)
for name, command in [
    ("scan", scan.scan), ("batch", batch.batch_command), ("calibrate", calibrate.calibrate_command), ("watch", watch.watch_command),
    ("serve", serve.serve_command), ("export", export.export_command), ("frames", datasets.frames_command),
    ("prepare", datasets.prepare_command), ("train", training.train_command), ("eval", training.eval_command),
    ("distill-lite", training.distill_lite_command),
]:
    app.command(name, cls=Command)(command)

weights_app = typer.Typer(cls=Group, rich_markup_mode=None, no_args_is_help=True, help="The official checkpoints: list, download, locate.")
for name, command in [("list", checkpoints.weights_list), ("download", checkpoints.weights_download), ("path", checkpoints.weights_path)]:
    weights_app.command(name, cls=Command)(command)
app.add_typer(weights_app, name="weights")

compress_app = typer.Typer(cls=Group, rich_markup_mode=None, no_args_is_help=True, help="Smaller students: prune, svd or quantize one, then fine-tune it against the original.")
for name, command in [("prune", compression.compress_prune), ("svd", compression.compress_svd), ("quantize", compression.compress_quantize)]:
    compress_app.command(name, cls=Command)(command)
app.add_typer(compress_app, name="compress")
