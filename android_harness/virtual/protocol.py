"""The ADB transport protocol, device side: 24-byte message headers and payloads.

Header (little-endian uint32 x 6): command, arg0, arg1, data_length, data_check (byte sum of the
payload; hosts of version >= 0x01000001 may send 0), magic (command ^ 0xffffffff). See AOSP
``packages/modules/adb/protocol.txt``.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_AUTH = 0x48545541
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_STLS = 0x534C5453
A_VERSION = 0x01000001
MAX_PAYLOAD = 256 * 1024

AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3

NAMES = {A_SYNC: "SYNC", A_CNXN: "CNXN", A_AUTH: "AUTH", A_OPEN: "OPEN", A_OKAY: "OKAY", A_CLSE: "CLSE",
         A_WRTE: "WRTE", A_STLS: "STLS"}
_HEADER = struct.Struct("<6I")


class ProtocolError(Exception):
    """A peer sent bytes that are not an ADB message."""


@dataclass(frozen=True)
class Message:
    command: int
    arg0: int
    arg1: int
    data: bytes = b""

    @property
    def name(self) -> str:
        return NAMES.get(self.command, hex(self.command))

    def pack(self) -> bytes:
        return _HEADER.pack(self.command, self.arg0, self.arg1, len(self.data), checksum(self.data),
                            self.command ^ 0xFFFFFFFF) + self.data


def checksum(data: bytes) -> int:
    return sum(data) & 0xFFFFFFFF


def unpack_header(header: bytes) -> tuple[int, int, int, int, int]:
    """(command, arg0, arg1, data_length, data_check) of a 24-byte header; raises on a bad magic."""
    if len(header) != _HEADER.size:
        raise ProtocolError(f"short header: {len(header)} bytes")
    command, arg0, arg1, length, check, magic = _HEADER.unpack(header)
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic {magic:#x} for command {command:#x}")
    if length > 16 * 1024 * 1024:
        raise ProtocolError(f"payload too large: {length}")
    return command, arg0, arg1, length, check


def read_message(recv_exact, max_length: int | None = None) -> Message:
    """Read one message with ``recv_exact(n) -> bytes``; verifies a non-zero checksum. ``max_length`` caps the
    payload (before authentication a host has no business sending more than a key)."""
    command, arg0, arg1, length, check = unpack_header(recv_exact(_HEADER.size))
    if max_length is not None and length > max_length:
        raise ProtocolError(f"{NAMES.get(command, hex(command))}: payload of {length} bytes, at most {max_length}")
    data = recv_exact(length) if length else b""
    if check and check != checksum(data):
        raise ProtocolError(f"{NAMES.get(command, command)}: checksum mismatch")
    return Message(command, arg0, arg1, data)


# Shell protocol v2 packets: 1-byte id, 4-byte little-endian length, payload (AOSP shell_protocol.h).
SHELL_STDIN, SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT, SHELL_CLOSE_STDIN, SHELL_WINDOW = 0, 1, 2, 3, 4, 5


def shell_packet(kind: int, data: bytes) -> bytes:
    return struct.pack("<BI", kind, len(data)) + data


def sync_packet(tag: bytes, value: int, data: bytes = b"") -> bytes:
    """A file-sync packet: 4-byte tag, 4-byte little-endian value (usually the length), payload."""
    return tag + struct.pack("<I", value) + data
