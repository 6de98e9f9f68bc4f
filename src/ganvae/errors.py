"""Errors that reach the user as one line and an exit code, never as a traceback.

The CLI maps `BadInput` to exit code 2 (bad usage or bad input: the user can fix it by
changing what they passed) and any other `GanvaeError` to exit code 1.
"""


class GanvaeError(Exception):
    """An expected failure with a message written for the user. Exit code 1."""

    exit_code = 1
    label = "error"  # the CLI prints "ganvae: <label>: <message>"
    quiet = False    # True on the ranks of a DDP job other than 0, which leave the message to rank 0


class BadInput(GanvaeError):
    """The user's input (a file, a dataset, an option) is wrong. Exit code 2.

    The message names the file or option and says what is wrong and what to do.
    """

    exit_code = 2


class Stopped(GanvaeError):
    """Training stopped cleanly on SIGINT / SIGTERM, with a checkpoint. Exit 128 + signal."""

    label = "stopped"

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


def did_you_mean(word: str, choices) -> str:
    """" (did you mean 'X'?)" for the nearest of `choices` to a mistyped `word` (difflib's
    ratio >= 0.6, as click suggests options), else "": appended to an unknown-name error."""
    import difflib

    near = difflib.get_close_matches(str(word), list(dict.fromkeys(map(str, choices))), n=2, cutoff=0.6)
    if not near:
        return ""
    return f" (did you mean {' or '.join(repr(n) for n in near)}?)"

