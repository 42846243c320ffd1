"""`python -m streamdet` runs the command line."""

from .cli import app

app(prog_name="streamdet")
