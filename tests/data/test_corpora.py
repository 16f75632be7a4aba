"""Corpora: text files, folders and table columns read as documents; packing into windows."""

import numpy as np
import pytest

from tfllm.data.corpora import join_documents, pack_windows, read_corpus
from tfllm.data.errors import DataError


def test_reads_a_file_a_folder_and_a_table_column(tmp_path):
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "b.txt").write_text("second book\n")
    (tmp_path / "books" / "a.txt").write_text("first book\n")
    (tmp_path / "books" / ".hidden").write_text("skipped")
    (tmp_path / "books" / "empty.txt").write_text("  \n")
    assert read_corpus(tmp_path / "books") == ["first book\n", "second book\n"]
    assert read_corpus(tmp_path / "books" / "a.txt") == ["first book\n"]
    table = tmp_path / "reviews.csv"
    table.write_text("id,review\n1,a fine film\n2,a dull one\n")
    assert read_corpus(table, "review") == ["a fine film", "a dull one"]


@pytest.mark.parametrize("content", [b"", b"   \n\n", b"\x00\x01\x02binary\x00"])
def test_an_empty_or_binary_corpus_is_one_line_naming_the_path(tmp_path, content):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        read_corpus(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_missing_paths_tables_without_column_and_bad_encodings(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_corpus(tmp_path / "nothing.txt")
    table = tmp_path / "t.csv"
    table.write_text("text\nhello\n")
    with pytest.raises(DataError, match="--text-column"):
        read_corpus(table)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café".encode("latin-1"))
    with pytest.raises(DataError, match="utf-8"):
        read_corpus(latin)
    assert read_corpus(latin, encoding="latin-1") == ["café"]


def test_packing_pads_only_the_last_window():
    documents = [np.arange(1, 50), np.arange(100, 137), np.arange(200, 203)]
    windows = pack_windows(documents, 16, separator_id=7)
    stream = join_documents(documents, 7)
    assert stream.size == 49 + 37 + 3 + 2
    assert windows.shape == (-(-stream.size // 16), 16)
    assert not (windows[:-1] == 0).any()
    np.testing.assert_array_equal(windows.reshape(-1)[: stream.size], stream)
    assert (windows.reshape(-1)[stream.size :] == 0).all()


def test_causal_windows_overlap_by_one_so_every_token_is_a_target_once():
    stream = np.arange(1, 24)
    windows = pack_windows([stream], 6, overlap=1)
    targets = windows[:, 1:].reshape(-1)
    np.testing.assert_array_equal(targets[targets > 0], stream[1:])
    np.testing.assert_array_equal(windows[1:, 0], windows[:-1, -1])


def test_text_files_read_like_table_files_compressed_with_a_bom_or_in_utf16(tmp_path):
    import gzip

    (tmp_path / "bom.txt").write_bytes("\ufeffonce upon a time".encode("utf-8"))
    assert read_corpus(tmp_path / "bom.txt") == ["once upon a time"]
    (tmp_path / "book.txt.gz").write_bytes(gzip.compress(b"a compressed book\n"))
    assert read_corpus(tmp_path / "book.txt.gz") == ["a compressed book\n"]
    (tmp_path / "notepad.txt").write_bytes("wide text".encode("utf-16"))
    assert read_corpus(tmp_path / "notepad.txt", encoding="utf-16") == ["wide text"]
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff")
    with pytest.raises(DataError, match="binary"):
        read_corpus(tmp_path / "image.txt")
