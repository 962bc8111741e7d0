"""docs/gateway.md against the code: its hex dumps, field tables and worked MACs are what the dialect
produces today, so a change of the dialect fails here until the document follows.

No database. The examples are played with the reference client (``terminal.Terminal``, its socket
replaced by a function) against the gateway's own answer builders, with the fixed keys, times and
numbers below. Every hex dump in the document is also checked on its own terms, as a reader would: the
length prefix, the TPDU, the message decoded with ``codec.decode_any`` (a request also passes the
gateway's ``codec.decode``), and the MAC of field 64 under the documented session key.

After a deliberate change of the dialect, print the generated parts and paste each over its namesake in
docs/gateway.md (the examples, with their tables, and the worked MACs):

    PYTHONPATH=src python -m posfleet.gateway.tests.test_docs
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import iso8583
import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.ciphers.algorithms import SM4

from posfleet.gateway import codec, terminal
from posfleet.gateway import dialect as d
from posfleet.platform import paycrypto
from posfleet.platform.paycrypto import Algorithm

DOC = Path(__file__).resolve().parents[4] / "docs" / "gateway.md"

# The example world: keys, terminal, card, times. The keys are for examples only.
MASTER_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
SESSION_KEY = bytes.fromhex("3B5D7F91A2C4E6F80D2F4A6D8A9DBFE0")
TID, MID = "10000042", "898000000000017"
PAN, TAP_PAN = "6217001234567890123", "6225880123456789"
QR_CODE = "284012345678901234"
GATEWAY_TIME = ("021531", "1208")  # fields 12 and 13 of the 0810: the gateway's clock (UTC)


def _at(hh: int, mm: int, ss: int) -> datetime:
    return datetime(2026, 12, 8, hh, mm, ss)


REQUEST_TPDU = terminal.TPDU
ANSWER_TPDU = codec.answer_tpdu(terminal.TPDU)
NAMES = {
    "t": "MTI",
    "p": "bitmap",
    "2": "card number",
    "3": "processing code",
    "4": "amount",
    "11": "trace no.",
    "12": "local time",
    "13": "local date",
    "22": "entry mode",
    "25": "condition code",
    "37": "reference no.",
    "38": "authorisation code",
    "39": "response code",
    "41": "TID",
    "42": "MID",
    "48": "payment code",
    "49": "currency",
    "60": "type, batch, network code",
    "61": "original",
    "62": "session key",
    "63": "heartbeat data",
    "64": "MAC",
}
MESSAGE_NAMES = {
    d.SIGN_ON: "sign-on",
    d.SIGN_ON_ANSWER: "sign-on answer",
    d.SALE: "sale",
    d.SALE_ANSWER: "sale answer",
    d.REVERSAL: "reversal",
    d.REVERSAL_ANSWER: "reversal answer",
    d.HEARTBEAT: "heartbeat",
    d.HEARTBEAT_ANSWER: "heartbeat answer",
}
CODE_NAMES = {d.APPROVED: "approved", d.NOT_PERMITTED: "not permitted"}


# -- the examples ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    name: str
    frame: bytes
    mac: str = ""  # the algorithm of field 64's MAC; "" when the message carries none


class _Quiet:
    """What ``Gateway._answer`` needs of a gateway: somewhere to count."""

    def _count(self, what: str) -> None:
        pass


def _sign_on_answer(scheme: Algorithm) -> Callable[[bytes], bytes]:
    """``Gateway.sign_on``'s answer (it needs the database; the fields are the same)."""
    from posfleet.gateway import server

    def answer(request: bytes) -> bytes:
        message = codec.decode(request)
        block = paycrypto.wrap(scheme, MASTER_KEY, SESSION_KEY) + paycrypto.kcv(scheme, SESSION_KEY, length=4)
        hhmmss, mmdd = GATEWAY_TIME
        fields = {
            **server._echo(message, ("11", "41", "42", "60")),
            "12": hhmmss,
            "13": mmdd,
            "39": d.APPROVED,
            "62": block.hex().upper(),
        }
        return codec.encode(d.SIGN_ON_ANSWER, fields)

    return answer


