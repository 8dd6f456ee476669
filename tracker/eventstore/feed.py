"""The feed's cursor: where a reader of `read_all` stands, opaque to clients.

A cursor is the (transaction id, position) of the last event a page held: the feed is read in
that order on PostgreSQL (why: `postgres.PostgresRecorder`), and in position order, with the
transaction id 0, on SQLite. It travels as unpadded base64url of `"<txid>.<position>"`; a cursor
that does not decode to two integers in range raises InvalidCursor.
"""

from __future__ import annotations

import base64
import binascii

from .errors import InvalidCursor

START = (0, 0)
"""Before every event: the (txid, position) a reader with no cursor starts from."""

_MAX_TXID = 2**64  # xid8 is unsigned 64-bit
_MAX_POSITION = 2**63  # bigint


def encode_cursor(txid: int, position: int) -> str:
    raw = f"{txid}.{position}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        txid_text, position_text = (
            base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii").split(".")
        )
        txid, position = int(txid_text), int(position_text)
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidCursor(cursor) from None
    if txid < 0 or position < 0 or txid >= _MAX_TXID or position >= _MAX_POSITION:
        raise InvalidCursor(cursor)
    return txid, position
