"""midbot service: settings, app factory, HTTP routes, store and CLI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("midbot")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