def _maced_answer(scheme: Algorithm, code: str, extra: dict[str, str]) -> Callable[[bytes], bytes]:
    from posfleet.gateway import server

    def answer(request: bytes) -> bytes:
        message = codec.decode(request)
        return server.Gateway._answer(_Quiet(), message, code, scheme, SESSION_KEY, extra)  # type: ignore[arg-type]

    return answer


def _plain_answer(code: str) -> Callable[[bytes], bytes]:
    from posfleet.gateway import server

    def answer(request: bytes) -> bytes:
        message = codec.decode(request)
        return server._plain(message.mti, message.fields, code)

    return answer


def _play(
    pos: terminal.Terminal,
    names: tuple[str, str],
    answer: Callable[[bytes], bytes],
    call: Callable[[], terminal.Reply],
    *,
    mac: tuple[str, str] = ("", ""),
) -> tuple[list[Example], terminal.Reply]:
    """Run one exchange of the reference client against ``answer``; the request and answer as frames."""
    frames: list[bytes] = []

    def exchange(message: bytes) -> codec.Message:
        back = answer(message)
        frames.extend([codec.frame(REQUEST_TPDU, message), codec.frame(ANSWER_TPDU, back)])
        return terminal.read_answer(back)

    pos.exchange = exchange  # type: ignore[method-assign]
    reply = call()
    return [Example(names[0], frames[0], mac[0]), Example(names[1], frames[1], mac[1])], reply


def examples() -> list[Example]:
    out: list[Example] = []
    x919, sm4 = Algorithm.X919.value, Algorithm.SM4.value
    pos = terminal.Terminal(tid=TID, mid=MID, master_key=MASTER_KEY, scheme=Algorithm.X919)

    pair, reply = _play(
        pos,
        ("sign-on-request", "sign-on-answer"),
        _sign_on_answer(Algorithm.X919),
        lambda: pos.sign_on(at=_at(10, 15, 30)),
        mac=(f"{x919}-master", ""),
    )
    assert reply.approved
    assert pos.session_key == SESSION_KEY
    out += pair

    sale = pos.sale_fields(12_345, pan=PAN, entry_mode="051", at=_at(10, 16, 5))
    pair, reply = _play(
        pos,
        ("sale-request", "sale-answer"),
        _maced_answer(Algorithm.X919, d.APPROVED, {"37": "000000004711", "38": "482913"}),
        lambda: pos.send_sale_fields(sale),
        mac=(x919, x919),
    )
    assert reply.approved
    assert reply.mac_ok
    out += pair

    pair, reply = _play(
        pos,
        ("qr-sale-request", "qr-sale-answer"),
        _maced_answer(Algorithm.X919, d.APPROVED, {"37": "000000004712", "38": "105377"}),
        lambda: pos.sale(800, qr_code=QR_CODE, entry_mode="031", at=_at(10, 17, 40)),
        mac=(x919, x919),
    )
    assert reply.approved
    assert reply.mac_ok
    out += pair

    pair, reply = _play(
        pos,
        ("reversal-request", "reversal-answer"),
        _maced_answer(Algorithm.X919, d.APPROVED, {"37": "000000004713"}),
        lambda: pos.reversal(sale, at=_at(10, 18, 2)),
        mac=(x919, x919),
    )
    assert reply.approved
    assert reply.mac_ok
    out += pair

    pair, reply = _play(
        pos,
        ("heartbeat-request", "heartbeat-answer"),
        _plain_answer(d.APPROVED),
        lambda: pos.heartbeat(lat=31.2304, lon=121.4737, firmware="2.1.0"),
    )
    assert reply.approved
    out += pair

    pair, reply = _play(
        pos,
        ("decline-request", "decline-answer"),
        _plain_answer(d.NOT_PERMITTED),
        lambda: pos.sale(5_000, pan=TAP_PAN, entry_mode="071", at=_at(10, 30, 0)),
        mac=(x919, ""),
    )
    assert reply.code == d.NOT_PERMITTED
    assert reply.mac_ok is None
    out += pair

    pos = terminal.Terminal(tid=TID, mid=MID, master_key=MASTER_KEY, scheme=Algorithm.SM4)
    pair, reply = _play(
        pos,
        ("sm4-sign-on-request", "sm4-sign-on-answer"),
        _sign_on_answer(Algorithm.SM4),
        lambda: pos.sign_on(at=_at(10, 15, 30)),
        mac=(f"{sm4}-master", ""),
    )
    assert reply.approved
    assert pos.session_key == SESSION_KEY
    out += pair
    pair, reply = _play(
        pos,
        ("sm4-sale-request", "sm4-sale-answer"),
        _maced_answer(Algorithm.SM4, d.APPROVED, {"37": "000000004711", "38": "482913"}),
        lambda: pos.send_sale_fields(sale),
        mac=(sm4, sm4),
    )
    assert reply.approved
    assert reply.mac_ok
    out += pair
    return out


