"""The one error type users see: bad input, reported as one line with exit status 2."""


class InputError(ValueError):
    """Bad input from a user (spec file, CLI argument, data file). Its message is one line."""
