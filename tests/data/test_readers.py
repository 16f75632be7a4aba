"""Readers of public data set formats, load_dataset and load_sample, on tiny fixture files."""

import json
import zipfile

import pytest

from tfllm.data import (
    DataError,
    load_dataset,
    load_sample,
    read_dailydialog,
    read_imdb,
    read_samsum,
    read_sst2,
    read_translation_pairs,
)
from tfllm.data import datasets as datasets_module

SST2_TRAIN = "sentence\tlabel\nhide new secretions from the parental units \t0\n\" a warm movie \t1\n"
SAMSUM_CSV = (
    "id,dialogue,summary\n"
    '13818513,"Amanda: I baked cookies. Do you want some?\nJerry: Sure!",'
    "Amanda baked cookies and will bring Jerry some.\n"
    '13728867,"Olivia: Who are you voting for?\nOlivia: ""Liberals"" as always.",'
    "Olivia votes for liberals.\n"
)
DIALOGUES = (
    "Say , Jim , how about a beer ? __eou__ You know that is tempting . __eou__ "
    "What do you mean ? __eou__\n"
    "Can you do push-ups ? __eou__ Of course I can . __eou__\n"
)
SPA = "Go.\tVe.\nGo.\tVete.\nI am hungry.\tTengo hambre.\tCC-BY 2.0 (France) Attribution\n"


def write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_read_sst2_strips_trailing_space_and_keeps_quotes(tmp_path):
    frame = read_sst2(write(tmp_path / "train.tsv", SST2_TRAIN))
    assert frame.text.tolist() == ["hide new secretions from the parental units", '" a warm movie']
    assert frame.label.tolist() == [0, 1]
    test = read_sst2(write(tmp_path / "test.tsv", "index\tsentence\n0\tuneasy mishmash \n"))
    assert test.columns.tolist() == ["text"] and test.text.tolist() == ["uneasy mishmash"]


def test_read_imdb_tree_and_csv_agree(tmp_path):
    root = tmp_path / "aclImdb"
    write(root / "train" / "pos" / "10_9.txt", "Brilliant.<br /><br />Loved it.")
    write(root / "train" / "pos" / "2_7.txt", "Good fun.")
    write(root / "train" / "neg" / "0_1.txt", "Awful.")
    write(root / "train" / "urls_pos.txt", "http://example.com\n")
    tree = read_imdb(root)
    assert tree.text.tolist() == ["Good fun.", "Brilliant.  Loved it.", "Awful."]
    assert tree.label.tolist() == [1, 1, 0]
    assert read_imdb(root / "train").equals(tree)
    csv = write(
        tmp_path / "train.csv",
        'id,rating,text,label\ntrain_pos_2,7,Good fun.,1\ntrain_pos_10,9,"Brilliant.<br /><br />Loved it.",1\n'
        "train_neg_0,1,Awful.,0\n",
    )
    assert read_imdb(csv).equals(read_imdb(root).iloc[[0, 1, 2]].reset_index(drop=True))
    assert "<br />" in read_imdb(csv, strip_html=False).text[1]
    with pytest.raises(DataError, match="not an aclImdb directory"):
        read_imdb(tmp_path / "aclImdb" / "train" / "pos")


def test_read_samsum_csv_and_json(tmp_path):
    frame = read_samsum(write(tmp_path / "train.csv", SAMSUM_CSV))
    assert frame.columns.tolist() == ["dialogue", "summary"]
    assert frame.dialogue[0] == "Amanda: I baked cookies. Do you want some?\nJerry: Sure!"
    assert frame.dialogue[1].endswith('"Liberals" as always.')
    records = [
        {"id": "1", "summary": "A greets B.", "dialogue": "A: hi\r\nB: hello"},
        {"id": "2", "summary": "Nothing.", "dialogue": ""},
    ]
    json_frame = read_samsum(write(tmp_path / "train.json", json.dumps(records)))
    assert json_frame.dialogue.tolist() == ["A: hi\nB: hello"]
    with pytest.raises(DataError, match="no text column 'summary'"):
        read_samsum(write(tmp_path / "bad.csv", "id,dialogue\n1,A: hi\n"))


