"""Errors that are the user's to fix. Stages print them as one clear line (no traceback) and exit 2."""


class LidrError(Exception):
    """Base of the errors below."""


class ParamsError(LidrError, ValueError):
    """A params.yaml problem; the message names the file, the key and what was expected."""


class DataError(LidrError, ValueError):
    """A malformed input file; the message names the file and the line."""


class ModelError(LidrError, RuntimeError):
    """A model that cannot be found or loaded."""


class JoinError(LidrError, ValueError):
    """Records of one prompt id missing in another file."""


class GateError(LidrError, ValueError):
    """The pairs fail the data-quality gate; the message names the check, the language and the numbers."""


class JudgeError(LidrError, RuntimeError):
    """The judge cannot be reached, is not configured, or cannot name the outputs in one token."""
