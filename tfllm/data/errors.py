"""The one exception type every data loader raises for bad input."""


class DataError(ValueError):
    """Bad input data, described in one line that names the file, row and problem.

    The message reads `path: row N: problem` (rows are 1-based and exclude
    the header), or `path: problem` when the problem concerns the whole file.
    CLIs print it and exit with code 2.

    Args:
        problem: what is wrong, in a few words.
        path: the file (or directory) the problem was found in.
        row: 1-based row number, header excluded.

    Attributes:
        problem, path, row: as passed, for programmatic use.
    """

    def __init__(self, problem, *, path=None, row=None):
        self.problem = problem
        self.path = None if path is None else str(path)
        self.row = row
        parts = []
        if self.path is not None:
            parts.append(self.path)
        if row is not None:
            parts.append(f"row {row}")
        parts.append(problem)
        # One line, always: values quoted into messages may contain newlines.
        super().__init__(": ".join(parts).replace("\r", "\\r").replace("\n", "\\n"))

    def __reduce__(self):
        return (_rebuild, (self.problem, self.path, self.row))


def cut(text, limit=40):
    """`text`, or its first `limit` characters and "..." when it is longer."""
    return text if len(text) <= limit else text[:limit] + "..."


def shorten(value, limit=40):
    """`repr(value)` cut to about `limit` characters, for messages quoting values read from a file."""
    return repr(cut(value, limit)) if isinstance(value, str) else cut(repr(value), limit)


def _rebuild(problem, path, row):
    return DataError(problem, path=path, row=row)
