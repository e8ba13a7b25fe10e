"""ADB's RSA keys: the key pair a host signs with, and the public-key list a phone trusts.

- ``~/.android/adbkey`` (PKCS#8 PEM, mode 0600) and ``adbkey.pub`` (Android's public-key format: base64 of
  the mincrypt ``RSAPublicKey`` struct, then `` user@host``), created the way ``adb`` creates them.
- ``adb_keys``: one public key per line, as in ``/data/misc/adb/adb_keys`` on a phone.
- :func:`verify_token`: what adbd does with an ``AUTH(SIGNATURE)``: RSA PKCS#1 v1.5 with the SHA-1
  DigestInfo around the 20-byte token, *not* a hash of it (``RSA_verify(NID_sha1, token, …)`` in adbd).

Key material is never logged.
"""
from __future__ import annotations

import base64
import binascii
import getpass
import hmac
import logging
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from android_harness.errors import HarnessError

log = logging.getLogger(__name__)

MODULUS_BYTES = 2048 // 8
_STRUCT = struct.Struct(f"<II{MODULUS_BYTES}s{MODULUS_BYTES}sI")  # 524 bytes, ANDROID_PUBKEY_ENCODED_SIZE
# DER DigestInfo prefix of SHA-1 (RFC 8017 section 9.2 note 1).
_SHA1_PREFIX = bytes.fromhex("3021300906052b0e03021a05000414")
TOKEN_BYTES = 20


@dataclass(frozen=True)
class AdbPublicKey:
    modulus: int
    exponent: int
    comment: str = ""

    def verify(self, token: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's PKCS#1 v1.5 SHA-1 signature of the (pre-hashed) ``token``."""
        if len(signature) != MODULUS_BYTES or len(token) != TOKEN_BYTES:
            return False
        s = int.from_bytes(signature, "big")
        if s >= self.modulus:
            return False
        em = pow(s, self.exponent, self.modulus).to_bytes(MODULUS_BYTES, "big")
        digest_info = _SHA1_PREFIX + token
        expected = b"\x00\x01" + b"\xff" * (MODULUS_BYTES - 3 - len(digest_info)) + b"\x00" + digest_info
        return hmac.compare_digest(em, expected)

    def encode(self) -> str:
        """The base64 text adb writes to ``adbkey.pub`` (without the comment)."""
        n = self.modulus
        n0inv = (-pow(n, -1, 2**32)) % 2**32
        rr = pow(2, 2 * MODULUS_BYTES * 8, n)
        raw = _STRUCT.pack(MODULUS_BYTES // 4, n0inv, n.to_bytes(MODULUS_BYTES, "little"),
                           rr.to_bytes(MODULUS_BYTES, "little"), self.exponent)
        return base64.b64encode(raw).decode()


def decode_public_key(text: str | bytes) -> AdbPublicKey:
    """Parse one ``adbkey.pub`` line (``BASE64 [comment]``); raises ValueError if it is not a 2048-bit key."""
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    text = text.strip().rstrip("\x00")
    b64, _, comment = text.replace("\t", " ").partition(" ")
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64: {exc}") from None
    if len(raw) != _STRUCT.size:
        raise ValueError(f"an Android public key is {_STRUCT.size} bytes, this one {len(raw)}")
    words, _n0inv, modulus, _rr, exponent = _STRUCT.unpack(raw)
    if words != MODULUS_BYTES // 4:
        raise ValueError(f"only 2048-bit keys are supported, modulus_size_words={words}")
    n = int.from_bytes(modulus, "little")
    if n.bit_length() < 2000 or exponent not in (3, 65537):
        raise ValueError("implausible RSA public key")
    return AdbPublicKey(n, exponent, comment.strip())


def read_adb_keys(path: str | Path) -> list[AdbPublicKey]:
    """Every valid key in an ``adb_keys`` file (bad lines are skipped, as adbd does). Missing file: []."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return []
    keys = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            keys.append(decode_public_key(line))
        except ValueError as exc:
            log.warning("%s line %d is not an ADB public key (%s); skipped", path, number, exc)
    return keys


def adb_user_dir() -> Path:
    """``$ANDROID_USER_HOME``, else ``$ANDROID_SDK_HOME/.android``, else ``~/.android`` (where adb keeps its key)."""
    if os.environ.get("ANDROID_USER_HOME"):
        return Path(os.environ["ANDROID_USER_HOME"])
    if os.environ.get("ANDROID_SDK_HOME"):
        return Path(os.environ["ANDROID_SDK_HOME"]) / ".android"
    return Path(os.environ.get("HOME") or Path.home()) / ".android"


def default_key_path() -> Path:
    return adb_user_dir() / "adbkey"


def _user_at_host() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry: adb falls back the same way
        user = "unknown"
    return f"{user}@{socket.gethostname() or 'unknown'}"


def ensure_key_pair(path: str | Path | None = None) -> Path:
    """The private key at ``path`` (default ``~/.android/adbkey``) with its ``.pub``; created like adb does.

    A missing pair is generated (RSA-2048, e=65537): the private key is written 0600 from the start (never
    readable by others, even briefly), the public key next to it. A private key without its ``.pub`` gets the
    ``.pub`` rebuilt from it.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = Path(path) if path else default_key_path()
    pub = key.with_name(key.name + ".pub")
    if key.exists():
        if pub.exists():
            return key
        try:
            private = serialization.load_pem_private_key(key.read_bytes(), password=None)
        except (ValueError, TypeError, OSError) as exc:
            raise HarnessError(f"{key} is not a PEM RSA private key ({exc}). Move it away and a new one is "
                               f"created, or pass another key") from exc
    else:
        key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        tmp = key.with_name(f".{key.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        os.replace(tmp, key)
        log.info("created a new adb key at %s", key)
    numbers = private.public_key().public_numbers()
    text = AdbPublicKey(numbers.n, numbers.e).encode() + f" {_user_at_host()}\n"
    tmp = pub.with_name(f".{pub.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, pub)
    return key
