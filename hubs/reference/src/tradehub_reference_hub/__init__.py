"""Reference hub of the Private Trade Hub, honouring hub contract version 1.

The artifact version comes from the installed distribution's metadata, so that
pyproject.toml stays the only place where it is written.
"""

from importlib import metadata

DISTRIBUTION = "tradehub-reference-hub"

try:
    __version__ = metadata.version(DISTRIBUTION)
except metadata.PackageNotFoundError:  # imported from a source tree, not installed
    __version__ = "0+unknown"

#: The version of docs/hub-contract.md that this artifact honours.
CONTRACT_VERSION = 1
