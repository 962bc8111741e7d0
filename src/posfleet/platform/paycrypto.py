"""Terminal keys and message MACs for the ISO 8583 gateway (ADR 0024).

Pure functions over ``bytes``: no models, no database, no logging. Two algorithms, chosen per terminal
model by the caller:

- ``Algorithm.X919``: double-length (16-byte) Triple DES keys; the MAC is ANSI X9.19, the retail MAC
  (ISO/IEC 9797-1 MAC algorithm 3, padding method 1).
- ``Algorithm.SM4``: 128-bit SM4 keys (GB/T 32907-2016); the MAC is the CBC-MAC (ISO/IEC 9797-1 MAC
  algorithm 1, padding method 2), cut to 8 bytes.

Every block cipher is ``cryptography``'s, used in ECB mode one block at a time; the MAC modes are
composed here. Triple DES comes from ``cryptography.hazmat.decrepit`` and always gets a 24-byte key
(``k1 + k2 + k1``; single DES is ``k + k + k``): the 8- and 16-byte key forms are deprecated there.

Keys never appear in a message of an exception raised here (lengths and algorithm names only), and this
module logs nothing; a caller must not log a key, a wrapped key is the only form fit to leave memory.
"""

from __future__ import annotations

import hmac
import os
from enum import StrEnum

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import SM4

__all__ = [
    "KCV_BYTES",
    "KEY_BYTES",
    "MAC_BYTES",
    "Algorithm",
    "InvalidKey",
    "kcv",
    "mac",
    "new_key",
    "unwrap",
    "verify_mac",
    "wrap",
]


class Algorithm(StrEnum):
    X919 = "x919"  # ANSI X9.19 retail MAC, double-length Triple DES keys
    SM4 = "sm4"  # 国密 SM4 (GB/T 32907-2016), CBC-MAC, 128-bit keys


KEY_BYTES = 16  # both algorithms: a double-length DES key, or an SM4 key
MAC_BYTES = 8  # ISO 8583 field 64 (and 128)
KCV_BYTES = 3  # the usual key check value; Chinese sign-on answers (field 62) carry 4: kcv(..., length=4)
_BLOCK = {Algorithm.X919: 8, Algorithm.SM4: 16}
_DES_HALF = 8


class InvalidKey(ValueError):
    """A key (or wrapped key) of the wrong length or form. The message never contains key bytes."""


def _check_key(algorithm: Algorithm, key: bytes, what: str = "key") -> None:
    if not isinstance(key, bytes | bytearray):
        raise TypeError(f"{what} must be bytes")
    if len(key) != KEY_BYTES:
        raise InvalidKey(f"{algorithm} {what} must be {KEY_BYTES} bytes, got {len(key)}")
    if algorithm is Algorithm.X919 and key[:_DES_HALF] == key[_DES_HALF:]:
        raise InvalidKey(f"{algorithm} {what} has two equal halves (that is single DES)")


def _ecb(algorithm: Algorithm, key: bytes) -> Cipher[modes.ECB]:
    """The block cipher under the whole key (two-key Triple DES EDE, or SM4), ECB."""
    key = bytes(key)
    cipher = TripleDES(key + key[:_DES_HALF]) if algorithm is Algorithm.X919 else SM4(key)
    return Cipher(cipher, modes.ECB())  # noqa: S305 -- single blocks: key wrapping and MAC chaining


def _des(half: bytes) -> Cipher[modes.ECB]:
    """Single DES under an 8-byte key half (Triple DES with K1 = K2 = K3)."""
    return Cipher(TripleDES(bytes(half) * 3), modes.ECB())  # noqa: S305 -- one block at a time


def _chain(cipher: TripleDES | SM4, padded: bytes) -> bytes:
    """CBC with a zero IV over ``padded`` (a positive multiple of the block): the last ciphertext
    block — the CBC-MAC, in one call into the library (not one per block)."""
    block = cipher.block_size // 8
    encryptor = Cipher(cipher, modes.CBC(bytes(block))).encryptor()
    return (encryptor.update(padded) + encryptor.finalize())[-block:]


def _pad_method_1(data: bytes, block: int) -> bytes:
    """ISO/IEC 9797-1 padding method 1: zero bytes up to a positive multiple of ``block``.

    Empty data becomes one zero block (the padded string is never empty). Data that already fills its
    last block gets no padding, so trailing zero bytes do not change the MAC: what is MACed must carry
    its own lengths (an ISO 8583 message does).
    """
    if not data:
        return bytes(block)
    return bytes(data) + bytes(-len(data) % block)


def _pad_method_2(data: bytes, block: int) -> bytes:
    """ISO/IEC 9797-1 padding method 2: one 0x80 byte, then zero bytes up to a multiple of ``block``."""
    data = bytes(data) + b"\x80"
    return data + bytes(-len(data) % block)


