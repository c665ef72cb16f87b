"""contactsim: a discrete-event simulator of contact strategies for delinquent borrowers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("contactsim")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = ["__version__"]
