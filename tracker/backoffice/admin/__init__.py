"""What the admin site shows, registered when Django's admin autodiscovers this module."""

from . import deals, events, organisations, registers

__all__ = ["deals", "events", "organisations", "registers"]
