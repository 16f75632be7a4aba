"""NER benchmark: the app's default recipe on CoNLL-2003, scored on `valid.txt` next to the majority-tag baseline.

Trains exactly as `apps/ner.py train --data conll2003/train.txt` does (5% of
the training sentences held out for early stopping, seed 0, export), then
scores the export on the official development set `conll2003/valid.txt`
(3,250 sentences) with entity-level micro precision / recall / F1 (seqeval),
the same model decoded word by word without the IOB2 constraints, and, in the same run, the majority-tag-per-word baseline learned on the
same training sentences. Prints one JSON line.

Data come from $TFLLM_DATA_DIR (default: ../shared/data from the repository
root). CoNLL-2003 is for research use only; it is read in place, never copied.

    python bench/ner.py [--epochs N] [--time-budget SECONDS] [--option units=200]
"""

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_DIR = os.path.join(REPO_ROOT, "..", "shared", "data")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sentiment import time_budget  # noqa: E402


def _load_app():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ner_app", os.path.join(REPO_ROOT, "apps", "ner.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: the app's")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="LSTMTagger option (e.g. units=200); repeatable")
    parser.add_argument("--time-budget", type=float, default=22 * 60, help="seconds of training at most")
    args = parser.parse_args(argv)
    data_dir = os.path.join(os.environ.get("TFLLM_DATA_DIR", DEFAULT_DATA_DIR), "conll2003")
    if not os.path.isdir(data_dir):
        print(f"bench/ner.py: no data directory {data_dir} (set TFLLM_DATA_DIR)", file=sys.stderr)
        return 2
    from tfllm.data.conll import read_conll
    from tfllm.metrics.entities import entity_report
    from tfllm.tasks.tagger_export import TaggerExport, tag_sentences

    app = _load_app()
    workdir = tempfile.mkdtemp(prefix="bench-ner-")
    config = app.TASK.config(data=os.path.join(data_dir, "train.txt"), seed=0, verbose=2,
                             export_dir=os.path.join(workdir, "export"), run_dir=os.path.join(workdir, "run"))
    for name in ("epochs", "batch_size", "learning_rate"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    config.model_options = {key: json.loads(value) for key, value in (o.split("=", 1) for o in args.option)}
    budget = time_budget(args.time_budget)
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # Keras' progress lines; stdout keeps the JSON line.
        result = app.TASK.train(config, callbacks=[budget], log=lambda m: print(m, file=sys.stderr))
        export = result.pop("export")
        train = app.TASK.load_splits(config)[0]
        valid = read_conll(os.path.join(data_dir, "valid.txt"))
        report = app.TASK.evaluate(result["export_path"], valid, baseline=train)
        # The same model read word by word (each word's most probable tag), without the IOB2 constraints.
        argmax = TaggerExport(export.featurizer, export.model, export.tags, constrained=False)
        unconstrained = entity_report(valid.tags, tag_sentences(argmax, valid.words))
    shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({
        "bench": "ner",
        "dataset": "conll2003",
        "eval_split": "valid.txt (3,250 sentences)",
        "model": result["model"],
        "options": {"epochs": config.epochs, "batch_size": config.batch_size,
                    "learning_rate": config.learning_rate, **config.model_options},
        "train_sentences": result["train_sentences"],
        "stop_sentences": result["val_sentences"],
        "f1": report["f1"],
        "precision": report["precision"],
        "recall": report["recall"],
        "per_type_f1": {name: row["f1"] for name, row in report["per_type"].items()},
        "unconstrained_f1": unconstrained["f1"],
        "baseline": {"name": "majority_tag_per_word", "f1": report["baseline_f1"]},
        "epochs_run": result["epochs_run"],
        "time_budget_hit": budget.stopped_early,
        "train_seconds": result["train_seconds"],
        "wall_seconds": round(time.perf_counter() - started, 1),
        "eval_sentences_per_second": report["sentences_per_second"],
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
