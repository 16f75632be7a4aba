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


def save_figure_atomically(figure, path, dpi=100):
    """Saves a matplotlib `figure` as the PNG `path` through a temporary file and a rename; returns `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}.png")
    figure.savefig(temporary, dpi=dpi)
    os.replace(temporary, path)
    return path