def _odd_parity(key: bytes) -> bytes:
    """Each byte's lowest bit set so that the byte has an odd number of one bits (DES key parity)."""
    return bytes(b & 0xFE | ((b & 0xFE).bit_count() + 1) % 2 for b in key)


def new_key(algorithm: Algorithm) -> bytes:
    """A fresh random key of ``KEY_BYTES`` from ``os.urandom``.

    For X9.19 each byte has odd DES parity and the two halves differ (equal halves would be single DES).
    """
    algorithm = Algorithm(algorithm)
    while True:
        key = os.urandom(KEY_BYTES)
        if algorithm is Algorithm.SM4:
            return key
        key = _odd_parity(key)
        if key[:_DES_HALF] != key[_DES_HALF:]:
            return key


def kcv(algorithm: Algorithm, key: bytes, *, length: int = KCV_BYTES) -> bytes:
    """The key check value: the first ``length`` bytes of a zero block encrypted under ``key`` (ECB).

    The zero block is 8 bytes for X9.19 (Triple DES) and 16 for SM4. ``length`` is 3 to 8.
    """
    algorithm = Algorithm(algorithm)
    if not 3 <= length <= MAC_BYTES:
        raise ValueError(f"a key check value is 3 to {MAC_BYTES} bytes, not {length}")
    _check_key(algorithm, key)
    encryptor = _ecb(algorithm, key).encryptor()
    return encryptor.update(bytes(_BLOCK[algorithm]))[:length]


def wrap(algorithm: Algorithm, kek: bytes, key: bytes) -> bytes:
    """``key`` encrypted under ``kek`` (the terminal master key) in ECB: 16 bytes, as field 62 carries it.

    There is no integrity in this form: the receiver checks the key with its KCV (``kcv``).
    """
    algorithm = Algorithm(algorithm)
    _check_key(algorithm, kek, "key-encrypting key")
    _check_key(algorithm, key)
    encryptor = _ecb(algorithm, kek).encryptor()
    return encryptor.update(bytes(key)) + encryptor.finalize()


def unwrap(algorithm: Algorithm, kek: bytes, wrapped: bytes) -> bytes:
    """The key that ``wrap`` encrypted under ``kek``.

    Raises ``InvalidKey`` (a ``ValueError``) for a ``kek`` or ``wrapped`` of the wrong length, or when the
    result is no usable key. A wrong ``kek`` is not detected here (ECB has no integrity): compare KCVs.
    """
    algorithm = Algorithm(algorithm)
    _check_key(algorithm, kek, "key-encrypting key")
    if not isinstance(wrapped, bytes | bytearray):
        raise TypeError("wrapped key must be bytes")
    if len(wrapped) != KEY_BYTES:
        raise InvalidKey(f"{algorithm} wrapped key must be {KEY_BYTES} bytes, got {len(wrapped)}")
    decryptor = _ecb(algorithm, kek).decryptor()
    key = decryptor.update(bytes(wrapped)) + decryptor.finalize()
    _check_key(algorithm, key, "unwrapped key")
    return key


def mac(algorithm: Algorithm, key: bytes, data: bytes) -> bytes:
    """The ``MAC_BYTES``-byte MAC of ``data`` under ``key``.

    - X9.19 (ISO/IEC 9797-1 MAC algorithm 3, padding method 1): single DES CBC with the left key half
      over every block, then the last block decrypted with the right half and encrypted with the left.
    - SM4 (ISO/IEC 9797-1 MAC algorithm 1, padding method 2): SM4 CBC over every block, the first 8
      bytes of the last block.
    """
    algorithm = Algorithm(algorithm)
    _check_key(algorithm, key)
    if algorithm is Algorithm.SM4:
        return _chain(SM4(bytes(key)), _pad_method_2(data, _BLOCK[algorithm]))[:MAC_BYTES]
    left_half = bytes(key[:_DES_HALF])
    state = _chain(TripleDES(left_half * 3), _pad_method_1(data, _DES_HALF))
    return _des(left_half).encryptor().update(_des(key[_DES_HALF:]).decryptor().update(state))


def verify_mac(algorithm: Algorithm, key: bytes, data: bytes, given: bytes) -> bool:
    """Whether ``given`` is the MAC of ``data`` under ``key`` (constant-time comparison).

    False, never an exception, for a ``given`` that is not ``MAC_BYTES`` bytes; a bad key still raises.
    """
    expected = mac(algorithm, key, data)
    if not isinstance(given, bytes | bytearray) or len(given) != MAC_BYTES:
        return False
    return hmac.compare_digest(expected, bytes(given))
