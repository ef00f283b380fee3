"""Command line interface (``linas``)."""
