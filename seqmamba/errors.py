"""The one exception type for bad user input.

The CLI catches it and prints its message alone (no traceback), so every raise must name the
file, the record or line, and what to do about it.
"""


class InputError(ValueError):
    """Bad user input: a file that cannot be read as what it claims to be, or settings that cannot work."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
