"""ADB wire format: packet header, checksums, and Android's RSA public-key struct (for signature checks)."""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass

CNXN, AUTH, OPEN, OKAY, WRTE, CLSE, STLS = (0x4E584E43, 0x48545541, 0x4E45504F, 0x59414B4F,
                                            0x45545257, 0x45534C43, 0x534C5453)
NAMES = {CNXN: "CNXN", AUTH: "AUTH", OPEN: "OPEN", OKAY: "OKAY", WRTE: "WRTE", CLSE: "CLSE", STLS: "STLS"}
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3
VERSION_MIN = 0x01000000
VERSION_SKIP_CHECKSUM = 0x01000001
MAX_PAYLOAD = 1024 * 1024
MAX_HANDSHAKE_PAYLOAD = 4096
HEADER = struct.Struct("<6I")

# DER DigestInfo prefix for SHA-1 (PKCS#1 v1.5): adbd calls RSA_verify(NID_sha1, token, ...).
SHA1_DIGEST_INFO = bytes.fromhex("3021300906052b0e03021a05000414")


class ProtocolError(Exception):
    """A packet that breaks the protocol: the connection that sent it is closed."""


@dataclass
class Packet:
    command: int
    arg0: int
    arg1: int
    payload: bytes = b""

    @property
    def name(self) -> str:
        return NAMES.get(self.command, f"0x{self.command:08x}")


def checksum(payload: bytes) -> int:
    """The ADB `data_check`: unsigned byte sum of the payload (not a CRC)."""
    return sum(payload) & 0xFFFFFFFF


def pack(command: int, arg0: int, arg1: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(command, arg0, arg1, len(payload), checksum(payload), command ^ 0xFFFFFFFF) + payload


def parse_header(header: bytes, max_payload: int) -> tuple[int, int, int, int, int]:
    """Validate a 24-byte header; return (command, arg0, arg1, length, data_check)."""
    command, arg0, arg1, length, check, magic = HEADER.unpack(header)
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic 0x{magic:08x} for command 0x{command:08x}")
    if command not in NAMES:
        raise ProtocolError(f"unknown command 0x{command:08x}")
    if length > max_payload:
        raise ProtocolError(f"payload of {length} bytes exceeds the maximum {max_payload}")
    return command, arg0, arg1, length, check


def verify_checksum(payload: bytes, check: int, version: int) -> None:
    """Zero is allowed from protocol version 0x01000001 on; any non-zero value must be right."""
    if check == 0 and (version >= VERSION_SKIP_CHECKSUM or not payload):
        return
    if check != checksum(payload):
        raise ProtocolError(f"bad checksum 0x{check:08x} (payload sums to 0x{checksum(payload):08x})")


@dataclass(frozen=True)
class AndroidPublicKey:
    """The `RSAPublicKey` struct of Android's adb, base64 in `adbkey.pub` / `adb_keys`."""

    n: int
    e: int
    comment: str = ""

    @classmethod
    def parse(cls, line: str | bytes) -> "AndroidPublicKey":
        if isinstance(line, bytes):
            line = line.rstrip(b"\0").decode("ascii", "replace")
        parts = line.strip().split(None, 1)
        if not parts:
            raise ValueError("empty public key")
        raw = base64.b64decode(parts[0], validate=False)
        if len(raw) < 4 + 4 + 256 + 256 + 4:
            raise ValueError("public key struct too short")
        words = struct.unpack_from("<I", raw, 0)[0]
        nbytes = words * 4
        if len(raw) < 8 + 2 * nbytes + 4:
            raise ValueError("public key struct truncated")
        n = int.from_bytes(raw[8:8 + nbytes], "little")
        e = struct.unpack_from("<I", raw, 8 + 2 * nbytes)[0]
        return cls(n=n, e=e, comment=parts[1] if len(parts) > 1 else "")

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.n.to_bytes(256, "big")).hexdigest()[:16]

    def verify(self, token: bytes, signature: bytes) -> bool:
        """PKCS#1 v1.5 check of `signature` over the raw token used as a SHA-1 digest."""
        k = (self.n.bit_length() + 7) // 8
        if len(signature) != k:
            return False
        em = pow(int.from_bytes(signature, "big"), self.e, self.n).to_bytes(k, "big")
        digest_info = SHA1_DIGEST_INFO + token
        expected = b"\x00\x01" + b"\xff" * (k - 3 - len(digest_info)) + b"\x00" + digest_info
        return em == expected


class StreamClosed(Exception):
    """The host closed the stream (or the connection went away)."""
