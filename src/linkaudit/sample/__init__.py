"""Synthetic scenarios with planted truth, for demos, tests and benchmarks.

``linkaudit.sample.mashan.generate`` writes the Mashan county scenario.
"""

from __future__ import annotations

__all__ = ["mashan"]
