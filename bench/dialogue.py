"""DailyDialog response generation from scratch: perplexity, BLEU-1/2, distinct-1/2.

    TFLLM_DATA_DIR=../shared/data python bench/dialogue.py [--epochs 3] [--train-limit N]

Trains the dialogue app's Transformer on DailyDialog train pairs (one turn of
context, `$TFLLM_DATA_DIR/dailydialog`), then prints ONE JSON line with
validation perplexity (teacher forced, end token included), BLEU-1/2 (NLTK
sentence BLEU, smoothing method 1, averaged) and distinct-1/2 of the generated
responses (greedy by default; `--decoding greedy top_p beam` scores several,
the first is the headline), plus the same BLEU for a constant "i don't know ."
baseline and the training time.
"""

import json
import os

import _text_to_text as common


def main(argv=None):
    task = common.app_task("dialogue")
    parser = common.make_parser(__doc__, config=task.config, val_limit=2000)
    common.add_decoding_arguments(parser, default=["greedy"], task=task)
    args = parser.parse_args(argv)

    from tfllm.tasks import text_generator
    from tfllm.metrics.generation import BLEU_SMOOTHING, bleu, response_scores

    train, val = common.load_splits("dailydialog", args)
    config = common.config_from_args(args, task.config)
    with common.training(config, train.context, train.response, val.context, val.response, args.run_dir) as trained:
        model, tokenizer = trained.model, trained.tokenizer
        ppl = text_generator.model_perplexity(model, tokenizer, val.context, val.response)
        generated = common.generate_all(trained, val.context, args, batch_size=128)
    references = list(val.response)
    constant = ["i don't know ."] * len(references)

    def scores(predictions):
        return response_scores(references, predictions)

    decoding, predictions, generate_seconds = generated[0]
    print(json.dumps({
        "perplexity": round(ppl, 2),
        **scores(predictions),
        "constant_reply_bleu1": round(bleu(references, constant, 1), 4),
        "constant_reply_bleu2": round(bleu(references, constant, 2), 4),
        "bleu_smoothing": BLEU_SMOOTHING,
        **common.common_fields(trained, config, train, val, generate_seconds),
        "decoding": decoding,
        "other_decodings": [
            {"decoding": d, **scores(p), "generate_seconds": round(t, 1)} for d, p, t in generated[1:]
        ],
        "examples": [
            {"context": c, "reference": r, "generated": p}
            for c, r, p in list(zip(val.context, references, predictions))[:3]
        ],
        "load_average": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