# -- rendering --------------------------------------------------------------------------------------


def _hex(data: bytes) -> str:
    return data.hex(" ").upper()


def hex_block(frame: bytes) -> str:
    return "\n".join(_hex(frame[i : i + 16]) for i in range(0, len(frame), 16))


def _value(name: str, value: str, nibbles: int) -> str:
    odd = nibbles % 2 == 1
    if name == "t":
        return f"{value}, {MESSAGE_NAMES.get(value, '?')}"
    if name == "p":
        return "fields " + ", ".join(n for n in _present(value))
    if name == "2":
        return f"{len(value)} digits: {value}" + (", then the pad nibble F" if odd else "")
    if name == "4":
        return f"{value}: {int(value)} fen (¥{int(value) / 100:.2f})"
    if name == "12":
        return f"{value[:2]}:{value[2:4]}:{value[4:]}"
    if name == "13":
        return f"{value[:2]}-{value[2:]} (MMDD)"
    if name == "22":
        return f"{value}: {d.ENTRY_MODES.get(value[:2], '?')} (pad nibble 0 first)"
    if name == "39":
        return f'"{value}" {CODE_NAMES.get(value, "")}'.rstrip()
    if name == "48":
        return f'{len(value)} bytes: "{value}"'
    if name == "60":
        kind, batch, net = value[:2], value[2:8], value[8:]
        pad = "pad nibble 0 first, " if odd else ""
        return f"{len(value)} digits, {pad}type {kind}, batch {batch}, network code {net}"
    if name == "61":
        batch, trace, mmdd = value[:6], value[6:12], value[12:]
        return f"{len(value)} digits: batch {batch}, trace {trace}, date {mmdd[:2]}-{mmdd[2:]}"
    if name == "62":
        block = bytes.fromhex(value)
        return f"{len(block)} bytes: session key under the master key, then its 4-byte check value"
    if name == "63":
        return f'{len(value)} bytes: "{value}"'
    if name == "64":
        return "the MAC of everything from the MTI to here"
    if name in {"37", "38", "41", "42", "49"}:
        return f'"{value}"'
    return value


def _present(bitmap_hex: str) -> list[str]:
    bits = int(bitmap_hex, 16)
    return [str(n) for n in range(1, 65) if bits & (1 << (64 - n))]


