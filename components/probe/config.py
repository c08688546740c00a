"""Settings of the correspondence probe; the class lives in the config schema (section `probe:`)."""

from components.config.schema import ProbeConfig

__all__ = ["ProbeConfig"]
