"""Typed errors for website-export files: which file, which line, what was expected."""

from __future__ import annotations


class ExportFileError(ValueError):
    """A file that cannot be imported; nothing of it is imported. `line` is 1-based (the header is line 1)."""

    def __init__(self, file: str, line: int | None, expected: str, found: str | None = None):
        self.file, self.line, self.expected, self.found = file, line, expected, found
        where = f"{file}, line {line}" if line else file
        tail = f" (found {found})" if found is not None else ""
        super().__init__(f"{where}: expected {expected}{tail}; nothing was imported from this file")


class NotAnOrderExportError(ExportFileError):
    """A Bitget export of another kind (transactions, positions, fills): not orders, refused this round."""


TIME_ZONE_HELP = (
    "the time zone Bitget showed dates in when the file was made: export dates carry no zone. Bitget's website "
    "writes them in your account's display time zone: look for the time-zone setting in your Bitget "
    "preferences (profile menu, Settings/Preferences); if you never changed it, it is usually the zone of the "
    "computer or phone you exported from. Pass it as an IANA name, e.g. "
    "Europe/Berlin (a fixed offset such as UTC+8 gets daylight saving wrong)"
)


class MissingTimeZoneError(ExportFileError):
    """No (or no usable) time zone given: the dates of an export cannot be placed in time without it."""

    def __init__(self, file: str, found: str | None = None):
        super().__init__(file, None, TIME_ZONE_HELP, found)
