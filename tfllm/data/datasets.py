"""Public data sets by name, and the small sample data sets shipped with tfllm."""

import importlib.resources
import logging
import os
import shutil
import tarfile
import uuid
import zipfile
import zlib

from tfllm.data.errors import DataError
from tfllm.data.formats import READ_ERRORS
from tfllm.data.frames import read_frame
from tfllm.data.readers import (
    read_dailydialog,
    read_imdb,
    read_samsum,
    read_sst2,
    read_translation_pairs,
)
from tfllm.data.tables import select_columns

logger = logging.getLogger("tfllm.data")

DATA_DIR_ENV = "TFLLM_DATA_DIR"

# Official distribution URLs. The archives extract to the layouts `_locate`
# understands, next to the layout of a prepared data directory.
URLS = {
    "imdb": "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    "sst2": "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
    "samsum": "https://arxiv.org/src/1911.12237v2/anc/corpus.7z",
    "dailydialog": "http://yanran.li/files/ijcnlp_dailydialog.zip",
    "spa_eng": "http://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip",
}

SPLITS = {
    "imdb": ("train", "test"),
    "sst2": ("train", "validation", "test"),
    "samsum": ("train", "validation", "test"),
    "dailydialog": ("train", "validation", "test"),
    "spa_eng": ("train", "validation", "test", "all"),
}

# spa_eng has no official split: pairs are assigned by a hash of the English
# sentence, so the split is stable across runs and no source sentence is in
# two splits (the corpus has many translations per sentence).
SPA_ENG_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}

SAMPLES = {
    "sentiment": ("text", "label"),
    "dialogue": ("context", "response"),
    "summarization": ("dialogue", "summary"),
    "translation": ("source", "target"),
}


def _first_file(*candidates):
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    return None


def _first_dir(*candidates):
    for candidate in candidates:
        if os.path.isdir(candidate):
            return candidate
    return None


def _spa_eng_split(frame, split):
    if split == "all":
        return frame
    bucket = frame["source"].map(lambda text: zlib.crc32(text.encode("utf-8")) % 100)
    train = int(SPA_ENG_FRACTIONS["train"] * 100)
    validation = train + int(SPA_ENG_FRACTIONS["validation"] * 100)
    keep = {
        "train": bucket < train,
        "validation": (bucket >= train) & (bucket < validation),
        "test": bucket >= validation,
    }[split]
    return frame[keep].reset_index(drop=True)


def _locate(name, base, split):
    """Returns a callable reading `split` of `name` under `base`, or None."""
    root = os.path.join(base, name)
    if not os.path.isdir(root):
        return None
    if name == "imdb":
        file = _first_file(
            *(os.path.join(root, f"{split}.{ext}") for ext in ("csv", "parquet", "jsonl"))
        )
        if file:
            return lambda: read_imdb(file)
        directory = _first_dir(
            os.path.join(root, "aclImdb", split), os.path.join(root, split)
        )
        return (lambda: read_imdb(directory)) if directory else None
    if name == "sst2":
        filename = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}[split]
        file = _first_file(
            os.path.join(root, filename), os.path.join(root, "SST-2", filename)
        )
        return (lambda: read_sst2(file)) if file else None
    if name == "samsum":
        names = {"train": ("train",), "validation": ("validation", "val"), "test": ("test",)}
        file = _first_file(
            *(
                os.path.join(root, f"{stem}.{ext}")
                for stem in names[split]
                for ext in ("csv", "json", "jsonl", "parquet")
            )
        )
        return (lambda: read_samsum(file)) if file else None
    if name == "dailydialog":
        file = _first_file(
            os.path.join(root, split, f"dialogues_{split}.txt"),
            os.path.join(root, "ijcnlp_dailydialog", split, f"dialogues_{split}.txt"),
        )
        return (lambda: read_dailydialog(file)) if file else None
    if name == "spa_eng":
        file = _first_file(
            os.path.join(root, "spa-eng", "spa.txt"), os.path.join(root, "spa.txt")
        )
        return (lambda: _spa_eng_split(read_translation_pairs(file), split)) if file else None
    raise AssertionError(name)


# What a damaged archive raises besides tarfile's and zipfile's own errors:
# cut or corrupt compressed streams (READ_ERRORS), an unknown zip compression
# method (NotImplementedError), a member flagged as encrypted (RuntimeError),
# a member name flagged as UTF-8 that is not (UnicodeDecodeError).
_EXTRACT_ERRORS = (
    *READ_ERRORS,
    tarfile.TarError,
    zipfile.BadZipFile,
    NotImplementedError,
    RuntimeError,
    UnicodeDecodeError,
)


def _extract(archive, destination):
    """Extracts `archive` (and DailyDialog's inner split zips) into `destination`."""
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            tar.extractall(destination, filter="data")
    elif zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(destination)
        for folder, _, files in os.walk(destination):
            for file in files:
                if file.endswith(".zip"):
                    inner = os.path.join(folder, file)
                    with zipfile.ZipFile(inner) as zipped:
                        zipped.extractall(folder)
    elif archive.endswith(".7z"):
        try:
            import py7zr
        except ImportError:
            raise DataError(
                "is a 7z archive and py7zr is not installed: run `pip install py7zr`, "
                "or extract train.json/val.json/test.json into "
                "<data dir>/samsum/ yourself",
                path=archive,
            ) from None
        with py7zr.SevenZipFile(archive) as sevenzip:
            sevenzip.extractall(destination)
    else:
        raise DataError("downloaded file is not an archive tfllm can extract", path=archive)


