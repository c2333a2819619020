"""The two kinds of failure, which the command line maps to its exit codes.

``LicenseRefused`` (exit 1) means a license file was read and does not verify; its
``code`` is a stable short name (the list is in :data:`REFUSAL_CODES`) that scripts can
test, and its message says why in words. ``InputError`` (exit 2) means the tool could
not do its job with what it was given: an unreadable file, a bad description, a key
that is not an Ed25519 key. Every message names the input and, where there is one, the
fix. No message ever contains key material.
"""

from __future__ import annotations

#: Why a license is refused, in the order a verifier checks them (docs/licensing.md).
REFUSAL_CODES = (
    "empty",  # the file has no content
    "not-json",  # not UTF-8 JSON, or cut short
    "not-object",  # JSON, but not an object
    "wrong-format",  # "format" is not tradehub-license/1
    "bad-payload",  # "payload" is not base64 of a JSON object with valid fields
    "no-signatures",  # "signatures" is missing, empty or not a list
    "unknown-key",  # no signature names a trusted key
    "bad-signature",  # a trusted key's signature does not verify the payload bytes
    "other-customer",  # issued to another customer
    "hub-not-covered",  # a hub asked for is not in "hubs"
    "other-deployment",  # bound to another deployment
    "not-yet-valid",  # before not_before
    "expired",  # after expires_at plus the grace days
)


class LicenseRefused(Exception):
    """A license file that does not verify; ``code`` is one of :data:`REFUSAL_CODES`."""

    def __init__(self, code: str, message: str) -> None:
        if code not in REFUSAL_CODES:
            raise ValueError(f"unknown refusal code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message


class InputError(Exception):
    """Something the tool was given cannot be used; the message names it and the fix."""