def test_read_dailydialog_pairs_and_context_turns(tmp_path):
    path = write(tmp_path / "train" / "dialogues_train.txt", DIALOGUES)
    frame = read_dailydialog(path)
    assert frame.context.tolist() == [
        "Say , Jim , how about a beer ?",
        "You know that is tempting .",
        "Can you do push-ups ?",
    ]
    assert frame.response.tolist() == [
        "You know that is tempting .",
        "What do you mean ?",
        "Of course I can .",
    ]
    assert frame.dialogue_id.tolist() == [0, 0, 1]
    assert read_dailydialog(tmp_path).equals(frame)  # root holding train/
    longer = read_dailydialog(path, context_turns=2, turn_separator=" | ")
    assert longer.context[1] == "Say , Jim , how about a beer ? | You know that is tempting ."
    bad = write(tmp_path / "bad.txt", DIALOGUES + "Only one turn __eou__\n")
    with pytest.raises(DataError, match=r"bad.txt: row 3: a dialogue needs at least 2"):
        read_dailydialog(bad)


def test_read_dailydialog_in_another_encoding_or_with_a_bad_byte(tmp_path):
    utf16 = tmp_path / "dialogues_train.txt"
    utf16.write_text(DIALOGUES.replace("beer", "caf\xe9"), encoding="utf-16")
    frame = read_dailydialog(utf16, encoding="utf-16")
    assert frame.context[0] == "Say , Jim , how about a caf\xe9 ?" and len(frame) == 3
    latin = write(tmp_path / "latin.txt", DIALOGUES.encode() + "Caf\xe9 ? __eou__ Oui . __eou__\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.txt: line 3: not valid utf-8 \(byte 0xe9\); pass the file's"):
        read_dailydialog(latin)
    assert read_dailydialog(latin, encoding="latin-1").context.tolist()[-1] == "Caf\xe9 ?"


def test_read_translation_pairs(tmp_path):
    frame = read_translation_pairs(write(tmp_path / "spa.txt", SPA))
    assert frame.source.tolist() == ["Go.", "Go.", "I am hungry."]
    assert frame.target.tolist() == ["Ve.", "Vete.", "Tengo hambre."]
    bad = write(tmp_path / "bad.txt", "Go.\tVe.\nno tab here\n")
    with pytest.raises(DataError, match=r"bad.txt: row 2: expected source<TAB>target"):
        read_translation_pairs(bad)
    with pytest.raises(DataError, match="no such file"):
        read_translation_pairs(tmp_path / "missing.txt")


def test_translation_pairs_read_like_tables_compressed_or_in_another_encoding(tmp_path):
    import gzip

    packed = tmp_path / "spa.txt.gz"
    packed.write_bytes(gzip.compress(SPA.encode("utf-8")))
    assert read_translation_pairs(packed).target.tolist() == ["Ve.", "Vete.", "Tengo hambre."]
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Go.\tVe.\nCoffee.\tCaf\u00e9.\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.txt: line 2: not valid utf-8 \(byte 0xe9\).*--encoding cp1252"):
        read_translation_pairs(latin)
    assert read_translation_pairs(latin, encoding="cp1252").target.tolist() == ["Ve.", "Caf\u00e9."]


@pytest.fixture()
def data_dir(tmp_path):
    root = tmp_path / "data"
    write(root / "sst2" / "train.tsv", SST2_TRAIN)
    write(root / "sst2" / "dev.tsv", "sentence\tlabel\nit 's good \t1\n")
    write(root / "imdb" / "train.csv", "id,rating,text,label\ntrain_pos_0,9,Nice.,1\n")
    write(root / "samsum" / "validation.csv", SAMSUM_CSV)
    write(root / "dailydialog" / "validation" / "dialogues_validation.txt", DIALOGUES)
    lines = "".join(f"Sentence {i}.\tFrase {i}.\n" for i in range(200))
    write(root / "spa_eng" / "spa-eng" / "spa.txt", lines)
    return root


