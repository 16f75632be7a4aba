"""Encoder-decoder Transformer with cached generation."""

import keras
from keras import ops

from tfllm._validation import check_divisible, check_positive_ints, check_rates
from tfllm.generation import CompiledDecoders
from tfllm.layers import TokenAndPositionEmbedding, TransformerDecoderBlock, TransformerEncoderBlock
from tfllm.models.seq2seq import Seq2SeqModelMixin


@keras.saving.register_keras_serializable(package="tfllm")
class TransformerSeq2Seq(Seq2SeqModelMixin, keras.Model):
    """Encoder-decoder Transformer (Vaswani et al., 2017) with `generate()`.

    Args:
        vocabulary_size: source vocabulary size (and target size unless
            `target_vocabulary_size` is given).
        encoder_sequence_length: longest source sequence.
        decoder_sequence_length: longest decoder sequence (start id included).
        num_encoder_layers: encoder blocks.
        num_decoder_layers: decoder blocks.
        num_heads: attention heads per block.
        hidden_dim: embedding and model width.
        intermediate_dim: feed-forward width.
        dropout: dropout rate inside the blocks.
        target_vocabulary_size: target vocabulary size; None means
            `vocabulary_size`.
        share_embeddings: encoder and decoder use one token-and-position
            embedding (needs one vocabulary).
        tie_output: the output projection reuses the decoder's token
            embedding matrix instead of a separate dense layer.
        normalize_first: pre-norm blocks (with a final layer norm), which
            train more stably from scratch than post-norm.
        position: "learned" or "sinusoidal" position embeddings.
        pad_token_id: padding id in sources, decoder inputs and labels.
        start_token_id: id the decoder starts from when generating.
        end_token_id: id that ends a generated sequence.

    Call arguments:
        inputs: dict with int tensors "encoder_token_ids" (batch, src_len)
            and "decoder_token_ids" (batch, tgt_len); optional bool
            "encoder_padding_mask" / "decoder_padding_mask" (default: ids !=
            `pad_token_id`). `tfllm.data.make_seq2seq_dataset` yields them.
        training: whether dropout is active.

    Returns:
        Logits (batch, tgt_len, target vocabulary size), float32.

    Example:

    ```python
    model = TransformerSeq2Seq(8000, 256, 64, start_token_id=4, end_token_id=5)
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
        num_encoder_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        hidden_dim=128,
        intermediate_dim=512,
        dropout=0.1,
        target_vocabulary_size=None,
        share_embeddings=True,
        tie_output=True,
        normalize_first=True,
        position="learned",
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
            num_encoder_layers=num_encoder_layers,
            num_decoder_layers=num_decoder_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
        )
        check_divisible(hidden_dim=hidden_dim, num_heads=num_heads)
        check_rates(dropout=dropout)
        if share_embeddings and target_vocabulary_size not in (None, vocabulary_size):
            raise ValueError(
                "share_embeddings needs one vocabulary for source and target. Received: "
                f"vocabulary_size={vocabulary_size}, target_vocabulary_size={target_vocabulary_size}"
            )
        self.vocabulary_size = int(vocabulary_size)
        self.encoder_sequence_length = int(encoder_sequence_length)
        self.decoder_sequence_length = int(decoder_sequence_length)
        self.num_encoder_layers = int(num_encoder_layers)
        self.num_decoder_layers = int(num_decoder_layers)
        self.num_heads = int(num_heads)
        self.hidden_dim = int(hidden_dim)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)
        self.target_vocabulary_size = (
            None if target_vocabulary_size is None else int(target_vocabulary_size)
        )
        self.share_embeddings = bool(share_embeddings)
        self.tie_output = bool(tie_output)
        self.normalize_first = bool(normalize_first)
        self.position = position
        self.pad_token_id = int(pad_token_id)
        self.start_token_id = None if start_token_id is None else int(start_token_id)
        self.end_token_id = None if end_token_id is None else int(end_token_id)
        target_size = self.target_vocabulary_size or self.vocabulary_size

        def embedding(vocabulary, length, name):
            return TokenAndPositionEmbedding(
                vocabulary, length, self.hidden_dim, position=position,
                dtype=self.dtype_policy, name=name,
            )

        if self.share_embeddings:
            longest = max(self.encoder_sequence_length, self.decoder_sequence_length)
            self.encoder_embedding = embedding(self.vocabulary_size, longest, "embedding")
            self.decoder_embedding = self.encoder_embedding
        else:
            self.encoder_embedding = embedding(
                self.vocabulary_size, self.encoder_sequence_length, "encoder_embedding"
            )
            self.decoder_embedding = embedding(
                target_size, self.decoder_sequence_length, "decoder_embedding"
            )
        block_args = dict(
            dropout=self.dropout, activation="gelu", normalize_first=self.normalize_first,
            dtype=self.dtype_policy,
        )
        self.encoder_blocks = [
            TransformerEncoderBlock(self.intermediate_dim, self.num_heads, name=f"encoder_block_{i}", **block_args)
            for i in range(self.num_encoder_layers)
        ]
        self.decoder_blocks = [
            TransformerDecoderBlock(self.intermediate_dim, self.num_heads, name=f"decoder_block_{i}", **block_args)
            for i in range(self.num_decoder_layers)
        ]
        self.encoder_norm = self.decoder_norm = None
        if self.normalize_first:
            self.encoder_norm = keras.layers.LayerNormalization(
                epsilon=1e-5, dtype=self.dtype_policy, name="encoder_norm"
            )
            self.decoder_norm = keras.layers.LayerNormalization(
                epsilon=1e-5, dtype=self.dtype_policy, name="decoder_norm"
            )
        self.output_dense = None
        if not self.tie_output:
            self.output_dense = keras.layers.Dense(
                target_size, dtype=self.dtype_policy, name="output_dense"
            )
        self._decoders = CompiledDecoders()

    def build(self, input_shape=None):
        hidden = (None, None, self.hidden_dim)
        self.encoder_embedding.build((None, None))
        if not self.share_embeddings:
            self.decoder_embedding.build((None, None))
        for block in self.encoder_blocks:
            block.build(hidden)
        for block in self.decoder_blocks:
            block.build(hidden, hidden)
        for norm in (self.encoder_norm, self.decoder_norm):
            if norm is not None:
                norm.build(hidden)
        if self.output_dense is not None:
            self.output_dense.build(hidden)
        self.built = True

    def _logits(self, x):
        if self.decoder_norm is not None:
            x = self.decoder_norm(x)
        if self.output_dense is not None:
            return ops.cast(self.output_dense(x), "float32")
        return ops.cast(self.decoder_embedding.token_embedding(x, reverse=True), "float32")

    def encode(self, encoder_token_ids, encoder_padding_mask=None, training=None):
        """Encoder outputs (batch, src_len, hidden_dim)."""
        if encoder_padding_mask is None:
            encoder_padding_mask = ops.not_equal(encoder_token_ids, self.pad_token_id)
        x = self.encoder_embedding(encoder_token_ids)
        for block in self.encoder_blocks:
            x = block(x, padding_mask=encoder_padding_mask, training=training)
        return x if self.encoder_norm is None else self.encoder_norm(x)

    def decode_sequence(
        self, decoder_token_ids, encoder_outputs, encoder_padding_mask,
        decoder_padding_mask=None, training=None, return_cross_attention_scores=False,
    ):
        """Logits for a whole decoder sequence (teacher forcing, no cache).

        With `return_cross_attention_scores`, `(logits, scores)`: a list of
        each decoder block's cross-attention probabilities, float32
        (batch, num_heads, tgt_len, src_len).
        """
        if decoder_padding_mask is None:
            decoder_padding_mask = ops.not_equal(decoder_token_ids, self.pad_token_id)
        x = self.decoder_embedding(decoder_token_ids)
        scores = []
        for block in self.decoder_blocks:
            x = block(
                x,
                encoder_outputs,
                decoder_padding_mask=decoder_padding_mask,
                encoder_padding_mask=encoder_padding_mask,
                return_cross_attention_scores=return_cross_attention_scores,
                training=training,
            )
            if return_cross_attention_scores:
                x, block_scores = x
                scores.append(block_scores)
        if return_cross_attention_scores:
            return self._logits(x), scores
        return self._logits(x)

    def cross_attention_scores(self, encoder_token_ids, decoder_token_ids):
        """Cross-attention probabilities of each decoder block on a teacher-forced sequence.

        Args:
            encoder_token_ids: int (batch, src_len), right padded.
            decoder_token_ids: int (batch, tgt_len): the start id and the
                tokens generated so far; row `i` of the scores is the query
                that predicts the token after position `i`.

        Returns:
            A list, one per decoder block, of float32 (batch, num_heads,
            tgt_len, src_len) tensors whose rows sum to 1 over the source.
        """
        encoder_padding_mask = ops.not_equal(encoder_token_ids, self.pad_token_id)
        encoded = self.encode(encoder_token_ids, encoder_padding_mask)
        _, scores = self.decode_sequence(
            decoder_token_ids, encoded, encoder_padding_mask, return_cross_attention_scores=True
        )
        return scores

    def call(self, inputs, training=None):
        encoder_token_ids = inputs["encoder_token_ids"]
        decoder_token_ids = inputs["decoder_token_ids"]
        encoder_padding_mask = inputs.get("encoder_padding_mask")
        if encoder_padding_mask is None:
            encoder_padding_mask = ops.not_equal(encoder_token_ids, self.pad_token_id)
        encoded = self.encode(encoder_token_ids, encoder_padding_mask, training=training)
        return self.decode_sequence(
            decoder_token_ids, encoded, encoder_padding_mask,
            inputs.get("decoder_padding_mask"), training=training,
        )

    def call_with_cache(self, decoder_token_ids, index, cache):
        """Runs decoder tokens placed at `index` against cached keys/values.

        Args:
            decoder_token_ids: (batch, n) tokens at positions index..index+n-1.
            index: their first position.
            cache: (encoder_padding_mask, self caches, cross caches) from
                `build_cache`.

        Returns:
            (logits (batch, n, vocab), cache).
        """
        encoder_padding_mask, self_caches, cross_caches = cache
        x = self.decoder_embedding(decoder_token_ids, start_index=index)
        new_self, new_cross = [], []
        for block, self_cache, cross_cache in zip(self.decoder_blocks, self_caches, cross_caches):
            x, self_cache, cross_cache = block(
                x,
                encoder_padding_mask=encoder_padding_mask,
                self_attention_cache=self_cache,
                self_attention_cache_update_index=index,
                cross_attention_cache=cross_cache,
            )
            new_self.append(self_cache)
            new_cross.append(cross_cache)
        return self._logits(x), (encoder_padding_mask, tuple(new_self), tuple(new_cross))

    def build_cache(self, encoder_token_ids, decoder_token_ids, cache_length=None):
        """Encodes the sources and fills self/cross key-value caches from `decoder_token_ids`.

        `decoder_token_ids` is the known target prefix; the self-attention
        caches hold `cache_length` positions (default: the prefix length).
        """
        encoder_padding_mask = ops.not_equal(encoder_token_ids, self.pad_token_id)
        encoded = self.encode(encoder_token_ids, encoder_padding_mask)
        batch_size = ops.shape(encoder_token_ids)[0]
        head_dim = self.hidden_dim // self.num_heads

        def zeros(length):
            # (batch, key/value, length, heads, head_dim)
            shape = (batch_size, 2, length, self.num_heads, head_dim)
            return ops.zeros(shape, dtype=self.compute_dtype)

        if cache_length is None:
            cache_length = ops.shape(decoder_token_ids)[1]
        x = self.decoder_embedding(decoder_token_ids)
        self_caches, cross_caches = [], []
        for block in self.decoder_blocks:
            x, self_cache, cross_cache = block(
                x,
                encoded,
                encoder_padding_mask=encoder_padding_mask,
                self_attention_cache=zeros(cache_length),
                self_attention_cache_update_index=0,
                cross_attention_cache=zeros(ops.shape(encoder_token_ids)[1]),
                cross_attention_cache_update_index=0,
            )
            self_caches.append(self_cache)
            cross_caches.append(cross_cache)
        return encoder_padding_mask, tuple(self_caches), tuple(cross_caches)

    def generate_step(
        self, encoder_token_ids, decoder_token_ids, max_length,
        sampler="greedy", stop_token_ids=(), use_cache=True,
    ):
        """Tensor-in, tensor-out decoding (traceable, used by `generate` and exports).

        Args:
            encoder_token_ids: int32 (batch, src_len), right padded.
            decoder_token_ids: int32 (batch, length): the start id, then
                padding; `length` bounds the output.
            max_length: scalar; positions from it on stay padding.
            sampler: `SamplerConfig`, strategy name, dict or keras_hub sampler.
            stop_token_ids: ids ending a sequence.
            use_cache: False recomputes the whole decoder every step.

        Returns:
            int32 (batch, length): start id followed by generated tokens.
        """
        encoder_token_ids = ops.cast(encoder_token_ids, "int32")
        decoder_token_ids = ops.cast(decoder_token_ids, "int32")
        length = ops.shape(decoder_token_ids)[1]
        if use_cache:
            # Only the start token is known; decoding recomputes it first anyway.
            encoder_padding_mask, cache, cross_caches = self.build_cache(
                encoder_token_ids, decoder_token_ids[:, :1], cache_length=length
            )
            context = (encoder_padding_mask, cross_caches)  # Fixed while decoding.

            def next(tokens, cache, index, context):
                step = ops.slice(tokens, [0, index - 1], [ops.shape(tokens)[0], 1])
                logits, (_, cache, _) = self.call_with_cache(step, index - 1, (context[0], cache, context[1]))
                return logits[:, 0, :], cache

        else:
            encoder_padding_mask = ops.not_equal(encoder_token_ids, self.pad_token_id)
            cache, context = (), (self.encode(encoder_token_ids, encoder_padding_mask), encoder_padding_mask)

            def next(tokens, cache, index, context):
                encoded, encoder_padding_mask = context
                # Generated tokens may equal the padding id; mask by position.
                known = ops.arange(length, dtype="int32")[None, :] < index
                known = ops.broadcast_to(known, ops.shape(tokens))
                logits = self.decode_sequence(tokens, encoded, encoder_padding_mask, known)
                return ops.take(logits, index - 1, axis=1), cache

        return self.decode_targets(next, decoder_token_ids, cache, context, sampler, stop_token_ids, max_length)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "encoder_sequence_length": self.encoder_sequence_length,
                "decoder_sequence_length": self.decoder_sequence_length,
                "num_encoder_layers": self.num_encoder_layers,
                "num_decoder_layers": self.num_decoder_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "target_vocabulary_size": self.target_vocabulary_size,
                "share_embeddings": self.share_embeddings,
                "tie_output": self.tie_output,
                "normalize_first": self.normalize_first,
                "position": self.position,
                "pad_token_id": self.pad_token_id,
                "start_token_id": self.start_token_id,
                "end_token_id": self.end_token_id,
            }
        )
        return config
