"""``python -m linas.cli``: same as the ``linas`` console script."""

from linas.cli.main import entrypoint

entrypoint()
