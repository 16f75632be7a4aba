"""Small file helpers shared across tfllm."""

import os


def write_text_atomically(path, text):
    """Writes `text` (UTF-8, `\\n` newlines) to `path` through a temporary file and a rename.

    Readers never see a half-written file; missing parent directories are created.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(temporary, path)
