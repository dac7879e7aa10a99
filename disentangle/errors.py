"""Errors that report a user's mistake (bad config, missing data, bad file) clearly.

The command line prints these as one line ``error: ...`` without a traceback and exits
with status 2 (``disentangle --debug`` or ``DISENTANGLE_DEBUG=1`` shows the traceback).
Messages name the bad value, where it came from, and what is accepted.
"""


class UserError(Exception):
    """A mistake in what the user asked for or gave."""


class ConfigError(UserError, ValueError):
    """An unknown config key, a value of the wrong type, or an inconsistent setting."""


class DataError(UserError, ValueError):
    """A dataset that is missing, unprepared or malformed."""


class UnknownNameError(UserError, KeyError):
    """A name that no registry holds (a ``KeyError`` too, for callers that catch that)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""