def annotation(frame: bytes) -> str:
    """The field-by-field table of a frame: length prefix, TPDU, then each field's bytes."""
    body = frame[2:]
    tpdu, raw = body[: d.TPDU_BYTES], body[d.TPDU_BYTES :]
    decoded, encoded = iso8583.decode(raw, d.SPEC)
    where = f"ID {tpdu[:1].hex()}, destination {tpdu[1:3].hex()}, source {tpdu[3:].hex()}"
    rows = [
        "| bytes | field | value |",
        "|---|---|---|",
        f"| `{_hex(frame[:2])}` | length | {len(body)} bytes follow (TPDU and message) |",
        f"| `{_hex(tpdu)}` | TPDU | {where} |",
    ]
    for name, parts in encoded.items():
        if name == "h":
            continue
        spec = d.SPEC[name]
        prefix = bytes(parts["len"])
        nibbles = int(prefix.hex()) if prefix and spec.get("len_count") == "nibbles" else 0
        if not prefix and spec.get("len_count") == "nibbles":
            nibbles = spec["max_len"]
        cell = (f"`{_hex(prefix)}` " if prefix else "") + f"`{_hex(bytes(parts['data']))}`"
        label = NAMES[name] if name in {"t", "p"} else f"{name} {NAMES[name]}"
        rows.append(f"| {cell} | {label} | {_value(name, str(decoded[name]), nibbles)} |")
    return "\n".join(rows)


def example_markdown(example: Example) -> str:
    marker = f"<!-- example: {example.name}" + (f" mac={example.mac}" if example.mac else "") + " -->"
    return f"{marker}\n```hex\n{hex_block(example.frame)}\n```\n\n{annotation(example.frame)}\n"


def _des(half: bytes) -> Cipher[modes.ECB]:
    return Cipher(TripleDES(half * 3), modes.ECB())  # noqa: S305 -- single DES, one block at a time


def worked_mac(scheme: Algorithm, frame: bytes) -> str:
    """The MAC of a request's field 64, block by block, computed here from the block ciphers (not with
    ``paycrypto.mac``) and checked against it."""
    message = frame[2 + d.TPDU_BYTES :]
    data, given = message[:-8], message[-8:]
    block = 8 if scheme is Algorithm.X919 else 16
    if scheme is Algorithm.X919:
        padded = data + bytes(-len(data) % block)
        how = f"{len(padded) - len(data)} zero bytes"
        step = _des(SESSION_KEY[:8]).encryptor()
    else:
        padded = data + b"\x80" + bytes(-(len(data) + 1) % block)
        how = f"80 and {len(padded) - len(data) - 1} zero bytes"
        step = Cipher(SM4(SESSION_KEY), modes.ECB()).encryptor()  # noqa: S305 -- one block at a time
    lines = []
    if scheme is Algorithm.X919:
        kl, kr = _hex(SESSION_KEY[:8]), _hex(SESSION_KEY[8:])
        lines.append(f"K  = {_hex(SESSION_KEY)}   KL = {kl}   KR = {kr}")
    else:
        lines.append(f"K  = {_hex(SESSION_KEY)}")
    lines.append(f"{len(data)} bytes MACed (MTI to the end of the last field before 64), padded with {how}")
    lines.append("")
    cipher = "DES(KL, Hn-1 xor Dn)" if scheme is Algorithm.X919 else "SM4(K, Hn-1 xor Dn)"
    lines.append(f"Dn = block n of the padded data;  Hn = {cipher};  H0 = {block} zero bytes")
    state = bytes(block)
    for i in range(0, len(padded), block):
        chunk = padded[i : i + block]
        state = step.update(bytes(a ^ b for a, b in zip(state, chunk, strict=True)))
        n = i // block + 1
        lines.append(f"D{n:<2} {_hex(chunk)}")
        lines.append(f"H{n:<2} {_hex(state)}")
    if scheme is Algorithm.X919:
        left, right = _des(SESSION_KEY[:8]), _des(SESSION_KEY[8:])
        final = left.encryptor().update(right.decryptor().update(state))
        lines.append(f"MAC = DES(KL, DES⁻¹(KR, H{n})) = {_hex(final)}")
    else:
        final = state[:8]
        lines.append(f"MAC = the leftmost 8 bytes of H{n} = {_hex(final)}")
    assert final == given == paycrypto.mac(scheme, SESSION_KEY, data)
    return f"<!-- mac-worked: {scheme.value} -->\n```text\n" + "\n".join(lines) + "\n```\n"