def _download(name, cache_dir):
    import keras

    cache_dir = os.path.expanduser(cache_dir or os.path.join("~", ".keras"))
    datasets = os.path.join(cache_dir, "datasets")
    target = os.path.join(datasets, "tfllm", name)
    if os.path.isfile(os.path.join(target, ".complete")):
        return os.path.dirname(target)
    url = URLS[name]
    try:
        # get_file silently falls back to /tmp/.keras when cache_dir does not
        # exist yet, and then reuses whatever archive of that name is there.
        os.makedirs(cache_dir, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"cannot create the cache directory ({error.strerror})", path=cache_dir
        ) from None
    try:
        archive = keras.utils.get_file(
            fname=os.path.basename(url), origin=url, cache_dir=cache_dir
        )
    except Exception as error:  # get_file wraps URL, HTTP and socket errors alike.
        reason = " ".join(str(error).split()) or type(error).__name__
        raise DataError(
            f"could not download {name!r} from {url} ({reason}); if this machine is "
            f"offline, put the files under <dir>/{name}/ and pass data_dir=<dir> "
            f"(CLI: --data-dir) or set {DATA_DIR_ENV}"
        ) from None
    _unpack(archive, target, url)
    return os.path.dirname(target)


def _unpack(archive, target, url):
    """Extracts `archive` into the directory `target`, all or nothing."""
    staging = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        _extract(archive, staging)
        with open(os.path.join(staging, ".complete"), "w") as f:
            f.write(url + "\n")
        if os.path.isdir(target):
            shutil.rmtree(target)
        os.replace(staging, target)
    except DataError:
        raise
    except _EXTRACT_ERRORS as error:
        raise DataError(
            f"could not extract into {target} ({error}); delete the file to download it "
            "again, or pass cache_dir= a writable directory",
            path=archive,
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_dataset(name, split="train", data_dir=None, cache_dir=None):
    """Loads a public data set by name, from a local directory or the network.

    Looks in `data_dir`, then in `$TFLLM_DATA_DIR`, for the layout of a
    prepared data directory (`<dir>/imdb/train.csv`, `<dir>/sst2/dev.tsv`,
    `<dir>/samsum/validation.csv`, `<dir>/dailydialog/train/dialogues_train.txt`,
    `<dir>/spa_eng/spa-eng/spa.txt`; the official archive layouts work too).
    Otherwise downloads the official archive with `keras.utils.get_file` into
    `cache_dir` (default `~/.keras`) and extracts it once.

    Args:
        name: "imdb", "sst2", "samsum", "dailydialog" or "spa_eng".
        split: "train", "validation" or "test" ("validation" is SST-2's
            dev.tsv; IMDB has train/test only; spa_eng also has "all" and is
            split 80/10/10 by a hash of the English sentence).
        data_dir: a directory holding `<name>/`.
        cache_dir: download cache (default `~/.keras`).

    Returns:
        The reader's DataFrame: "text"/"label" (imdb, sst2),
        "dialogue"/"summary" (samsum), "context"/"response" (dailydialog),
        "source"/"target" (spa_eng).

    Raises:
        DataError: unknown name or split, or the data is neither local nor
            downloadable (offline).

    Example:
        >>> train = load_dataset("sst2", "train", data_dir="../shared/data")
    """
    if name not in SPLITS:
        raise DataError(f"unknown data set {name!r}; expected one of {', '.join(SPLITS)}")
    if split not in SPLITS[name]:
        raise DataError(
            f"unknown split {split!r} of {name!r}; expected one of {', '.join(SPLITS[name])}"
        )
    for base in (data_dir, os.environ.get(DATA_DIR_ENV)):
        if base:
            reader = _locate(name, os.path.expanduser(base), split)
            if reader is not None:
                return reader()
            logger.info("%s: no %s/%s here, looking further", base, name, split)
    base = _download(name, cache_dir)
    reader = _locate(name, base, split)
    if reader is None:
        raise DataError(
            f"the downloaded archive has no {split!r} split", path=os.path.join(base, name)
        )
    return reader()


def load_sample(name):
    """Loads a built-in sample data set shipped with tfllm.

    Args:
        name: "sentiment" (text, label: positive/negative/neutral),
            "dialogue" (context, response), "summarization" (dialogue, summary)
            or "translation" (source: English, target: Spanish).

    Returns:
        A DataFrame with the file's two columns, checked for empty values.

    Example:
        >>> load_sample("sentiment").label.unique()
    """
    if name not in SAMPLES:
        raise DataError(f"unknown sample {name!r}; expected one of {', '.join(SAMPLES)}")
    first, second = SAMPLES[name]
    resource = importlib.resources.files("tfllm.data").joinpath("samples", f"{name}.csv")
    with importlib.resources.as_file(resource) as path:
        frame = read_frame(path, format="csv", text_columns=SAMPLES[name])
        if name == "sentiment":
            return select_columns(frame, str(path), {first: first}, label_column=second)
        return select_columns(frame, str(path), {first: first, second: second})
