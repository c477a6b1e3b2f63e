"""Ctrl-C as a user gets it, however pytest was started.

A process started in the background by a shell without job control (``cmd &``
in a script, ``nohup``, some CI runners) inherits SIGINT *ignored*, and Python
then installs no ``KeyboardInterrupt`` handler: every test that sends itself
SIGINT to check what Ctrl-C does would see nothing happen. The handler a
terminal's Python has is installed for the whole run, and the inherited one
put back at the end.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _default_sigint_handler() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # (signal handlers are set from the main thread only)
        return
    inherited = signal.getsignal(signal.SIGINT)
    if inherited is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if inherited is signal.SIG_IGN:
        signal.signal(signal.SIGINT, inherited)
