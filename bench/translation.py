"""English -> Spanish from scratch: validation BLEU and chrF next to copying the source, with training time.

    TFLLM_DATA_DIR=../shared/data python bench/translation.py [--epochs 4] [--train-limit N]

Trains the translation app's Transformer (its `train` defaults) on the spa_eng
train split (`$TFLLM_DATA_DIR/spa_eng/spa-eng/spa.txt`, default ../shared/data
relative to the repository root; 80/10/10 by a hash of the English sentence,
so no English sentence is in two splits), translates the validation split and
prints ONE JSON line: sacrebleu corpus BLEU and chrF (13a tokenization, cased)
of the model and of the copy-the-source baseline on the same rows, the
training time and the settings. The file is ordered by sentence length, so
`--train-limit` keeps the shortest pairs and `--val-limit` scores a seeded
random sample of the validation split rather than its first rows.
"""

import json
import os

import _text_to_text as common


def main(argv=None):
    task = common.app_task("translation")
    parser = common.make_parser(__doc__, config=task.config, val_limit=None)
    common.add_decoding_arguments(parser, default=[task.decoding], task=task)
    parser.add_argument("--reverse", action="store_true", help="Spanish -> English")
    args = parser.parse_args(argv)

    from tfllm.metrics.generation import corpus_bleu_chrf

    val_limit, args.val_limit = args.val_limit, None
    train, val = common.load_splits("spa_eng", args)
    if val_limit:
        val = val.sample(n=min(val_limit, len(val)), random_state=0).reset_index(drop=True)
    if args.reverse:
        train, val = (frame.rename(columns={"source": "target", "target": "source"}) for frame in (train, val))
    config = common.config_from_args(args, task.config)
    with common.training(config, train.source, train.target, val.source, val.target, args.run_dir) as trained:
        generated = common.generate_all(trained, val.source, args, batch_size=128)
    results = [(d, rounded(corpus_bleu_chrf(val.target, p)), t, p) for d, p, t in generated]
    decoding, scores, generate_seconds, predictions = results[0]
    copied = rounded(corpus_bleu_chrf(val.target, val.source))
    print(json.dumps({
        **scores,
        "copy_source_bleu": copied["bleu"],
        "copy_source_chrf": copied["chrf"],
        "goal_bleu_40_met": scores["bleu"] >= 40,
        "direction": "es-en" if args.reverse else "en-es",
        **common.common_fields(trained, config, train, val, generate_seconds),
        "decoding": decoding,
        "other_decodings": [
            {"decoding": d, **s, "generate_seconds": round(t, 1)} for d, s, t, _ in results[1:]
        ],
        "examples": [
            {"source": s, "reference": r, "generated": p}
            for s, r, p in list(zip(val.source, val.target, predictions))[:5]
        ],
        "load_average": round(os.getloadavg()[0], 2),
    }, ensure_ascii=False))


def rounded(scores):
    return {key: round(value, 2) for key, value in scores.items()}


if __name__ == "__main__":
    main()
