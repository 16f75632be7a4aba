"""A recurrent span reader for small training sets: DrQA's document reader on BERT windows.

Chen et al. (2017, "Reading Wikipedia to Answer Open-Domain Questions")
encode the paragraph with a BiLSTM over features that carry the question --
an exact-match flag and an aligned question embedding (each paragraph token
attends to the question's embeddings) -- encode the question with a second
BiLSTM pooled to one vector, and score starts and ends bilinearly against it.
Recurrence and explicit matching features are the inductive bias that lets a
reader learn from a few thousand questions, where a Transformer trained from
scratch memorises them (docs/question_answering.md).

`SpanReader` reads the same inputs and returns the same logits as
`SpanPredictor`, so windows, targets, the loss, the best-span search and the
export are shared: `[CLS] question [SEP] context [SEP]` with segment ids 0
(question part), 1 (context) and 2 (context words the question holds).
"""

import keras
from keras import ops

from tfllm.models.span_predictor import _MASKED, mask_span_logits


@keras.saving.register_keras_serializable(package="tfllm")
class SpanReader(keras.Model):
    """Start and end logits of an answer span from BiLSTM encodings of a window.

    Args:
        vocabulary_size: token ids in `[0, vocabulary_size)`; 0 is padding.
        embedding_dim: width of the token embedding.
        hidden_dim: width of every BiLSTM's output (both directions together; even).
        num_layers: stacked BiLSTMs over the window.
        max_query_length: question tokens in a window; the question part
            (`[CLS]`, question, `[SEP]`) is read from the first
            `max_query_length + 2` positions.
        dropout: dropout rate on the embeddings and between the layers.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: dict of `token_ids`, `segment_ids` and `padding_mask`, int `(batch, length)`.
        training: whether dropout is active.

    Returns:
        float32 `(batch, length, 2)`: start logits `[..., 0]`, end logits
        `[..., 1]`; -1e4 outside the context and `[CLS]` (as `SpanPredictor`).

    Example:

    ```python
    model = SpanReader(vocabulary_size=8000, max_query_length=32)
    model.compile("adam", loss=span_loss)
    model.fit(windows, positions)  # positions: int (batch, 2), start and end token
    ```
    """

    def __init__(self, vocabulary_size, embedding_dim=128, hidden_dim=128, num_layers=3, max_query_length=32,
                 dropout=0.3, **kwargs):
        super().__init__(**kwargs)
        if hidden_dim % 2:
            raise ValueError(f"hidden_dim must be even (two directions). Received: hidden_dim={hidden_dim}")
        self.vocabulary_size, self.embedding_dim, self.hidden_dim = vocabulary_size, embedding_dim, hidden_dim
        self.num_layers, self.max_query_length, self.dropout = num_layers, max_query_length, float(dropout)
        self.token_embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, name="token_embedding")
        self.align_dense = keras.layers.Dense(embedding_dim, activation="relu", name="align_dense")
        self.embedding_dropout = keras.layers.Dropout(self.dropout, name="embedding_dropout")
        self.context_layers = [self._bilstm(f"context_lstm_{index}") for index in range(num_layers)]
        self.question_lstm = self._bilstm("question_lstm")
        self.layer_dropouts = [keras.layers.Dropout(self.dropout, name=f"layer_dropout_{index}")
                               for index in range(num_layers)]
        self.question_weight = keras.layers.Dense(1, use_bias=False, name="question_weight")
        self.start_dense = keras.layers.Dense(hidden_dim, use_bias=False, name="start_bilinear")
        self.end_dense = keras.layers.Dense(hidden_dim, use_bias=False, name="end_bilinear")

    def _bilstm(self, name):
        return keras.layers.Bidirectional(keras.layers.LSTM(self.hidden_dim // 2, return_sequences=True), name=name)

    def call(self, inputs, training=None):
        token_ids, segment_ids = inputs["token_ids"], inputs["segment_ids"]
        padding = ops.not_equal(inputs["padding_mask"], 0)
        embedded = self.embedding_dropout(self.token_embedding(token_ids), training=training)
        query_length = self.max_query_length + 2
        question = ops.logical_and(padding, ops.equal(segment_ids, 0))[:, :query_length]
        question_embedded = embedded[:, :query_length]

        # Aligned question embedding: each token attends to the question's tokens.
        projected = self.align_dense(embedded)
        scores = ops.einsum("bid,bjd->bij", projected, projected[:, :query_length])
        scores = ops.where(question[:, None, :], scores, _MASKED)
        aligned = ops.einsum("bij,bjd->bid", ops.softmax(scores, axis=-1), question_embedded)
        match = ops.cast(ops.equal(segment_ids, 2), embedded.dtype)[..., None]
        in_context = ops.cast(ops.greater_equal(segment_ids, 1), embedded.dtype)[..., None]
        hidden = ops.concatenate([embedded, aligned, match, in_context], axis=-1)
        for lstm, dropout in zip(self.context_layers, self.layer_dropouts):
            hidden = dropout(lstm(hidden, mask=padding, training=training), training=training)

        # The question as one vector: a learned weighting of its BiLSTM states.
        encoded = self.question_lstm(question_embedded, mask=question, training=training)
        weights = ops.where(question, ops.squeeze(self.question_weight(encoded), -1), _MASKED)
        summary = ops.einsum("bj,bjd->bd", ops.softmax(weights, axis=-1), encoded)

        start = ops.einsum("bld,bd->bl", self.start_dense(hidden), summary)
        end = ops.einsum("bld,bd->bl", self.end_dense(hidden), summary)
        return mask_span_logits(ops.stack([start, end], axis=-1), segment_ids, inputs["padding_mask"])

    def compile_from_config(self, config):
        """Leaves a loaded model uncompiled, as `SpanPredictor` does (its training optimizer,
        `ScaledAdam`, does not rebuild from a config); compile it again to train."""

    def get_config(self):
        config = super().get_config()
        config.update({"vocabulary_size": self.vocabulary_size, "embedding_dim": self.embedding_dim,
                       "hidden_dim": self.hidden_dim, "num_layers": self.num_layers,
                       "max_query_length": self.max_query_length, "dropout": self.dropout})
        return config
