"""The exceptions a user sees as one line, never as a traceback.

The CLI catches `UserFacingError`, prints its message alone and exits with its `exit_status`, so every
raise must name the file, the record or line, and what to do about it.
"""


class UserFacingError(Exception):
    """A problem the user can act on: printed as one line by the CLI."""

    exit_status = 1
    label = "error"
    shown = True  # False on the DDP ranks other than 0 when every rank stops alike: one line, not one per GPU


class InputError(UserFacingError, ValueError):
    """Bad user input: a file that cannot be read as what it claims to be, or settings that cannot work."""

    exit_status = 2

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):  # raised in worker processes (process pools), it must cross back intact
        return (type(self), (self.path, self.problem))


class RunFailed(UserFacingError):
    """A run that cannot go on (the loss diverged, the disk is full); its last good checkpoint is kept."""


class RunInterrupted(UserFacingError):
    """A run stopped by a signal after saving a checkpoint; exits 128 + the signal number, as shells expect."""

    label = "stopped"

    def __init__(self, signum: int, message: str, shown: bool = True) -> None:
        self.signum = signum
        self.exit_status = 128 + signum
        self.shown = shown
        super().__init__(message)

    def __reduce__(self):
        return (type(self), (self.signum, str(self), self.shown))


class HelpRequested(Exception):
    """Not an error: a parser asked for --help (or --help-all) hands itself to the dispatcher, which prints the help."""

    def __init__(self, parser: object, show_all: bool) -> None:
        self.parser, self.show_all = parser, show_all
        super().__init__("help requested")
