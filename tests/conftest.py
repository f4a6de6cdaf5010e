"""Settings for the whole suite."""

from __future__ import annotations

from hypothesis import settings

# Property tests check behaviour, never wall-clock time: no per-example deadline (a loaded
# CI machine or a slow emulated guest must not turn a correct run into a failure).
settings.register_profile("shrinkd", deadline=None)
settings.load_profile("shrinkd")
