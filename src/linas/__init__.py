"""LINAS+: hardware-aware NAS of a segmentation decoder for several devices at once."""

from linas._errors import ConfigError, DataError, LinasError, LUTError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "LUTError", "LinasError", "__version__"]
