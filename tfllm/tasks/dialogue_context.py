"""Multi-turn dialogue context: the last N turns, joined with a separator token.

Training pairs, evaluation pairs, `chat` and the export all see a context as
the same string: the last `context_turns` utterances joined by
`TURN_SEPARATOR`, whose "[SEP]" text-to-text tokenizers map to the reserved
id (WordPiece drops newlines, so a plain line break would leave the model no
trace of where a turn ends).
"""

import pandas as pd

TURN_SEPARATOR = " [SEP] "


def join_turns(turns, context_turns):
    """The context string of the last `context_turns` of `turns` (oldest first)."""
    if context_turns < 1:
        raise ValueError(f"context_turns must be >= 1. Received: context_turns={context_turns}")
    return TURN_SEPARATOR.join(str(turn).strip() for turn in list(turns)[-context_turns:])


def context_pairs(frame, context_turns):
    """Re-pairs single-turn dialogue pairs so each context holds the last `context_turns` turns.

    Args:
        frame: pairs as `tfllm.data.read_dailydialog` returns them with its
            default one turn of context: "context", "response" and
            "dialogue_id", each dialogue's pairs consecutive and in order.
        context_turns: turns of context (>= 1; fewer at a dialogue's start).

    Returns:
        A frame with a row per response ("context", "response",
        "dialogue_id"), dialogues in order of first appearance, contexts
        joined with `TURN_SEPARATOR`.
    """
    columns = {"context": [], "response": [], "dialogue_id": []}
    for dialogue_id, dialogue in frame.groupby("dialogue_id", sort=False):
        # Turn 0 is the first pair's context; turn i (i >= 1) is pair i - 1's response.
        turns = [dialogue.context.iloc[0], *dialogue.response]
        columns["context"].extend(join_turns(turns[:i], context_turns) for i in range(1, len(turns)))
        columns["response"].extend(dialogue.response)
        columns["dialogue_id"].extend([dialogue_id] * len(dialogue))
    return pd.DataFrame(columns)
