"""Errors that the CLI turns into one clear line and a non-zero exit."""


class CorrvosError(Exception):
    """Base class: a problem the user can fix (bad input, bad config, unreachable service)."""


class ConfigError(CorrvosError):
    """A config file or override names an unknown key or holds a value of the wrong type."""


class DataError(CorrvosError):
    """An input dataset file is missing, corrupt or inconsistent."""
