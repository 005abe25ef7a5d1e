"""The one exception type seqgen raises for problems a user can fix."""


class SeqgenError(Exception):
    """A user-facing error: the message says what is wrong and how to fix it."""
