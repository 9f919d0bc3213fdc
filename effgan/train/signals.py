"""SIGINT / SIGTERM turn into a polite stop request: finish the step, save a checkpoint, exit.

A second SIGINT while the stop is pending raises KeyboardInterrupt at once, for a user who does
not want to wait. Handlers are installed only for the duration of the ``with`` block, and only
from the main thread (Python allows no other), so library callers keep their own handlers.
"""
from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from types import FrameType


@dataclass
class StopRequest:
    signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


class catch_stop_signals:
    """``with catch_stop_signals() as stop: ... if stop.requested: ...``"""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.stop = StopRequest()
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.stop.signum = signum

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self.stop

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
