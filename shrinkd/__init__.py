"""shrinkd: keep Linux memory usable on small devices."""

__version__ = "0.1.0"
