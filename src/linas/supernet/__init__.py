"""supernet."""
