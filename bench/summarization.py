"""SAMSum summarization from scratch: validation ROUGE next to Lead-3, with training time.

    TFLLM_DATA_DIR=../shared/data python bench/summarization.py [--epochs 4] [--train-limit N]

Trains the summarization app's Transformer on SAMSum train (from
`$TFLLM_DATA_DIR/samsum`, default ../shared/data relative to the repository
root), generates for the validation split and prints ONE JSON line: ROUGE-1/2/L
F1 (rouge-score, stemming) of the model and of Lead-3 on the same rows, the
training time and the settings. Tuning happens on validation only.
"""

import json
import os

import _text_to_text as common


def main(argv=None):
    task = common.app_task("summarization")
    parser = common.make_parser(__doc__, config=task.config, val_limit=None)
    common.add_decoding_arguments(parser, default=["beam"], task=task)
    args = parser.parse_args(argv)

    from tfllm.metrics.generation import lead3_rouge, rouge

    train, val = common.load_splits("samsum", args)
    config = common.config_from_args(args, task.config)
    with common.training(
        config, train.dialogue, train.summary, val.dialogue, val.summary, args.run_dir
    ) as trained:
        generated = common.generate_all(trained, val.dialogue, args, batch_size=64)
    results = [(d, percent(rouge(val.summary, p)), t, p) for d, p, t in generated]
    decoding, scores, generate_seconds, predictions = results[0]
    lead3 = percent(lead3_rouge(val.dialogue, val.summary))
    print(json.dumps({
        **scores,
        **{f"lead3_{key}": value for key, value in lead3.items()},
        "beats_lead3_rouge1": scores["rouge1"] > lead3["rouge1"],
        **common.common_fields(trained, config, train, val, generate_seconds),
        "decoding": decoding,
        "other_decodings": [
            {"decoding": d, **s, "generate_seconds": round(t, 1)} for d, s, t, _ in results[1:]
        ],
        "examples": [{"reference": r, "generated": p} for r, p in list(zip(val.summary, predictions))[:3]],
        "load_average": round(os.getloadavg()[0], 2),
    }))


def percent(scores):
    """ROUGE F1 scores as percentages, rounded to 2 places."""
    return {key: round(100 * scores[key], 2) for key in ("rouge1", "rouge2", "rougeL")}


if __name__ == "__main__":
    main()
