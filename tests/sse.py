"""A small client of server-sent events for tests: one HTTP connection, read in a thread.

Messages are parsed as the EventSource specification says (fields up to a blank line; lines
starting with ":" are comments) and queued as they arrive, so a test can wait for the next one
with a timeout, or check that none comes for a while, without breaking the connection.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Message:
    id: str | None = None
    event: str | None = None
    data: str = ""
    retry: int | None = None
    comment: str | None = None
    fields: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        return json.loads(self.data)


class Closed(Exception):
    """The server ended the stream."""


class EventStream:
    """GET `path` on `base` with `text/event-stream`; `status`, `headers`, then `next()`."""

    def __init__(
        self,
        base: str,
        path: str,
        *,
        token: str | None = None,
        last_event_id: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> None:
        where = urlsplit(base)
        self.connection = http.client.HTTPConnection(where.hostname, where.port, timeout=timeout)
        sent = {"Accept": "text/event-stream", **(headers or {})}
        if token:
            sent["Authorization"] = f"Token {token}"
        if last_event_id is not None:
            sent["Last-Event-ID"] = last_event_id
        self.connection.request("GET", path, headers=sent)
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.headers = self.response.headers
        self.items: queue.Queue[Message | BaseException] = queue.Queue()
        if self.status == 200:
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
        else:
            self.body = self.response.read()
            self.connection.close()

    def problem(self) -> dict[str, Any]:
        return json.loads(self.body)

    def next(self, timeout: float = 10, *, comments: bool = False) -> Message:
        """The next message (an event, or `retry:` alone); comments too if asked for."""
        while True:
            item = self.items.get(timeout=timeout)
            if isinstance(item, BaseException):
                raise item
            if item.comment is None or comments:
                return item

    def events(self, count: int, timeout: float = 30) -> list[Message]:
        """The next `count` messages that carry an event."""
        found: list[Message] = []
        while len(found) < count:
            message = self.next(timeout)
            if message.data:
                found.append(message)
        return found

    def quiet_for(self, seconds: float) -> bool:
        """True if no event comes within `seconds` (comments and `retry:` do not count)."""
        try:
            while True:
                if self.next(seconds).data:
                    return False
        except queue.Empty:
            return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.sock and self.connection.sock.shutdown(2)
        self.connection.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> None:
        message = Message()
        try:
            while True:
                line = self.response.readline()
                if not line:
                    raise Closed("the server ended the stream")
                text = line.decode("utf-8").rstrip("\r\n")
                if text.startswith(":"):
                    self.items.put(Message(comment=text[1:].strip()))
                    continue
                if text == "":
                    if message.fields:
                        self.items.put(message)
                    message = Message()
                    continue
                name, _, value = text.partition(":")
                value = value.removeprefix(" ")
                message.fields.append(name)
                if name == "id":
                    message.id = value
                elif name == "event":
                    message.event = value
                elif name == "data":
                    message.data = f"{message.data}\n{value}" if message.data else value
                elif name == "retry":
                    message.retry = int(value)
        except BaseException as error:
            self.items.put(error)
