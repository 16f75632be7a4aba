"""Bag of token and hashed n-gram embeddings, averaged, then softmax (fastText-style)."""

import keras
from keras import ops

from tfllm._validation import check_positive_ints, check_rates

# A Mersenne prime: n-gram keys are kept below it, so `key * vocabulary_size +
# id` never overflows int64 for vocabularies below 2**32.
_HASH_MODULUS = 2**31 - 1


@keras.saving.register_keras_serializable(package="tfllm")
class NGramClassifier(keras.Model):
    """Text classifier over the average embedding of tokens and hashed n-grams.

    The model of Joulin et al. (2017), "Bag of Tricks for Efficient Text
    Classification": every token and every n-gram of `2..ngram_order`
    consecutive tokens gets an embedding (n-grams share `num_buckets` hashed
    rows), the embeddings are averaged over the text, and a softmax layer
    classifies the average. N-grams are hashed inside the model from the
    token ids, so it trains on the same int ids as the other classifiers and
    needs no n-gram vocabulary. Padding (id 0) and n-grams touching it are
    left out of the average.

    It is a linear model over normalized n-gram counts with a low-rank weight
    matrix, which is why it is fast and hard to overfit; `feature_dropout`
    (dropping each token/n-gram from the average during training) is its
    main regularizer.

    Args:
        vocabulary_size: number of token ids (id 0 is padding).
        num_classes: number of output classes.
        embedding_dim: size of the token and n-gram embeddings.
        ngram_order: longest n-gram hashed (1: tokens only).
        num_buckets: hashed n-gram embedding rows (shared by all orders).
        feature_dropout: share of tokens/n-grams dropped from the average
            during training.
        dropout: dropout on the averaged embedding.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: int token ids `(batch, length)`, right-padded with 0.
        training: whether dropout is active.

    Returns:
        float32 class probabilities `(batch, num_classes)`.

    Example:
    >>> model = NGramClassifier(vocabulary_size=100, num_classes=2, embedding_dim=8)
    >>> model(np.array([[4, 9, 2, 0]])).shape
    TensorShape([1, 2])
    """

    def __init__(
        self,
        vocabulary_size,
        num_classes,
        embedding_dim=32,
        ngram_order=2,
        num_buckets=2**18,
        feature_dropout=0.0,
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_ints(
            vocabulary_size=vocabulary_size,
            num_classes=num_classes,
            embedding_dim=embedding_dim,
            ngram_order=ngram_order,
        )
        if ngram_order > 1:
            check_positive_ints(num_buckets=num_buckets)
        check_rates(feature_dropout=feature_dropout, dropout=dropout)
        if vocabulary_size >= 2**32:
            raise ValueError(f"`vocabulary_size` must be below 2**32. Received: vocabulary_size={vocabulary_size}")
        self.vocabulary_size = vocabulary_size
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.ngram_order = ngram_order
        self.num_buckets = num_buckets if ngram_order > 1 else 0
        self.feature_dropout = feature_dropout
        self.dropout = dropout

        # fastText's initialization: uniform in +-1/dim keeps the initial
        # averages small whatever the text length.
        self.embedding = keras.layers.Embedding(
            vocabulary_size + self.num_buckets,
            embedding_dim,
            embeddings_initializer=keras.initializers.RandomUniform(-1.0 / embedding_dim, 1.0 / embedding_dim),
            name="embedding",
        )
        self.seed_generator = keras.random.SeedGenerator(name="feature_dropout_seed")
        self.dropout_layer = keras.layers.Dropout(dropout, name="dropout")
        self.classifier = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="classifier")

    def build(self, input_shape):
        self.embedding.build((None, None))
        self.classifier.build((None, self.embedding_dim))
        self.built = True

    def ngram_ids(self, token_ids):
        """Returns `(feature_ids, weights)`: token and hashed n-gram ids with 0/1 validity.

        Shapes are `(batch, features)`: the tokens, then the n-grams of each
        order; n-gram ids start at `vocabulary_size`.
        """
        ids = ops.cast(token_ids, "int64")
        valid = ops.cast(ids > 0, "float32")
        features, weights = [ids], [valid]
        key, key_valid = ids, valid
        for order in range(2, self.ngram_order + 1):
            # Polynomial hash of the last `order` tokens, kept below the modulus.
            key = ops.mod(key[:, :-1] * self.vocabulary_size + ids[:, order - 1 :], _HASH_MODULUS)
            key_valid = key_valid[:, :-1] * valid[:, order - 1 :]
            # Orders get different offsets so "a b" and "x a b" rarely share a bucket.
            bucket = ops.mod(key + order * 1_000_003, self.num_buckets)
            features.append(bucket + self.vocabulary_size)
            weights.append(key_valid)
        return ops.concatenate(features, axis=1), ops.concatenate(weights, axis=1)

    def call(self, inputs, training=None):
        features, weights = self.ngram_ids(inputs)
        if training and self.feature_dropout > 0:
            keep = keras.random.uniform(ops.shape(weights), seed=self.seed_generator) >= self.feature_dropout
            weights = weights * ops.cast(keep, weights.dtype)
        embedded = self.embedding(features)  # (batch, features, embedding_dim)
        weights = ops.cast(weights, embedded.dtype)
        total = ops.sum(embedded * weights[:, :, None], axis=1)
        count = ops.maximum(ops.sum(weights, axis=1, keepdims=True), 1.0)
        x = self.dropout_layer(total / count, training=training)
        return self.classifier(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_classes": self.num_classes,
                "embedding_dim": self.embedding_dim,
                "ngram_order": self.ngram_order,
                "num_buckets": self.num_buckets,
                "feature_dropout": self.feature_dropout,
                "dropout": self.dropout,
            }
        )
        return config