def test_load_dataset_from_data_dir_and_env(data_dir, monkeypatch):
    assert load_dataset("sst2", "validation", data_dir=data_dir).text.tolist() == ["it 's good"]
    monkeypatch.setenv("TFLLM_DATA_DIR", str(data_dir))
    assert load_dataset("imdb").text.tolist() == ["Nice."]
    assert len(load_dataset("samsum", "validation")) == 2
    assert len(load_dataset("dailydialog", "validation")) == 3
    parts = {split: load_dataset("spa_eng", split) for split in ("train", "validation", "test")}
    assert sum(len(p) for p in parts.values()) == 200
    assert 120 < len(parts["train"]) < 185
    assert set(parts["train"].source).isdisjoint(parts["test"].source)
    assert load_dataset("spa_eng", "train").equals(parts["train"])  # stable split


def test_load_dataset_rejects_unknown_names(data_dir):
    with pytest.raises(DataError, match="unknown data set 'mnist'; expected one of imdb"):
        load_dataset("mnist", data_dir=data_dir)
    with pytest.raises(DataError, match="unknown split 'validation' of 'imdb'"):
        load_dataset("imdb", "validation", data_dir=data_dir)


def test_load_dataset_offline_gives_clear_error(tmp_path, monkeypatch):
    import keras

    monkeypatch.delenv("TFLLM_DATA_DIR", raising=False)

    def offline_get_file(fname=None, origin=None, **kwargs):
        # What keras.utils.get_file raises when DNS fails on an offline machine.
        raise Exception(
            f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure in "
            "name resolution"
        )

    monkeypatch.setattr(keras.utils, "get_file", offline_get_file)
    with pytest.raises(DataError) as info:
        load_dataset("sst2", data_dir=tmp_path / "empty", cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "could not download 'sst2' from https://dl.fbaipublicfiles.com/glue/data/SST-2.zip" in message
    assert "Temporary failure in name resolution" in message
    assert "data_dir=" in message and "--data-dir" in message and "TFLLM_DATA_DIR" in message
    assert "\n" not in message


def test_load_dataset_downloads_and_extracts_once(tmp_path, monkeypatch):
    monkeypatch.delenv("TFLLM_DATA_DIR", raising=False)
    archive = tmp_path / "spa-eng.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("spa-eng/spa.txt", SPA)
    monkeypatch.setitem(datasets_module.URLS, "spa_eng", archive.as_uri())
    cache = tmp_path / "cache"
    frame = load_dataset("spa_eng", "all", cache_dir=cache)
    assert frame.target.tolist() == ["Ve.", "Vete.", "Tengo hambre."]
    archive.unlink()  # a second load must use the extracted copy
    assert load_dataset("spa_eng", "all", cache_dir=cache).equals(frame)

    corrupt = tmp_path / "SST-2.zip"
    corrupt.write_bytes(b"<html>captive portal</html>")
    monkeypatch.setitem(datasets_module.URLS, "sst2", corrupt.as_uri())
    with pytest.raises(DataError, match="SST-2.zip: downloaded file is not an archive"):
        load_dataset("sst2", cache_dir=cache)
    assert not (cache / "datasets" / "tfllm" / "sst2").exists()


@pytest.mark.parametrize(
    "name,columns",
    [
        ("sentiment", ["text", "label"]),
        ("dialogue", ["context", "response"]),
        ("summarization", ["dialogue", "summary"]),
    ],
)
def test_load_sample(name, columns):
    frame = load_sample(name)
    assert frame.columns.tolist() == columns
    assert len(frame) > 0
    for column in columns:
        assert frame[column].astype(str).str.strip().ne("").all()
    if name == "sentiment":
        assert set(frame.label) <= {"positive", "negative", "neutral"}


def test_load_sample_unknown_name():
    with pytest.raises(DataError, match="unknown sample 'news'; expected one of sentiment"):
        load_sample("news")
