"""Errors a user can cause. The command line prints them as one `Error: ...` line."""


class TextpredictError(ValueError):
    """A problem with the user's input, data or model, with a message for the user."""


class CorpusError(TextpredictError):
    """A corpus file or folder that cannot be used."""


class ModelError(TextpredictError):
    """A model that cannot be found, read or written."""