def worked_macs() -> list[str]:
    by_name = {e.name: e for e in examples()}
    return [
        worked_mac(Algorithm.X919, by_name["sale-request"].frame),
        worked_mac(Algorithm.SM4, by_name["sm4-sale-request"].frame),
    ]


def field_format(name: str) -> tuple[str, str]:
    """The format and length cells of a field's row in the document's field table."""
    spec, _desc = d.FIELDS[name]
    size, var = spec["max_len"], {0: "", 1: "LLVAR ", 2: "LLLVAR "}[spec["len_type"]]
    if name == "t":
        return "BCD", "4 digits, 2 bytes"
    if spec.get("len_count") == "nibbles":
        pad = ""
        if var or size % 2:
            where = "F last" if spec.get("right_pad") else "0 first"
            pad = f", pad nibble {where}" + (" if odd" if var else "")
        octets = (size + 1) // 2
        length = f"up to {size} digits" if var else f"{size} digits, {octets} byte{'s' * (octets > 1)}"
        return f"{var}BCD{pad}", length
    kind = "ASCII" if spec["data_enc"] == "ascii" else "binary"
    return f"{var}{kind}", (f"up to {size} bytes" if var else f"{size} bytes")


# -- reading the document ---------------------------------------------------------------------------

_EXAMPLE = re.compile(r"<!-- example: ([\w-]+)(?: mac=([\w-]+))? -->\n```hex\n(.*?)```", re.S)
LABELS = {"MTI": "t", "bitmap": "p"}


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def generated() -> list[Example]:
    return examples()


def _documented(doc: str) -> dict[str, tuple[bytes, str]]:
    found: dict[str, tuple[bytes, str]] = {}
    for name, mac, dump in _EXAMPLE.findall(doc):
        assert name not in found, f"two examples named {name}"
        found[name] = (bytes.fromhex("".join(dump.split())), mac)
    return found


def _table(doc: str, marker: str) -> list[list[str]]:
    """The rows (cells stripped) of the Markdown table right after ``marker``: header, rule, body."""
    after = doc.split(marker, 1)[1].lstrip("\n")
    lines = []
    for line in after.splitlines():
        if not line.startswith("|"):
            break
        lines.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert len(lines) > 2, f"no table after {marker}"
    return lines


# -- the tests -------------------------------------------------------------------------------------


def test_every_hex_dump_is_a_frame_of_the_dialect(doc: str) -> None:
    documented = _documented(doc)
    assert len(documented) >= 12
    for name, (frame, mac) in documented.items():
        assert int.from_bytes(frame[:2]) == len(frame) - 2, f"{name}: the length prefix"
        assert d.TPDU_BYTES + 2 <= len(frame) - 2 <= d.MAX_MESSAGE, f"{name}: the frame size"
        tpdu, raw = frame[2 : 2 + d.TPDU_BYTES], frame[2 + d.TPDU_BYTES :]
        request = name.endswith("-request")
        assert tpdu == (REQUEST_TPDU if request else ANSWER_TPDU), f"{name}: the TPDU"
        message = codec.decode_any(raw)
        if request:
            assert codec.decode(raw).fields == message.fields  # the gateway's own checks pass
            assert message.mti in d.REQUIRED
        else:
            assert message.mti in d.ANSWER_OF.values(), f"{name}: {message.mti}"
            assert message.get("39"), f"{name}: an answer without a response code"
        assert ("64" in message.fields) == bool(mac), f"{name}: field 64 and the mac= of its marker"
        if mac:
            algorithm = Algorithm(mac.removesuffix("-master"))
            key = MASTER_KEY if mac.endswith("-master") else SESSION_KEY  # a sign-on's MAC: the master key
            given = bytes.fromhex(message.get("64"))
            assert paycrypto.verify_mac(algorithm, key, message.mac_data, given), f"{name}: MAC"


