"""Configurations for the tests, from YAML text, validated exactly as a file would be."""

from __future__ import annotations

from shrinkd import config, configfile


def config_from(text: str = "") -> config.Config:
    """A Config from YAML text read as a file named test.yaml (empty text: the built-in defaults)."""
    return config.from_plain(configfile.validate(configfile.parse_text(text, "test.yaml")))


def current(text: str = "") -> config.Current:
    """The same, held as the daemon holds the configuration in force."""
    return config.Current(config_from(text))
