"""A test hook for crash safety, in a leaf module so any stage can mark its boundaries."""

from __future__ import annotations

import os
import signal


def fault_point(stage: str) -> None:
    """`LINKAUDIT_FAULT_AT=<stage>` kills the process right here with SIGKILL, as `kill -9`
    would (tests/test_crash.py walks every stage). Does nothing otherwise."""
    if os.environ.get("LINKAUDIT_FAULT_AT") == stage:
        os.kill(os.getpid(), signal.SIGKILL)