def test_the_sign_on_answers_carry_the_documented_session_key(doc: str) -> None:
    documented = _documented(doc)
    for name, scheme in (("sign-on-answer", Algorithm.X919), ("sm4-sign-on-answer", Algorithm.SM4)):
        frame, _mac = documented[name]
        block = bytes.fromhex(codec.decode_any(frame[2 + d.TPDU_BYTES :]).get("62"))
        wrapped, check = block[: paycrypto.KEY_BYTES], block[paycrypto.KEY_BYTES :]
        assert paycrypto.unwrap(scheme, MASTER_KEY, wrapped) == SESSION_KEY
        assert check == paycrypto.kcv(scheme, SESSION_KEY, length=4)
    for key in (MASTER_KEY, SESSION_KEY):
        assert key.hex().upper() in doc
    for scheme in Algorithm:
        assert paycrypto.kcv(scheme, MASTER_KEY).hex().upper() in doc
        assert paycrypto.kcv(scheme, SESSION_KEY, length=4).hex().upper() in doc


def test_the_examples_are_what_the_client_and_the_gateway_produce_today(doc: str, generated) -> None:
    documented = _documented(doc)
    names = {e.name for e in generated}
    assert set(documented) == names, "examples in the document and in examples() differ"
    stale = [e.name for e in generated if example_markdown(e) not in doc]
    assert not stale, f"regenerate these examples (python -m posfleet.gateway.tests.test_docs): {stale}"
    for worked in worked_macs():
        assert worked in doc, "regenerate the worked MACs (python -m posfleet.gateway.tests.test_docs)"


def test_every_field_of_the_dialect_is_in_the_field_table(doc: str) -> None:
    rows = _table(doc, "<!-- fields -->")
    assert rows[0][:4] == ["field", "name", "format", "length"]
    names = [LABELS.get(row[0], row[0]) for row in rows[2:]]
    assert names == list(d.FIELDS), "the field table lists the dialect's fields, in order"
    for name, row in zip(names, rows[2:], strict=True):
        assert (row[2], row[3]) == field_format(name), f"field {name}"


def test_the_table_of_fields_per_message_matches_the_dialect_and_the_examples(doc: str, generated) -> None:
    rows = _table(doc, "<!-- carried -->")
    columns = rows[0][1:]
    assert columns == [mti for pair in d.ANSWER_OF.items() for mti in pair]
    cells = {(row[0], mti): cell for row in rows[2:] for mti, cell in zip(columns, row[1:], strict=True)}
    fields = [row[0] for row in rows[2:]]
    for mti in d.REQUIRED:
        expected = {f: "M" if f in d.REQUIRED[mti] else "O" if f in d.OPTIONAL[mti] else "–" for f in fields}
        assert {f: cells[f, mti] for f in fields} == expected, f"the {mti} column"
        assert set(d.REQUIRED[mti] | d.OPTIONAL[mti]) <= set(fields)
    for example in generated:
        message = codec.decode_any(example.frame[2 + d.TPDU_BYTES :])
        if message.mti in d.REQUIRED:
            continue
        have = set(message.fields)
        always = {f for f in fields if cells[f, message.mti] == "M"}
        allowed = {f for f in fields if cells[f, message.mti] != "–"}
        assert always <= have <= allowed, f"{example.name}: {sorted(have)}"


if __name__ == "__main__":  # pragma: no cover - prints the generated parts of docs/gateway.md
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "posfleet.config.settings.test")
    django.setup()
    for example in examples():
        print(example_markdown(example))
    for worked in worked_macs():
        print(worked)
