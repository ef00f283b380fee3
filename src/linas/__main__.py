"""``python -m linas`` (and ``torchrun ... -m linas search``): the ``linas`` command."""

from linas.cli.main import entrypoint

if __name__ == "__main__":
    entrypoint()
