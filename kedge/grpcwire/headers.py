"""HPACK (RFC 7541): decoding request headers, encoding response headers.

A gRPC client sends nearly the same header block for every call, so a block that only
indexes the tables (it cannot change them) is remembered while the dynamic table stays as it
was, and Huffman-coded strings are remembered too (across connections). Responses use
only the static table and literals without indexing, so our side keeps no dynamic table.
"""

from __future__ import annotations

from collections import deque
from itertools import chain

from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable

Header = tuple[bytes, bytes]
Fields = tuple[dict[bytes, bytes], int]  # by name (a repeated name: its last value), list size
STATIC: tuple[Header, ...] = HeaderTable.STATIC_TABLE
STATIC_SIZE = len(STATIC)
ENTRY_OVERHEAD = 32  # RFC 7541 4.1
CACHED_BLOCKS = 256
CACHED_STRINGS = 1024
# Huffman-coded strings decoded lately, for every connection: a client that connects per call
# (KubeEdge's mapper framework does) sends the same strings on each new connection
_HUFFMAN: dict[bytes, bytes] = {}


class HpackError(Exception):
    """A header block that cannot be decoded: the connection's compression state is lost."""


def _integer(data: bytes, at: int, prefix: int) -> tuple[int, int]:
    """(value, next offset) of an integer with a `prefix`-bit prefix at data[at]."""
    mask = (1 << prefix) - 1
    value = data[at] & mask
    at += 1
    if value < mask:
        return value, at
    shift = 0
    while True:
        if at >= len(data) or shift > 28:
            raise HpackError("integer runs past the block or is too large")
        byte = data[at]
        at += 1
        value += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


class HeaderDecoder:
    """One connection's decoding state (its dynamic table)."""

    def __init__(self, max_table: int = 4096) -> None:
        self.max_table = max_table  # the SETTINGS_HEADER_TABLE_SIZE we announced
        self.limit = max_table  # the table size the peer's encoder chose
        self.dynamic: deque[Header] = deque()
        self.size = 0
        self._blocks: dict[bytes, Fields] = {}

    def decode(self, block: bytes) -> list[Header]:
        """The block's fields in order."""
        headers, changed = self._decode(block)
        if changed:
            self._blocks.clear()  # indices now mean other entries
        return headers

    def fields(self, block: bytes) -> Fields:
        """The block's fields by name, and the header list's size (RFC 9113 6.5.2: names,
        values and 32 per field), as a request's headers are used."""
        cached = self._blocks.get(block)
        if cached is not None:
            return cached
        headers, changed = self._decode(block)
        size = sum(map(len, chain.from_iterable(headers))) + ENTRY_OVERHEAD * len(headers)
        fields = dict(headers), size
        if changed:
            self._blocks.clear()
        elif len(self._blocks) < CACHED_BLOCKS:
            self._blocks[block] = fields
        return fields

    def _decode(self, data: bytes) -> tuple[list[Header], bool]:
        headers: list[Header] = []
        changed, at = False, 0
        size, dynamic = len(data), self.dynamic
        while at < size:
            byte = data[at]
            if byte & 0x80:  # indexed field (_entry inlined: grpc-go sends every field so)
                index = byte & 0x7F
                if index == 0x7F:
                    index, at = _integer(data, at, 7)
                else:
                    at += 1
                if 0 < index <= STATIC_SIZE:
                    headers.append(STATIC[index - 1])
                elif STATIC_SIZE < index <= STATIC_SIZE + len(dynamic):
                    headers.append(dynamic[index - STATIC_SIZE - 1])
                else:
                    raise HpackError(f"header index {index} is in neither table")
            elif byte & 0x40:  # literal, added to the table
                header, at = self._literal(data, at, 0x3F)
                self._add(header)
                headers.append(header)
                changed = True
            elif byte & 0x20:  # dynamic table size update
                if headers:
                    raise HpackError("table size update after a header field")
                limit, at = _integer(data, at, 5)
                if limit > self.max_table:
                    raise HpackError(f"table size {limit} over the {self.max_table} allowed")
                self.limit = limit
                self._evict(0)
                changed = True
            else:  # literal without indexing (0000) or never indexed (0001)
                header, at = self._literal(data, at, 0x0F)
                headers.append(header)
        return headers, changed

    def _entry(self, index: int) -> Header:
        if 0 < index <= len(STATIC):
            return STATIC[index - 1]
        dynamic = index - len(STATIC) - 1
        if 0 <= dynamic < len(self.dynamic):
            return self.dynamic[dynamic]
        raise HpackError(f"header index {index} is in neither table")

    def _literal(self, data: bytes, at: int, mask: int) -> tuple[Header, int]:
        index = data[at] & mask  # the name's index (0: a literal name follows)
        if index == mask:
            index, at = _integer(data, at, mask.bit_length())
        else:
            at += 1
        if not index:
            name, at = self._string(data, at)
        elif index <= STATIC_SIZE:
            name = STATIC[index - 1][0]
        else:
            name = self._entry(index)[0]
        value, at = self._string(data, at)
        return (name, value), at

    def _string(self, data: bytes, at: int) -> tuple[bytes, int]:
        if at >= len(data):
            raise HpackError("string runs past the block")
        first = data[at]
        if first < 0x7F:  # the common case: plain, its length in the first byte
            end = at + 1 + first
            if end > len(data):
                raise HpackError("string runs past the block")
            return data[at + 1 : end], end
        length, at = _integer(data, at, 7)
        end = at + length
        if end > len(data):
            raise HpackError("string runs past the block")
        raw = data[at:end]
        if not first & 0x80:
            return raw, end
        text = _HUFFMAN.get(raw)
        if text is None:
            try:
                text = decode_huffman(raw)
            except Exception as exc:  # hpack raises its own HPACKDecodingError
                raise HpackError(f"bad Huffman string: {exc}") from exc
            if len(_HUFFMAN) >= CACHED_STRINGS:
                _HUFFMAN.clear()
            _HUFFMAN[raw] = text
        return text, end

    def _add(self, header: Header) -> None:
        size = len(header[0]) + len(header[1]) + ENTRY_OVERHEAD
        if size > self.limit:  # RFC 7541 4.4: the table is emptied, the entry not added
            self.dynamic.clear()
            self.size = 0
            return
        self._evict(size)
        self.dynamic.appendleft(header)
        self.size += size

    def _evict(self, room: int) -> None:
        while self.dynamic and self.size + room > self.limit:
            name, value = self.dynamic.pop()
            self.size -= len(name) + len(value) + ENTRY_OVERHEAD


def _length(value: int, prefix: int, first: int = 0) -> bytes:
    """An HPACK integer with a `prefix`-bit prefix (first: the bits above it)."""
    mask = (1 << prefix) - 1
    if value < mask:
        return bytes((first | value,))
    out, value = bytearray((first | mask,)), value - mask
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name: bytes, value: bytes) -> bytes:
    """A literal field without indexing, with a literal name (no table state on either side)."""
    return b"\x00" + _length(len(name), 7) + name + _length(len(value), 7) + value


def literal_indexed_name(index: int, value: bytes) -> bytes:
    """A literal field without indexing whose name is the static table's entry `index`."""
    return _length(index, 4) + _length(len(value), 7) + value
