"""Terminal keys and MACs (platform/paycrypto.py, ADR 0024): known answers from published sources and
from an independent implementation, the key rules, and MAC verification refusing every tampering.

No database. Every test runs with warnings as errors, so a deprecated Triple DES path (the old import,
8- or 16-byte TripleDES keys) fails here.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import SM4
from hypothesis import given
from hypothesis import strategies as st

from posfleet.platform import paycrypto
from posfleet.platform.paycrypto import KEY_BYTES, MAC_BYTES, Algorithm, InvalidKey

pytestmark = pytest.mark.filterwarnings("error")

X919, SM4_ = Algorithm.X919, Algorithm.SM4
K = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # the textbook double-length key (odd parity)
K2 = bytes.fromhex("3B5D7F91A2C4E6F80D2F4B6D8A9CBEE0")  # another one, parity not adjusted (DES ignores it)
MESSAGE_0200 = bytes.fromhex("0200702406c020c09a11166222600000000001000000000000000001000001000502100012")


# --- the primitives are wired right --------------------------------------------------------------


def test_sm4_known_answer_gb_t_32907_through_the_ecb_the_module_uses():
    # GB/T 32907-2016 appendix A example 1: key = plaintext = 0123456789abcdeffedcba9876543210.
    encryptor = paycrypto._ecb(SM4_, K).encryptor()
    assert encryptor.update(K).hex() == "681edf34d206965e86b3e94f536e4246"


def test_x919_whole_key_is_two_key_triple_des_and_a_half_is_single_des():
    # E_K1(D_K2(E_K1(x))) equals single DES under K1, then D_K2, then E_K1: the two helpers agree.
    block = bytes.fromhex("4E6F772069732074")
    left, right = paycrypto._des(K[:8]), paycrypto._des(K[8:])
    by_halves = left.encryptor().update(right.decryptor().update(left.encryptor().update(block)))
    assert paycrypto._ecb(X919, K).encryptor().update(block) == by_halves
    assert left.encryptor().update(block) != by_halves


# --- X9.19 retail MAC -----------------------------------------------------------------------------
# Published: ISO/IEC 9797-1:2011 Annex B.4 (MAC algorithm 3, padding method 1, key K), quoted by
# openemv/crypto test/crypto_tdes2_retail_mac_test.c; the standard prints the 4 leftmost bytes.
# Full 8-byte values: computed once with psec 1.3 (`psec.mac.generate_retail_mac(key[:8], key[8:], data,
# padding=1)`, an independent implementation), not at test time: psec is no dependency of posfleet.


@pytest.mark.parametrize(
    ("data", "published"),
    [(b"Now is the time for all ", "A1C72E74"), (b"Now is the time for it", "2E2B1428")],
)
def test_x919_published_iso_9797_1_annex_b_examples(data, published):
    assert paycrypto.mac(X919, K, data)[:4].hex().upper() == published


@pytest.mark.parametrize(
    ("key", "data", "expected"),
    [
        (K, b"Now is the time for all ", "A1C72E74EA3FA9B6"),  # 3 blocks exactly
        (K, b"Now is the time for it", "2E2B1428CC78254F"),  # 22 bytes: 2 zero bytes of padding
        (K, bytes.fromhex("1234567890ABCDEF"), "479EF7C1ECFE64AC"),  # 1 block
        (K, b"abc", "83FC1A92AF67E9EA"),  # shorter than a block
        (K, b"", "08D7B4FB629D0885"),  # empty: one zero block (so it equals the 8-byte KCV)
        (K2, MESSAGE_0200, "E0D47123E5433ADF"),  # an ISO 8583 0200 without field 64, 37 bytes
        (K2, bytes(range(40)), "69A6C32F76A83170"),  # 5 blocks
    ],
)
def test_x919_mac_matches_psec(key, data, expected):
    assert paycrypto.mac(X919, key, data).hex().upper() == expected


def test_x919_padding_is_zero_bytes_so_trailing_zeros_within_the_last_block_do_not_count():
    assert paycrypto.mac(X919, K, b"abc") == paycrypto.mac(X919, K, b"abc\x00\x00")
    assert paycrypto.mac(X919, K, b"abc") != paycrypto.mac(X919, K, b"abc" + bytes(13))


# --- SM4 CBC-MAC ----------------------------------------------------------------------------------


def _sm4_cbc_mac_independently(key: bytes, data: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 1 with padding method 2 from cryptography's own CBC mode (zero IV):
    the first 8 bytes of the last ciphertext block. The module chains ECB blocks itself."""
    padded = data + b"\x80" + bytes(-(len(data) + 1) % 16)
    encryptor = Cipher(SM4(key), modes.CBC(bytes(16))).encryptor()
    return (encryptor.update(padded) + encryptor.finalize())[-16:][:8]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "8C338E5A27E349BE"),  # one block: 0x80 and 15 zeros
        (b"abc", "D0249FA9996014E6"),
        (b"Now is the time for all ", "D3CFA47F45CC36F3"),  # 24 bytes: 2 blocks
        (bytes(range(48)), "78FD8CE0B3D2A7E8"),  # a multiple of 16: a whole padding block
    ],
)
def test_sm4_mac_constants(data, expected):
    # Computed once with _sm4_cbc_mac_independently (cryptography's SM4-CBC), kept to catch a change.
    assert paycrypto.mac(SM4_, K, data).hex().upper() == expected


