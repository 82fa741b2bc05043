"""The email channel's blueprint with all its routes attached (what ``EmailChannel.blueprint()`` returns).

Importing the two view modules attaches their routes to :data:`channels.email.blueprint.bp`.
"""

from __future__ import annotations

from channels.email.blueprint import bp
from channels.email.events import events
from channels.email.unsubscribe import confirm, unsubscribe

__all__ = ["bp", "confirm", "events", "unsubscribe"]
