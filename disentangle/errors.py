"""Errors that report a user's mistake (bad config, missing data, bad file) clearly.

The command line prints these without a traceback and exits with status 2. Messages
name the bad value, where it came from, and what is accepted.
"""


class UserError(Exception):
    """A mistake in what the user asked for or gave."""


class ConfigError(UserError, ValueError):
    """An unknown config key, a value of the wrong type, or an inconsistent setting."""


class DataError(UserError, ValueError):
    """A dataset that is missing, unprepared or malformed."""
