"""Entity-level precision, recall and F1 as seqeval computes them, and the majority-tag baseline."""

import collections


def entity_report(true_tags, predicted_tags):
    """Micro precision / recall / F1 over entities and the same per type (seqeval, conlleval rules).

    An entity counts only when its type and both boundaries match. Tags are
    IOB2 per sentence; as conlleval does, an `I-X` after `O` starts an entity.

    Args:
        true_tags, predicted_tags: one list of tags per sentence, pairwise
            of equal length.

    Returns:
        `{"precision", "recall", "f1", "entities", "predicted_entities",
        "per_type": {type: {"precision", "recall", "f1", "support"}}}` (0-1 scale).
    """
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    from seqeval.metrics.sequence_labeling import get_entities

    if len(true_tags) != len(predicted_tags):
        raise ValueError(f"{len(true_tags)} true sentences but {len(predicted_tags)} predicted")
    for index, (true, predicted) in enumerate(zip(true_tags, predicted_tags)):
        if len(true) != len(predicted):
            raise ValueError(f"sentence {index}: {len(true)} true tags but {len(predicted)} predicted")
    true_tags, predicted_tags = [list(t) for t in true_tags], [list(p) for p in predicted_tags]
    per_type = {}
    if any(tag != "O" for tags in true_tags + predicted_tags for tag in tags):
        table = classification_report(true_tags, predicted_tags, output_dict=True, zero_division=0)
        per_type = {
            name: {
                "precision": round(float(row["precision"]), 4),
                "recall": round(float(row["recall"]), 4),
                "f1": round(float(row["f1-score"]), 4),
                "support": int(row["support"]),
            }
            for name, row in table.items()
            if not name.endswith(" avg")
        }
    options = {"zero_division": 0}
    return {
        "precision": round(float(precision_score(true_tags, predicted_tags, **options)), 4),
        "recall": round(float(recall_score(true_tags, predicted_tags, **options)), 4),
        "f1": round(float(f1_score(true_tags, predicted_tags, **options)), 4),
        "entities": len(get_entities(true_tags)),
        "predicted_entities": len(get_entities(predicted_tags)),
        "per_type": per_type,
    }


def majority_tags(train_words, train_tags, words):
    """Tags each word with the tag it had most often in training (`O` for unseen words).

    The per-word baseline of NER: it knows which words are names, not where
    one name ends and the next begins.
    """
    counts = collections.defaultdict(collections.Counter)
    for sentence_words, sentence_tags in zip(train_words, train_tags):
        for word, tag in zip(sentence_words, sentence_tags):
            counts[word][tag] += 1
    best = {word: tags.most_common(1)[0][0] for word, tags in counts.items()}
    return [[best.get(word, "O") for word in sentence] for sentence in words]
