"""The label vocabulary kept with a classifier: label strings <-> class ids."""

import os

import numpy as np

from tfllm._files import write_text_atomically
from tfllm.data.errors import DataError, shorten


def _label_key(labels):
    # Integer labels sort numerically ("2" before "10"); anything else as text.
    if all(_is_int(label) for label in labels):
        return lambda label: (int(label), label)
    return lambda label: label


def _is_int(label):
    if isinstance(label, (bool, np.bool_)):
        return False
    if isinstance(label, (int, np.integer)):
        return True
    if isinstance(label, (float, np.floating)):
        return float(label).is_integer()
    if isinstance(label, str):
        text = label.strip()
        return text.lstrip("-").isdigit()
    return False


def _as_label(label):
    if isinstance(label, (float, np.floating)) and float(label).is_integer():
        return str(int(label))
    if isinstance(label, (bytes, np.bytes_)):
        return label.decode("utf-8").strip()
    return str(label).strip()


class LabelVocabulary:
    """Maps class labels (ints or strings) to contiguous ids 0..n-1 and back.

    Labels are kept as strings, sorted (numerically when all are integers),
    so the same training labels always give the same ids. Save it next to the
    model (`labels.txt`, one label per line) to decode predictions later.

    Args:
        labels: the distinct label strings, in id order.

    Example:
        >>> vocab = LabelVocabulary.from_labels(["pos", "neg", "pos"])
        >>> vocab.labels, vocab.encode(["pos"]).tolist(), vocab.decode([0])
        (['neg', 'pos'], [1], ['neg'])
    """

    def __init__(self, labels):
        labels = [_as_label(label) for label in labels]
        if not labels:
            raise ValueError("A label vocabulary needs at least one label. Received: []")
        if len(set(labels)) != len(labels):
            raise ValueError(f"Labels must be distinct. Received: labels={labels}")
        for label in labels:
            if not label or "\n" in label or "\r" in label:
                raise ValueError(
                    f"Labels must be non-empty single-line strings. Received: {label!r}"
                )
        self.labels = labels
        self._ids = {label: index for index, label in enumerate(labels)}

    @classmethod
    def from_labels(cls, labels):
        """Builds the vocabulary of the distinct values in `labels`."""
        distinct = {_as_label(label) for label in labels}
        if "" in distinct:
            raise ValueError("Labels must not be empty strings")
        return cls(sorted(distinct, key=_label_key(distinct)))

    def __len__(self):
        return len(self.labels)

    def __iter__(self):
        return iter(self.labels)

    def __contains__(self, label):
        return _as_label(label) in self._ids

    def __eq__(self, other):
        return isinstance(other, LabelVocabulary) and self.labels == other.labels

    def __repr__(self):
        return f"LabelVocabulary({self.labels!r})"

    def encode(self, labels, source=None):
        """Returns the int64 ids of `labels`.

        Args:
            labels: an iterable of labels (ints or strings).
            source: the file the labels came from, named in errors.

        Raises:
            DataError: naming the 1-based row of the first label not in the vocabulary.
        """
        ids = np.empty(len(labels), dtype=np.int64)
        for index, label in enumerate(labels):
            key = _as_label(label)
            if key not in self._ids:
                known = ", ".join(self.labels)
                raise DataError(
                    f"label {key!r} was not seen in training (known labels: {known})",
                    path=source,
                    row=index + 1,
                )
            ids[index] = self._ids[key]
        return ids

    def decode(self, ids):
        """Returns the label strings of class ids (any int iterable or array)."""
        ids = np.asarray(ids).reshape(-1)
        out = []
        for value in ids.tolist():
            if not 0 <= value < len(self.labels):
                raise ValueError(
                    f"Class id out of range [0, {len(self.labels)}). Received: {value}"
                )
            out.append(self.labels[value])
        return out

    def save(self, path):
        """Writes one label per line (UTF-8), atomically."""
        write_text_atomically(path, "".join(label + "\n" for label in self.labels))

    @classmethod
    def load(cls, path):
        """Reads a vocabulary written by `save`."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise DataError("no such label file", path=path)
        with open(path, "rb") as f:
            raw = f.read()
        try:
            # A byte order mark is what editors on Windows put first.
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            row = raw[: error.start].count(b"\n") + 1
            raise DataError("not valid UTF-8", path=path, row=row) from None
        # Line breaks as text mode reads them: "\n", "\r\n" or "\r".
        labels = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        while labels and not labels[-1].strip():
            labels.pop()
        if not labels:
            raise DataError("label file is empty", path=path)
        first_row = {}
        for index, label in enumerate(labels):
            if not label.strip():
                raise DataError("empty label", path=path, row=index + 1)
            key = label.strip()
            if key in first_row:
                raise DataError(
                    f"label {shorten(key)} repeats row {first_row[key]}", path=path, row=index + 1
                )
            first_row[key] = index + 1
        try:
            return cls(labels)
        except ValueError as error:
            raise DataError(str(error), path=path) from None
