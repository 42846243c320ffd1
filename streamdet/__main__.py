"""The `streamdet` command (`python -m streamdet` too), with the exit codes users rely on whatever happens.

Exit 1 means "a FAKE was found", so nothing unexpected may end in 1: an error streamdet did not foresee is one
line on stderr and exit 2 (the traceback with --verbose), and Ctrl-C, even while the first imports run, is 130.
"""

from __future__ import annotations

import sys
import traceback

INTERRUPTED = 130


def main() -> None:
    """Run the command line; map click's and Python's own endings onto streamdet's exit codes."""
    try:
        from .cli import app
    except KeyboardInterrupt:
        interrupted()
    try:
        code = app(verbose_first(sys.argv[1:]), prog_name="streamdet", standalone_mode=False)
    except KeyboardInterrupt:
        interrupted()
    except Exception as exc:  # anything unforeseen: one line and exit 2, never 1 (FAKE)
        if type(exc).__name__ == "Abort":  # click's own Ctrl-C
            interrupted()
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):  # a usage error: click says it
            exc.show()
            sys.exit(2 if exc.exit_code == 1 else exc.exit_code)
        if "--verbose" in sys.argv or "-v" in sys.argv:
            traceback.print_exc()
        text = " ".join(str(exc).split())[:300]
        print(f"streamdet: error: unexpected {type(exc).__name__}: {text} (rerun with --verbose for the traceback)", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


def verbose_first(args: list[str]) -> list[str]:
    """`streamdet scan x --verbose` as `streamdet --verbose scan x`: --verbose is the app's option, given anywhere."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in ("--verbose", "-v")]
    return [*flags, *(a for a in args[:end] if a not in ("--verbose", "-v")), *args[end:]] if flags else args


def interrupted() -> None:
    """Ctrl-C before a command could report its own progress: one line, exit 130."""
    print("streamdet: interrupted; nothing written", file=sys.stderr)
    sys.exit(INTERRUPTED)


if __name__ == "__main__":
    main()
