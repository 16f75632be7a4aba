"""LSTM encoder-decoder with Luong attention, the recurrent seq2seq baseline."""

import keras
from keras import ops

from tfllm._validation import check_positive_ints, check_rates
from tfllm.generation import CompiledDecoders
from tfllm.models.seq2seq import Seq2SeqModelMixin


@keras.saving.register_keras_serializable(package="tfllm")
class LSTMSeq2Seq(Seq2SeqModelMixin, keras.Model):
    """LSTM encoder-decoder with dot-product (Luong) attention and `generate()`.

    The encoder's final state starts the decoder; at every step the decoder
    output attends over the encoder outputs, and `tanh(W [output; context])`
    is projected to the vocabulary (Luong et al., 2015). Cached decoding
    carries the LSTM state, so each new token costs one LSTM step.

    Args:
        vocabulary_size: shared source/target vocabulary size.
        encoder_sequence_length: longest source sequence.
        decoder_sequence_length: longest decoder sequence (start id included).
        embedding_dim: token embedding width (default: `hidden_dim`).
        hidden_dim: LSTM units.
        dropout: dropout on embeddings and on the attentional output.
        pad_token_id, start_token_id, end_token_id: special ids.

    Call arguments:
        inputs: dict with "encoder_token_ids" (batch, src_len) and
            "decoder_token_ids" (batch, tgt_len), as for `TransformerSeq2Seq`.
        training: whether dropout is active.

    Returns:
        Logits (batch, tgt_len, vocabulary_size), float32.

    Example:

    ```python
    model = LSTMSeq2Seq(8000, 64, 32, start_token_id=4, end_token_id=5)
    model.compile("adam")
    model.fit(dataset)
    model.generate([[17, 9, 120]])
    ```
    """

    def __init__(
        self,
        vocabulary_size,
        encoder_sequence_length,
        decoder_sequence_length,
        embedding_dim=None,
        hidden_dim=256,
        dropout=0.1,
        pad_token_id=0,
        start_token_id=None,
        end_token_id=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_ints(
            vocabulary_size=vocabulary_size,
            encoder_sequence_length=encoder_sequence_length,
            decoder_sequence_length=decoder_sequence_length,
            hidden_dim=hidden_dim,
        )
        check_rates(dropout=dropout)
        self.vocabulary_size = int(vocabulary_size)
        self.encoder_sequence_length = int(encoder_sequence_length)
        self.decoder_sequence_length = int(decoder_sequence_length)
        self.embedding_dim = None if embedding_dim is None else int(embedding_dim)
        self.hidden_dim = int(hidden_dim)
        self.dropout = float(dropout)
        self.pad_token_id = int(pad_token_id)
        self.start_token_id = None if start_token_id is None else int(start_token_id)
        self.end_token_id = None if end_token_id is None else int(end_token_id)

        dtype = self.dtype_policy
        self.embedding = keras.layers.Embedding(
            self.vocabulary_size, self.embedding_dim or self.hidden_dim, dtype=dtype, name="embedding"
        )
        self.embedding_dropout = keras.layers.Dropout(self.dropout, dtype=dtype, name="embedding_dropout")
        self.encoder = keras.layers.LSTM(
            self.hidden_dim, return_sequences=True, return_state=True, dtype=dtype, name="encoder"
        )
        self.decoder = keras.layers.LSTM(
            self.hidden_dim, return_sequences=True, return_state=True, dtype=dtype, name="decoder"
        )
        self.attention = keras.layers.Attention(dtype=dtype, name="attention")
        self.combine = keras.layers.Dense(
            self.hidden_dim, activation="tanh", dtype=dtype, name="combine"
        )
        self.output_dropout = keras.layers.Dropout(self.dropout, dtype=dtype, name="output_dropout")
        self.output_dense = keras.layers.Dense(self.vocabulary_size, dtype=dtype, name="output_dense")
        self._decoders = CompiledDecoders()

    def build(self, input_shape=None):
        embedded = (None, None, self.embedding_dim or self.hidden_dim)
        hidden = (None, None, self.hidden_dim)
        self.embedding.build((None, None))
        self.encoder.build(embedded)
        self.decoder.build(embedded)
        self.attention.build([hidden, hidden])
        self.combine.build((None, None, 2 * self.hidden_dim))
        self.output_dense.build(hidden)
        self.built = True

    def encode(self, encoder_token_ids, encoder_padding_mask=None, training=None):
        """Encoder outputs (batch, src_len, hidden) and final state [h, c]."""
        if encoder_padding_mask is None:
            encoder_padding_mask = ops.not_equal(encoder_token_ids, self.pad_token_id)
        x = self.embedding_dropout(self.embedding(encoder_token_ids), training=training)
        outputs, h, c = self.encoder(x, mask=encoder_padding_mask, training=training)
        return outputs, [h, c]

    def _decode(self, decoder_token_ids, state, encoded, encoder_padding_mask, training=None,
                return_attention_scores=False):
        x = self.embedding_dropout(self.embedding(decoder_token_ids), training=training)
        outputs, h, c = self.decoder(x, initial_state=state, training=training)
        context = self.attention(
            [outputs, encoded],
            mask=[None, ops.cast(encoder_padding_mask, "bool")],
            return_attention_scores=return_attention_scores,
            training=training,
        )
        if return_attention_scores:
            context, scores = context
        combined = self.combine(ops.concatenate([outputs, context], axis=-1))
        logits = self.output_dense(self.output_dropout(combined, training=training))
        if return_attention_scores:
            return ops.cast(logits, "float32"), [h, c], scores
        return ops.cast(logits, "float32"), [h, c]

    def cross_attention_scores(self, encoder_token_ids, decoder_token_ids):
        """The attention probabilities over the source, as `TransformerSeq2Seq.cross_attention_scores`.

        Returns:
            A one-element list (one attention, one head): float32
            (batch, 1, tgt_len, src_len).
        """
        encoder_padding_mask = ops.not_equal(encoder_token_ids, self.pad_token_id)
        encoded, state = self.encode(encoder_token_ids, encoder_padding_mask)
        _, _, scores = self._decode(
            decoder_token_ids, state, encoded, encoder_padding_mask, return_attention_scores=True
        )
        return [ops.cast(scores, "float32")[:, None]]

    def call(self, inputs, training=None):
        encoder_token_ids = inputs["encoder_token_ids"]
        encoder_padding_mask = inputs.get("encoder_padding_mask")
        if encoder_padding_mask is None:
            encoder_padding_mask = ops.not_equal(encoder_token_ids, self.pad_token_id)
        encoded, state = self.encode(encoder_token_ids, encoder_padding_mask, training=training)
        logits, _ = self._decode(
            inputs["decoder_token_ids"], state, encoded, encoder_padding_mask, training=training
        )
        return logits

    def generate_step(
        self, encoder_token_ids, decoder_token_ids, max_length,
        sampler="greedy", stop_token_ids=(), use_cache=True,
    ):
        """Tensor-in, tensor-out decoding; see `TransformerSeq2Seq.generate_step`."""
        encoder_token_ids = ops.cast(encoder_token_ids, "int32")
        decoder_token_ids = ops.cast(decoder_token_ids, "int32")
        encoder_padding_mask = ops.not_equal(encoder_token_ids, self.pad_token_id)
        encoded, state = self.encode(encoder_token_ids, encoder_padding_mask)
        context = (encoded, encoder_padding_mask)  # Fixed while decoding.
        if use_cache:
            # The cache is the decoder state after the tokens before `index`.
            cache = (state[0], state[1])

            def next(tokens, cache, index, context):
                step = ops.slice(tokens, [0, index - 1], [ops.shape(tokens)[0], 1])
                logits, (h, c) = self._decode(step, list(cache), *context)
                return logits[:, 0, :], (h, c)

        else:
            cache, context = (), (*context, state[0], state[1])

            def next(tokens, cache, index, context):
                encoded, mask, h, c = context
                # The LSTM is causal: later (not yet generated) positions
                # cannot change the output at `index - 1`.
                logits, _ = self._decode(tokens, [h, c], encoded, mask)
                return ops.take(logits, index - 1, axis=1), cache

        return self.decode_targets(next, decoder_token_ids, cache, context, sampler, stop_token_ids, max_length)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "encoder_sequence_length": self.encoder_sequence_length,
                "decoder_sequence_length": self.decoder_sequence_length,
                "embedding_dim": self.embedding_dim,
                "hidden_dim": self.hidden_dim,
                "dropout": self.dropout,
                "pad_token_id": self.pad_token_id,
                "start_token_id": self.start_token_id,
                "end_token_id": self.end_token_id,
            }
        )
        return config