@given(key=st.binary(min_size=16, max_size=16), data=st.binary(max_size=200))
def test_sm4_mac_equals_cbc_mode_computation(key, data):
    assert paycrypto.mac(SM4_, key, data) == _sm4_cbc_mac_independently(key, data)


def test_sm4_padding_is_unambiguous():
    assert paycrypto.mac(SM4_, K, b"abc") != paycrypto.mac(SM4_, K, b"abc\x00")
    assert paycrypto.mac(SM4_, K, b"abc") != paycrypto.mac(SM4_, K, b"abc\x80")


# --- keys -----------------------------------------------------------------------------------------


def test_kcv_of_the_textbook_key():
    # psec.des.generate_kcv(K, 3) == 08D7B4 (computed once with psec 1.3, like the MACs above).
    assert paycrypto.kcv(X919, K) == bytes.fromhex("08D7B4")
    assert paycrypto.kcv(X919, K, length=4) == bytes.fromhex("08D7B4FB")
    assert paycrypto.kcv(X919, K2) == bytes.fromhex("06C56D")  # psec.des.generate_kcv(K2, 3)


def test_kcv_of_an_sm4_key_is_a_zero_block_of_16_encrypted():
    encryptor = Cipher(SM4(K), modes.CBC(bytes(16))).encryptor()  # one block: CBC with zero IV = ECB
    assert paycrypto.kcv(SM4_, K) == encryptor.update(bytes(16))[:3]
    assert paycrypto.kcv(SM4_, K) == bytes.fromhex("2677F4")


@pytest.mark.parametrize("length", [2, 9])
def test_kcv_length_is_3_to_8(length):
    with pytest.raises(ValueError, match="3 to 8"):
        paycrypto.kcv(X919, K, length=length)


