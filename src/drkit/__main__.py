"""``python -m drkit``."""

from drkit.cli.main import run

run()
