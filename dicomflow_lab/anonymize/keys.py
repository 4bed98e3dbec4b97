"""Secret keys for reproducible anonymization: sub-keys, fingerprints and keyed hashes.

Everything the engine derives (new UIDs, date offsets, pseudonyms, audit hashes) is an
HMAC-SHA256 of the original value under a sub-key of the user's secret key, so the same
input and key give the same output on any machine, and nobody without the key can invert
or recompute the mapping.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["as_key", "derive", "fingerprint", "new_key", "value_hash"]


def new_key() -> str:
    """Return a new random key: 64 hex characters (256 bits) from :mod:`secrets`.

    Examples
    --------
    >>> len(new_key())
    64
    """
    return secrets.token_hex(32)


def as_key(key: str | bytes) -> bytes:
    """Return ``key`` as bytes (a ``str`` is encoded as UTF-8).

    Raises
    ------
    ValueError
        If the key is empty.
    TypeError
        If the key is neither ``str`` nor ``bytes``.
    """
    if isinstance(key, str):
        data = key.encode("utf-8")
    elif isinstance(key, bytes | bytearray | memoryview):
        data = bytes(key)
    else:
        raise TypeError(f"key must be str or bytes, not {type(key).__name__}")
    if not data:
        raise ValueError("key must not be empty")
    return data


def derive(key: str | bytes, purpose: str) -> bytes:
    """Return the sub-key for one use: HMAC-SHA256(key, purpose).

    Parameters
    ----------
    key : str or bytes
        The user's secret key.
    purpose : str
        What the sub-key is for (``"uid"``, ``"date"``, ``"pid"`` ...).
    """
    return hmac.new(as_key(key), purpose.encode("utf-8"), hashlib.sha256).digest()


def fingerprint(key: str | bytes) -> str:
    """Return 12 hex characters identifying ``key``; safe to store and show.

    Two runs with the same fingerprint used the same key. The fingerprint reveals nothing
    usable about the key (it is an HMAC of a constant).
    """
    return hmac.new(as_key(key), b"fingerprint", hashlib.sha256).hexdigest()[:12]


def value_hash(key: str | bytes, data: bytes) -> str:
    """Return a keyed 16-hex-character hash of ``data`` (the audit's "old value hash").

    Equal values give equal hashes under one key, so an audit can show that a value was
    the same in two files without storing it.
    """
    return hmac.new(derive(key, "audit"), bytes(data), hashlib.sha256).hexdigest()[:16]
