"""The feed cursor: opaque to clients, and refused unless this store could have issued it."""

from __future__ import annotations

import pytest

from tracker.eventstore.errors import InvalidCursor
from tracker.eventstore.feed import START, decode_cursor, encode_cursor


class TestCursor:
    @pytest.mark.parametrize("place", [START, (1, 0), (812, 41), (2**64 - 1, 2**63 - 1)])
    def test_decodes_to_the_place_it_encodes(self, place):
        assert decode_cursor(encode_cursor(*place)) == place

    def test_is_url_safe_text_without_padding(self):
        cursor = encode_cursor(2**64 - 1, 2**63 - 1)
        assert set(cursor) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )

    @pytest.mark.parametrize(
        "cursor",
        [
            "not-a-cursor!",
            "LTEuNQ",  # "-1.5"
            encode_cursor(2**64, 0),
            encode_cursor(0, 2**63),
            "MS4yLjM",  # "1.2.3"
            "",
        ],
    )
    def test_refuses_a_cursor_it_did_not_issue(self, cursor):
        with pytest.raises(InvalidCursor):
            decode_cursor(cursor)
