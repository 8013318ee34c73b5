"""Dynamixel Protocol 2.0 packet codec, written from the ROBOTIS e-manual (no SDK code).

Packet: `FF FF FD 00 | ID | LEN_L LEN_H | INST | PARAMS | CRC_L CRC_H`; LEN counts INST..CRC;
CRC-16 with polynomial 0x8005 (MSB first, init 0, table-driven) over the whole stuffed packet;
byte stuffing inserts FD after every FF FF FD inside INST..PARAMS so a header never appears
inside a packet. Status packets have INST 0x55 followed by an error byte.

Used by the emulator (both directions) and by the bus (fast CRC and stuffing checks).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE
INST_PING, INST_READ, INST_WRITE, INST_REBOOT = 0x01, 0x02, 0x03, 0x08
INST_STATUS = 0x55
INST_SYNC_READ, INST_SYNC_WRITE = 0x82, 0x83
INST_BULK_READ, INST_BULK_WRITE = 0x92, 0x93
ERR_RESULT_FAIL, ERR_INSTRUCTION, ERR_CRC = 0x01, 0x02, 0x03
ERR_DATA_RANGE, ERR_DATA_LENGTH, ERR_DATA_LIMIT, ERR_ACCESS = 0x04, 0x05, 0x06, 0x07
ERR_ALERT = 0x80
MAX_PACKET_LENGTH = 1024  # LEN field limit accepted by the parser


def _crc_table(poly: int = 0x8005) -> tuple[int, ...]:
    """The 256-entry table of the spec's CRC-16 (MSB first, no reflection, init 0)."""
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ poly) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray | Iterable[int], crc: int = 0) -> int:
    """Protocol 2.0 CRC-16 of `data` (continue from `crc`)."""
    table = CRC_TABLE
    for byte in data:
        crc = ((crc << 8) ^ table[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


def stuff(payload: bytes) -> bytes:
    """Byte stuffing of INST..PARAMS: every FF FF FD gets an extra FD."""
    if b"\xff\xff\xfd" not in payload:
        return bytes(payload)
    out = bytearray()
    for byte in payload:
        out.append(byte)
        if byte == 0xFD and len(out) >= 3 and out[-2] == 0xFF and out[-3] == 0xFF:
            out.append(0xFD)
    return bytes(out)


def unstuff(payload: bytes) -> bytes:
    """Inverse of `stuff`: FF FF FD FD -> FF FF FD."""
    if b"\xff\xff\xfd\xfd" not in payload:
        return bytes(payload)
    out = bytearray()
    i, n = 0, len(payload)
    while i < n:
        byte = payload[i]
        out.append(byte)
        if byte == 0xFD and i >= 2 and payload[i - 1] == 0xFF and payload[i - 2] == 0xFF \
                and i + 1 < n and payload[i + 1] == 0xFD:
            i += 2
        else:
            i += 1
    return bytes(out)


def build_packet(dxl_id: int, instruction: int, params: bytes = b"") -> bytes:
    """A complete Protocol 2.0 packet (header, stuffed payload, CRC)."""
    body = stuff(bytes([instruction]) + bytes(params))
    length = len(body) + 2
    head = HEADER + bytes([dxl_id, length & 0xFF, length >> 8])
    crc = crc16(body, crc16(head))
    return head + body + bytes([crc & 0xFF, crc >> 8])


def status_packet(dxl_id: int, error: int = 0, params: bytes = b"") -> bytes:
    return build_packet(dxl_id, INST_STATUS, bytes([error]) + bytes(params))


class PacketParser:
    """Stream parser: feed bytes in any chunking, get (id, instruction, params) packets.

    Resynchronises on garbage: bytes before a header are dropped, an implausible LEN drops one
    byte and rescans, a packet with a bad CRC is dropped (counted per id in `crc_errors`), and a
    partial packet older than `max_age` seconds is abandoned when more bytes come.
    """

    def __init__(self, max_age: float = 0.05):
        self.buffer = bytearray()
        self.max_age = max_age
        self.partial_since: float | None = None
        self.crc_errors: Counter = Counter()
        self.discarded = 0

    def feed(self, data: bytes, now: float | None = None) -> list[tuple[int, int, bytes]]:
        now = time.monotonic() if now is None else now
        buf = self.buffer
        buf += data
        packets = []
        while True:
            start = buf.find(HEADER)
            if start < 0:
                keep = 3 if buf[-3:] == HEADER[:3] else 2 if buf[-2:] == HEADER[:2] else \
                    1 if buf[-1:] == HEADER[:1] else 0
                self.discarded += len(buf) - keep
                del buf[: len(buf) - keep]
                break
            if start:
                self.discarded += start
                del buf[:start]
            if len(buf) < 7:
                break
            length = buf[5] | (buf[6] << 8)
            if length < 3 or length > MAX_PACKET_LENGTH:
                self.discarded += 1
                del buf[0]
                continue
            total = 7 + length
            if len(buf) < total:
                if self.partial_since is not None and now - self.partial_since > self.max_age:
                    self.discarded += 1
                    del buf[0]
                    self.partial_since = None
                    continue
                break
            packet = bytes(buf[:total])
            del buf[:total]
            if crc16(packet[:-2]) != (packet[-2] | (packet[-1] << 8)):
                self.crc_errors[packet[4]] += 1
                packets.append((packet[4], -1, b""))  # instruction -1: CRC error
                continue
            payload = unstuff(packet[7:-2])
            packets.append((packet[4], payload[0], payload[1:]))
        if buf:
            if self.partial_since is None:
                self.partial_since = now
        else:
            self.partial_since = None
        return packets
