"""What went wrong, in three classes: the class decides the command line's exit status and tells the user what to
change.

- `UsageError` (a ValueError): the request is wrong: an option's value, a combination of options, an output that is
  also an input. Fixed by changing the command. Plain ValueErrors raised for bad arguments count as usage errors too,
  and so does `OutputExistsError`: an output that exists, replaced only when asked (another path, or overwrite).
- `InputDataError` (a ValueError): an input exists but its content cannot be used: not a raster, no CRS, truncated
  data, bands that are not the ones needed, a checkpoint holding NaN or Inf; or valid inputs that gave a non-finite
  result. Fixed by changing the data (or the weights).
- `OutputError` (an OSError): the result cannot be written, or this machine cannot run the job: a missing or
  read-only directory, a full disk, too little memory. Fixed by changing the environment.

A message names the setting to change as a ``{field}`` of its template, rendered for Python callers as the keyword
(``overwrite=True``) and by the command line as its flag (``--overwrite``): `RsinferError.render`. ``str(error)`` is
the Python rendering; pickling keeps that text.
"""

from __future__ import annotations

import re
from collections.abc import Callable


def python_keyword(name: str, value: object) -> str:
    """How a Python caller names a setting: ``overwrite=True``, ``tile=256``, or ``tile`` when no value is meant."""
    return name if value is None else f"{name}={value!r}"


class RsinferError(Exception):
    """A failure with a message for the user; `options` fill the ``{name}`` fields of `message`."""

    def __init__(self, message: str, **options: object) -> None:
        self.template, self.options = message, options
        super().__init__(self.render(python_keyword))

    def render(self, name_option: Callable[[str, object], str]) -> str:
        """The message with each option named by `name_option(name, value)`."""
        def field(match: re.Match) -> str:
            name = match[1]
            return name_option(name, self.options[name]) if name in self.options else match[0]

        return re.sub(r"\{(\w+)\}", field, self.template)  # other braces (a path, a dict) stay as they are


class UsageError(RsinferError, ValueError):
    """The request itself is wrong (an option, a combination, an output path that is also an input)."""


class InputDataError(RsinferError, ValueError):
    """An input's content cannot be used, or valid inputs gave a non-finite result."""


class OutputError(RsinferError, OSError):
    """The output cannot be written, or the machine cannot run the job (disk, permissions, memory)."""


class OutputExistsError(OutputError, FileExistsError):
    """The output exists and replacing it was not asked for (or another run wrote it meanwhile): the command line
    counts it as a usage error."""
