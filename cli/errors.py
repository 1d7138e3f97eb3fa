"""Exit codes of the operations commands, and the one error type they raise.

- 0: done (a ``--wait`` ended in success);
- 1: the operation ran and failed or was refused (a deployment or run failed, the retrain guard said no, the
  endpoint answered with an error);
- 2: bad input (an unknown dataset, version or run, a file that cannot be read, a version in the wrong state);
- 3: AWS cannot be reached as asked (no credentials or region, unknown profile, stack not deployed, access denied).
"""

from __future__ import annotations

OK, FAILED, BAD_INPUT, NO_ACCESS = 0, 1, 2, 3


class CliError(Exception):
    """A command cannot do what it was asked; the message says why and what to do (printed, ``code`` returned)."""

    def __init__(self, message: str, code: int = BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code
