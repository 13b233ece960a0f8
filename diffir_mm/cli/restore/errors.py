"""The error policy of ``diffir-restore``: exit statuses and the ``error:`` / ``note:`` lines.

Two kinds of problems, one rule each:

* **setup** -- bad arguments, a config or checkpoint that cannot be used, an output folder that
  cannot be created: nothing can start, so the command prints one ``error:`` line and exits with
  :data:`EXIT_SETUP` (:class:`SetupError` carries the line);
* **per input** -- a missing path, an unreadable file, a failed restoration or write: one
  ``error: PATH: ...`` line, the other inputs are still processed, and the run ends with
  :data:`EXIT_FAILED` (:class:`Reporter` counts them).

Everything goes to stderr, one line per message, never a traceback: :func:`one_line` turns an
exception into its first line. Conversions that change the data are ``note:`` lines (``-q`` hides
them), the fp32 recomputation of a reduced-precision forward is a ``warning:`` line.
"""
from __future__ import annotations

import sys
from typing import Optional

__all__ = ['EXIT_OK', 'EXIT_FAILED', 'EXIT_SETUP', 'EXIT_INTERRUPTED', 'SetupError', 'one_line',
           'Reporter']

#: Every input restored.
EXIT_OK = 0
#: Some inputs failed (each reported), the others were restored.
EXIT_FAILED = 1
#: Nothing could start: bad arguments, config or checkpoint.
EXIT_SETUP = 2
#: Stopped with Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


class SetupError(Exception):
    """A problem that stops the command before any input is processed (:data:`EXIT_SETUP`)."""


def one_line(err: BaseException) -> str:
    """The first non-blank line of ``err``'s message, or its type name when it has none."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


class Reporter:
    """Prints the command's messages to stderr and counts restored and failed inputs.

    While a progress bar is shown (:attr:`bar`, set by the run), messages are written through it
    so that they do not tear the bar.

    Args:
        quiet: Hide ``note:`` lines.
    """

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.failed = 0
        self.done = 0
        self.bar = None

    def say(self, text: str) -> None:
        """Print one line on stderr."""
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def error(self, text: str, path: Optional[str] = None) -> None:
        """Report a failed input (``error: [PATH: ]TEXT``); it counts in :attr:`failed`."""
        self.failed += 1
        self.say(f'error: {path}: {text}' if path is not None else f'error: {text}')

    def note(self, path: str, text: str) -> None:
        """Report a conversion of ``path`` (hidden with ``quiet``)."""
        if not self.quiet:
            self.say(f'note: {path}: {text}')

    def warn(self, path: str, text: str) -> None:
        """Report a warning about ``path``."""
        self.say(f'warning: {path}: {text}')

    def restored(self) -> None:
        """Count one restored input."""
        self.done += 1

    def summary(self) -> str:
        """The closing line."""
        return f'done: {self.done} restored, {self.failed} failed'

    def exit_status(self) -> int:
        """:data:`EXIT_FAILED` when any input failed, else :data:`EXIT_OK`."""
        return EXIT_FAILED if self.failed else EXIT_OK
