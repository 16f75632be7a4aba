"""A BiLSTM sequence tagger over word, case and character-CNN features (Lample et al. 2016; Ma and Hovy 2016)."""

import keras
from keras import ops

from tfllm._validation import check_positive_ints, check_rates


@keras.saving.register_keras_serializable(package="tfllm")
class LSTMTagger(keras.Model):
    """Word tagger: word + case embeddings and a character CNN per word, a BiLSTM, softmax per word.

    Args:
        word_vocabulary_size: word ids (0 padding, 1 unknown).
        char_vocabulary_size: character ids (0 padding, 1 unknown).
        num_tags: tags per word (IOB2 tags of the entity types).
        num_cases: case-class ids (0 padding).
        word_dim: word embedding size.
        case_dim: case embedding size.
        char_dim: character embedding size.
        char_filters: character CNN filters (width 3), max-pooled over each word.
        units: LSTM units per direction.
        num_layers: stacked BiLSTM layers.
        dropout: dropout on the word features and on the BiLSTM output.
        word_dropout: share of known words read as unknown (id 1) while
            training, so the unknown-word vector and the character features
            learn to stand in for words training never saw.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: `{"word_ids": (batch, words), "case_ids": (batch, words),
            "char_ids": (batch, words, chars)}` int ids, 0 = padding
            (`tfllm.text.words.WordFeaturizer`).
        training: whether dropout is active.

    Returns:
        float32 tag probabilities `(batch, words, num_tags)`.

    Example:

    >>> model = LSTMTagger(50, 30, num_tags=5, num_cases=7, units=8)
    >>> model({"word_ids": np.array([[4, 9, 0]]), "case_ids": np.array([[2, 3, 0]]),
    ...        "char_ids": np.ones((1, 3, 6), "int32")}).shape
    TensorShape([1, 3, 5])
    """

    def __init__(self, word_vocabulary_size, char_vocabulary_size, num_tags, num_cases=8, word_dim=100,
                 case_dim=8, char_dim=30, char_filters=50, units=128, num_layers=1, dropout=0.5, word_dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        check_positive_ints(word_vocabulary_size=word_vocabulary_size, char_vocabulary_size=char_vocabulary_size,
                            num_tags=num_tags, num_cases=num_cases, word_dim=word_dim, case_dim=case_dim,
                            char_dim=char_dim, char_filters=char_filters, units=units, num_layers=num_layers)
        check_rates(dropout=dropout, word_dropout=word_dropout)
        self.word_vocabulary_size = word_vocabulary_size
        self.char_vocabulary_size = char_vocabulary_size
        self.num_tags = num_tags
        self.num_cases = num_cases
        self.word_dim = word_dim
        self.case_dim = case_dim
        self.char_dim = char_dim
        self.char_filters = char_filters
        self.units = units
        self.num_layers = num_layers
        self.dropout = dropout
        self.word_dropout = word_dropout
        self.seed_generator = keras.random.SeedGenerator(0)
        self.word_embedding = keras.layers.Embedding(word_vocabulary_size, word_dim, name="word_embedding")
        self.case_embedding = keras.layers.Embedding(num_cases, case_dim, name="case_embedding")
        self.char_embedding = keras.layers.Embedding(char_vocabulary_size, char_dim, name="char_embedding")
        # A (1, 3) kernel over (words, chars) is a width-3 convolution inside each word.
        self.char_cnn = keras.layers.Conv2D(char_filters, (1, 3), padding="same", activation="tanh", name="char_cnn")
        self.feature_dropout = keras.layers.Dropout(dropout, name="feature_dropout")
        self.recurrent_layers = [
            keras.layers.Bidirectional(keras.layers.LSTM(units, return_sequences=True), name=f"bilstm_{index}")
            for index in range(num_layers)
        ]
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.classifier = keras.layers.Dense(num_tags, activation="softmax", dtype="float32", name="classifier")

    def call(self, inputs, training=None):
        word_ids = ops.cast(inputs["word_ids"], "int32")
        char_ids = ops.cast(inputs["char_ids"], "int32")
        mask = ops.not_equal(word_ids, 0)
        if training and self.word_dropout:
            drop = keras.random.uniform(ops.shape(word_ids), seed=self.seed_generator) < self.word_dropout
            word_ids = ops.where(ops.logical_and(drop, ops.greater(word_ids, 1)), 1, word_ids)
        chars = self.char_cnn(self.char_embedding(char_ids))  # (batch, words, chars, filters)
        # Padding characters must not win the max: push them below tanh's range.
        char_mask = ops.expand_dims(ops.cast(ops.not_equal(char_ids, 0), chars.dtype), -1)
        chars = ops.max(chars * char_mask - 2.0 * (1.0 - char_mask), axis=2)  # (batch, words, filters)
        features = ops.concatenate(
            [self.word_embedding(word_ids), self.case_embedding(ops.cast(inputs["case_ids"], "int32")), chars], axis=-1
        )
        x = self.feature_dropout(features, training=training)
        for layer in self.recurrent_layers:
            x = layer(x, mask=mask, training=training)
        return self.classifier(self.output_dropout(x, training=training))

    def get_config(self):
        config = super().get_config()
        config.update({
            name: getattr(self, name)
            for name in ("word_vocabulary_size", "char_vocabulary_size", "num_tags", "num_cases", "word_dim",
                         "case_dim", "char_dim", "char_filters", "units", "num_layers", "dropout", "word_dropout")
        })
        return config
