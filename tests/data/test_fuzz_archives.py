"""Downloaded archives the archive fuzzer found mishandled, through load_dataset with file:// URLs."""

import io
import tarfile
import zipfile

import pytest

from tfllm.data import DataError, load_dataset
from tfllm.data import datasets as datasets_module

SPA = "Go.\tVe.\nI am hungry.\tTengo hambre.\n" * 20


def zip_bytes():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("spa-eng/spa.txt", SPA)
    return buffer.getvalue()


def tgz_bytes():
    buffer = io.BytesIO()
    data = SPA.encode()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("spa-eng/spa.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def serve(tmp_path, monkeypatch, name, content):
    monkeypatch.delenv("TFLLM_DATA_DIR", raising=False)
    archive = tmp_path / name
    archive.write_bytes(content)
    monkeypatch.setitem(datasets_module.URLS, "spa_eng", archive.as_uri())
    return tmp_path / "new-cache"


def test_archive_is_kept_in_a_cache_dir_that_did_not_exist(tmp_path, monkeypatch):
    # keras.utils.get_file fell back to /tmp/.keras for a missing cache_dir and
    # reused any stale archive of the same name found there.
    cache = serve(tmp_path, monkeypatch, "spa-eng.zip", zip_bytes())
    assert len(load_dataset("spa_eng", "all", cache_dir=cache)) == 40
    assert (cache / "datasets" / "spa-eng.zip").is_file()


def with_method(content, method):
    # The compression method field of the local header and the central directory.
    raw = bytearray(content)
    raw[8:10] = method.to_bytes(2, "little")
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 10 : central + 12] = method.to_bytes(2, "little")
    return bytes(raw)


def with_flag(content, flag):
    raw = bytearray(content)
    raw[6] |= flag
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 8] |= flag
    return bytes(raw)


def bad_utf8_name():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("spa-eng/sp\xe4.txt", SPA)  # a non-ASCII name sets the UTF-8 flag
    return buffer.getvalue().replace("sp\xe4".encode(), b"sp\xf6\xf6")


def deflate_damaged(content):
    raw = bytearray(content)
    start = 30 + len("spa-eng/spa.txt")  # data follows the local header
    raw[start + 2 : start + 6] = b"\xff\xff\xff\xff"
    return bytes(raw)


@pytest.mark.parametrize(
    "name,content",
    [
        ("spa-eng.tgz", tgz_bytes()[:-40]),  # raised EOFError
        ("spa-eng.zip", deflate_damaged(zip_bytes())),  # zlib.error
        ("spa-eng.zip", with_method(zip_bytes(), 99)),  # NotImplementedError
        ("spa-eng.zip", with_flag(zip_bytes(), 0x1)),  # RuntimeError: encrypted
        ("spa-eng.zip", bad_utf8_name()),  # UnicodeDecodeError
    ],
    ids=["cut-tgz", "bad-deflate", "unknown-method", "encrypted", "name-not-utf8"],
)
def test_damaged_archive(tmp_path, monkeypatch, name, content):
    cache = serve(tmp_path, monkeypatch, name, content)
    with pytest.raises(DataError) as info:
        load_dataset("spa_eng", "all", cache_dir=cache)
    message = str(info.value)
    assert "\n" not in message and "could not extract into" in message, message
    assert not (cache / "datasets" / "tfllm" / "spa_eng").exists()