def test_new_x919_keys_have_odd_parity_and_distinct_halves():
    keys = {paycrypto.new_key(X919) for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert len(key) == KEY_BYTES
        assert all(byte.bit_count() % 2 == 1 for byte in key)
        assert key[:8] != key[8:]


def test_new_x919_key_never_has_equal_halves_even_when_the_random_source_gives_them(monkeypatch):
    draws = iter([bytes(8) * 2, bytes.fromhex("01") * 8 + bytes.fromhex("00") * 8, K])
    monkeypatch.setattr(paycrypto.os, "urandom", lambda n: next(draws))
    # 0000… and 0101… both become 0101… with odd parity: refused too; the third draw is taken.
    assert paycrypto.new_key(X919) == K


def test_new_sm4_keys_are_random_16_bytes():
    keys = {paycrypto.new_key(SM4_) for _ in range(50)}
    assert len(keys) == 50
    assert {len(key) for key in keys} == {KEY_BYTES}


def test_odd_parity_adjustment():
    assert paycrypto._odd_parity(bytes.fromhex("0022FEFF")) == bytes.fromhex("0123FEFE")
    assert paycrypto._odd_parity(K2).hex().upper() == "3B5D7F91A2C4E6F80D2F4A6D8A9DBFE0"  # psec agrees


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_wrap_unwrap_round_trip(algorithm):
    kek, key = paycrypto.new_key(algorithm), paycrypto.new_key(algorithm)
    wrapped = paycrypto.wrap(algorithm, kek, key)
    assert len(wrapped) == KEY_BYTES
    assert wrapped != key
    assert paycrypto.unwrap(algorithm, kek, wrapped) == key
    assert paycrypto.unwrap(algorithm, kek, bytearray(wrapped)) == key


def test_wrap_is_ecb_under_the_master_key():
    # psec.des.encrypt_tdes_ecb(K2, K) (computed once with psec 1.3).
    assert paycrypto.wrap(X919, K2, K).hex().upper() == "EFA17F5BE89FFAF8CD26DBEDD009A388"
    encryptor = Cipher(SM4(K2), modes.CBC(bytes(16))).encryptor()
    assert paycrypto.wrap(SM4_, K2, K) == encryptor.update(K)


def test_unwrap_under_the_wrong_master_key_gives_another_key_the_kcv_tells_apart():
    wrapped = paycrypto.wrap(SM4_, K, K2)
    other = paycrypto.unwrap(SM4_, K2, wrapped)
    assert other != K2
    assert paycrypto.kcv(SM4_, other) != paycrypto.kcv(SM4_, K2)


@pytest.mark.parametrize("algorithm", list(Algorithm))
@pytest.mark.parametrize("size", [0, 8, 15, 17, 24, 32])
def test_unwrap_refuses_wrong_lengths(algorithm, size):
    with pytest.raises(ValueError, match=f"wrapped key must be 16 bytes, got {size}"):
        paycrypto.unwrap(algorithm, K, bytes(size))
    with pytest.raises(ValueError, match=f"key-encrypting key must be 16 bytes, got {size}"):
        paycrypto.unwrap(algorithm, bytes(range(size)), bytes(16))


def test_unwrap_refuses_non_bytes():
    with pytest.raises(TypeError, match="wrapped key must be bytes"):
        paycrypto.unwrap(X919, K, K.hex())


@pytest.mark.parametrize(
    "call",
    [
        lambda key: paycrypto.mac(X919, key, b"data"),
        lambda key: paycrypto.mac(SM4_, key, b"data"),
        lambda key: paycrypto.kcv(X919, key),
        lambda key: paycrypto.wrap(SM4_, key, K),
        lambda key: paycrypto.wrap(X919, K, key),
        lambda key: paycrypto.verify_mac(X919, key, b"data", bytes(8)),
    ],
)
@pytest.mark.parametrize("size", [0, 8, 15, 17, 24, 32])
def test_bad_key_lengths_are_refused_without_showing_the_key(call, size):
    key = bytes.fromhex("A5C3") * (size // 2) + bytes.fromhex("A5") * (size % 2)
    with pytest.raises(InvalidKey, match=f"must be 16 bytes, got {size}") as refused:
        call(key)
    message = str(refused.value) + repr(refused.value)
    assert "a5c3" not in message.lower()
    assert "\\xa5" not in message.lower()
    assert refused.value.__cause__ is None


def test_an_x919_key_with_equal_halves_is_single_des_and_refused():
    key = K[:8] * 2
    for call in (
        lambda: paycrypto.mac(X919, key, b"data"),
        lambda: paycrypto.kcv(X919, key),
        lambda: paycrypto.wrap(X919, K, key),
        lambda: paycrypto.wrap(X919, key, K),
    ):
        with pytest.raises(InvalidKey, match="equal halves") as refused:
            call()
        assert K[:8].hex() not in str(refused.value).lower()
    assert paycrypto.mac(SM4_, key, b"data")  # an SM4 key has no halves

    encryptor = paycrypto._ecb(X919, K2).encryptor()
    with pytest.raises(InvalidKey, match="unwrapped key has two equal halves"):
        paycrypto.unwrap(X919, K2, encryptor.update(key))


def test_unknown_algorithm_is_refused():
    with pytest.raises(ValueError, match="not a valid Algorithm"):
        paycrypto.mac("des", K, b"data")
    assert paycrypto.mac("x919", K, b"abc") == paycrypto.mac(X919, K, b"abc")


# --- verification ---------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_verify_mac_accepts_the_mac_and_refuses_every_tampering(algorithm):
    key = paycrypto.new_key(algorithm)
    tag = paycrypto.mac(algorithm, key, MESSAGE_0200)
    assert len(tag) == MAC_BYTES
    assert paycrypto.verify_mac(algorithm, key, MESSAGE_0200, tag) is True
    assert paycrypto.verify_mac(algorithm, key, bytearray(MESSAGE_0200), bytearray(tag)) is True

    tampered = bytearray(MESSAGE_0200)
    tampered[5] ^= 0x01
    assert paycrypto.verify_mac(algorithm, key, bytes(tampered), tag) is False
    assert paycrypto.verify_mac(algorithm, key, MESSAGE_0200[:-1], tag) is False
    assert paycrypto.verify_mac(algorithm, key, MESSAGE_0200 + b"\x01", tag) is False
    assert paycrypto.verify_mac(algorithm, key, MESSAGE_0200, bytes([tag[0] ^ 0x80]) + tag[1:]) is False
    assert paycrypto.verify_mac(algorithm, paycrypto.new_key(algorithm), MESSAGE_0200, tag) is False


@pytest.mark.parametrize("algorithm", list(Algorithm))
@pytest.mark.parametrize("given_mac", [b"", b"\x00", b"1234567", b"123456789", bytes(16), "ABCDEF12", None])
def test_verify_mac_says_false_for_a_mac_of_the_wrong_length_or_type(algorithm, given_mac):
    assert paycrypto.verify_mac(algorithm, paycrypto.new_key(algorithm), b"data", given_mac) is False


def test_verify_mac_accepts_a_truncated_mac_prefix_never():
    tag = paycrypto.mac(X919, K, b"data")
    assert paycrypto.verify_mac(X919, K, b"data", tag[:4]) is False


@given(
    algorithm=st.sampled_from(list(Algorithm)),
    seed=st.binary(min_size=16, max_size=16),
    data=st.binary(min_size=1, max_size=300),
    bit=st.integers(min_value=0),
)
def test_mac_verifies_and_any_flipped_bit_fails(algorithm, seed, data, bit):
    key = paycrypto._odd_parity(seed) if algorithm is X919 else seed
    if algorithm is X919 and key[:8] == key[8:]:
        key = key[:8] + bytes(b ^ 0x02 for b in key[8:])  # keep parity, make the halves differ
    tag = paycrypto.mac(algorithm, key, data)
    assert paycrypto.verify_mac(algorithm, key, data, tag)
    bit %= len(data) * 8
    flipped = bytearray(data)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert not paycrypto.verify_mac(algorithm, key, bytes(flipped), tag)
