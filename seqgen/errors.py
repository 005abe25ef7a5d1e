"""The one exception type seqgen raises for problems a user can fix."""

from __future__ import annotations

import re
from typing import Mapping

SETTING = re.compile(r"\{(--[a-z][a-z0-9-]*)\}")  # a setting the user can change, named by its CLI flag


class SeqgenError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it.

    A message names a setting as ``{--min-count}``. ``str(error)`` writes the
    command-line flag (``--min-count``); :meth:`worded` writes the name a
    front end shows instead (the studio: the field's label).
    """

    @property
    def template(self) -> str:
        """The message with its ``{--flag}`` placeholders (what a training process sends to the server)."""
        return str(self.args[0]) if self.args else ""

    def worded(self, names: Mapping[str, str]) -> str:
        """The message with each ``{--flag}`` written as ``names[flag]`` (the flag itself when not named)."""
        return SETTING.sub(lambda match: names.get(match.group(1), match.group(1)), self.template)

    def __str__(self) -> str:
        return self.worded({})
