"""The S2ORC formatter's error, in a module of its own: the compiled copy of the formatter
(see `hatch_build.py`) raises this very class, so one `except` catches both."""


class S2orcFormatError(ValueError):
    """The record is not an S2ORC v2 row (the reason is the message, for the quarantine)."""
