"""The vendor's signing keys and the customers' trusted public keys.

A signing key is an Ed25519 private key in an unencrypted PKCS#8 PEM file named
``<key_id>.key``, mode 0600, kept by the vendor and never shipped. Its public key,
``<key_id>.pem`` (SubjectPublicKeyInfo PEM), is what customers install among their
trusted keys; the file's name without ``.pem`` is the key id that signatures carry.
Nothing here prints or returns key bytes except to write the two files.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from tradehub_license.document import validate_key_id
from tradehub_license.errors import InputError

PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pem"
#: A key file is a few hundred bytes; anything much larger is not one.
_MAX_KEY_BYTES = 64 * 1024


@dataclass(frozen=True)
class KeyPair:
    """Where :func:`generate` wrote a new key pair."""

    key_id: str
    private_path: Path
    public_path: Path


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The public key as SubjectPublicKeyInfo PEM: the content of ``<key_id>.pem``."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create *path* with *mode* from the start (never wider), failing if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may only have narrowed it; make it exact
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        os.close(fd)


def generate(key_id: str, out_dir: Path) -> KeyPair:
    """Create ``out_dir/<key_id>.key`` (0600) and ``out_dir/<key_id>.pem`` (0644).

    Refuses, writing nothing, when either file exists: overwriting a signing key would
    make every license signed with it unverifiable by hubs that trust the old
    ``.pem``. *out_dir* is created (mode 0700) when missing.
    """
    validate_key_id(key_id)
    private_path = out_dir / f"{key_id}{PRIVATE_SUFFIX}"
    public_path = out_dir / f"{key_id}{PUBLIC_SUFFIX}"
    existing = [str(p) for p in (private_path, public_path) if p.exists()]
    if existing:
        raise InputError(
            f"{' and '.join(existing)} already "
            f"{'exist' if len(existing) > 1 else 'exists'}: a key is never overwritten; "
            "choose a new key id (e.g. with the next number) or another --out directory"
        )
    try:
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create directory {out_dir}: {exc.strerror}") from None
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        _write_new(private_path, private_pem, 0o600)
        try:
            _write_new(public_path, public_key_pem(key), 0o644)
        except OSError:
            private_path.unlink()  # no half key pair left behind
            raise
    except FileExistsError as exc:
        raise InputError(
            f"{exc.filename} appeared while writing; nothing was kept, run again"
        ) from None
    except OSError as exc:
        raise InputError(
            f"cannot write {exc.filename or out_dir}: {exc.strerror}"
        ) from None
    return KeyPair(key_id, private_path, public_path)


def _read_small(path: Path, what: str) -> bytes:
    try:
        if path.stat().st_size > _MAX_KEY_BYTES:
            raise InputError(f"{path} is too large to be {what}")
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path} not found: give the path of {what}") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not {what}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def load_private_key(path: Path) -> tuple[str, Ed25519PrivateKey]:
    """Read a signing key; its key id is the file's name without the suffix."""
    key_id = path.name.removesuffix(PRIVATE_SUFFIX)
    if key_id == path.name:
        raise InputError(
            f"{path} is not a signing key file: signing keys are named "
            f"<key_id>{PRIVATE_SUFFIX}, as 'tradehub-license keygen' writes them"
        )
    try:
        validate_key_id(key_id)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    data = _read_small(path, "an Ed25519 private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise InputError(
            f"{path} is encrypted with a passphrase; give an unencrypted PKCS#8 key "
            "(keep it on an offline, access-controlled machine instead)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise InputError(f"{path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{path} is not an Ed25519 private key")
    return key_id, key


def private_key_warning(path: Path) -> str | None:
    """A warning when a signing key is readable by other users than its owner."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if mode & 0o077:
        return (
            f"{path} is readable by other users (mode {mode:04o}): run chmod 600 {path}"
        )
    return None


def load_trusted_keys(
    location: Path,
) -> tuple[dict[str, Ed25519PublicKey], list[str]]:
    """Read the trusted keys: every ``<key_id>.pem`` of a directory, or one ``.pem``.

    Returns the usable keys by key id, and one note per file that is not an Ed25519
    public key (such files are skipped, as hubs skip them). InputError when there is
    no usable key at all, since nothing could then be verified.
    """
    if location.is_dir():
        paths = sorted(location.glob(f"*{PUBLIC_SUFFIX}"))
    elif location.is_file() and location.name.endswith(PUBLIC_SUFFIX):
        paths = [location]
    else:
        raise InputError(
            f"trusted keys {location}: not a directory or a <key_id>.pem file; "
            "give the directory of the vendor's <key_id>.pem files, or one such file"
        )
    keys: dict[str, Ed25519PublicKey] = {}
    problems: list[str] = []
    for path in paths:
        try:
            data = _read_small(path, "a public key")
            key = serialization.load_pem_public_key(data)
        except InputError as exc:
            problems.append(str(exc))
            continue
        except (ValueError, UnsupportedAlgorithm):
            problems.append(f"{path.name} is not a PEM public key; skipped")
            continue
        if not isinstance(key, Ed25519PublicKey):
            problems.append(f"{path.name} is not an Ed25519 public key; skipped")
            continue
        keys[path.name.removesuffix(PUBLIC_SUFFIX)] = key
    if not keys:
        found = "; ".join(problems) or f"no *{PUBLIC_SUFFIX} file"
        raise InputError(f"no usable trusted key in {location} ({found})")
    return keys, problems
