"""Choosing a `tf.distribute` strategy and shaping data and batch sizes for it."""

import glob
import json
import logging
import os

import tensorflow as tf

logger = logging.getLogger("tfllm.training")

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")

# Set by `simulate_devices` so that `get_strategy("auto")` only mirrors over CPU
# devices the user asked for, never over a split made for some other reason.
_simulated_cpu_devices = 0

# Strategies made so far. MultiWorkerMirroredStrategy and TPU initialisation
# can happen once per process, and separate MirroredStrategy instances hand out
# the same collective-op keys, so that their all-reduces collide: reuse them.
_strategies = {}

# Dataset ops that read files: a pipeline containing one can be sharded by file.
_FILE_READER_OPS = (
    "TFRecordDataset",
    "TextLineDataset",
    "FixedLengthRecordDataset",
    "CSVDataset",
    "ExperimentalCSVDataset",
    "LoadDataset",
)


def _is_positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def simulate_devices(n):
    """Splits the first physical CPU into `n` logical devices.

    Lets multi-device code paths (MirroredStrategy) run on a machine without
    GPUs. Must run before TensorFlow initialises its devices, that is before
    any tensor, model or strategy is created.

    Args:
        n: number of logical CPU devices, at least 1.

    Returns:
        The names of the logical CPU devices.

    Example:
    >>> simulate_devices(2)
    ['/device:CPU:0', '/device:CPU:1']
    """
    global _simulated_cpu_devices
    if not _is_positive_int(n):
        raise ValueError(f"simulate_devices needs a positive integer. Received: n={n!r}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError:
        existing = tf.config.list_logical_devices("CPU")
        if len(existing) != n:
            raise RuntimeError(
                f"simulate_devices({n}) must run before TensorFlow initialises its "
                f"devices (before any tensor, model or strategy is created); the "
                f"runtime already has {len(existing)} CPU device(s). Call it first "
                f"thing in the program, e.g. via configure_from_args()."
            ) from None
    _simulated_cpu_devices = n
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def _tf_config():
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON: {e.msg} at char {e.pos}") from None
    if not isinstance(config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object. Received: {raw[:80]!r}")
    return config


def _num_workers_in_tf_config():
    cluster = _tf_config().get("cluster", {})
    if cluster.get("ps"):
        raise ValueError(
            "TF_CONFIG describes a parameter-server cluster ('ps' tasks); tfllm trains "
            "with synchronous all-reduce only: list every machine under 'worker'."
        )
    return len(cluster.get("worker", ())) + len(cluster.get("chief", ()))


def _tpu_may_exist():
    # Probing TPUClusterResolver blindly can block on the GCE metadata server,
    # so only try when something points at a TPU.
    return bool(
        os.environ.get("TPU_NAME")
        or os.environ.get("COLAB_TPU_ADDR")
        or glob.glob("/dev/accel*")
        or glob.glob("/dev/vfio/[0-9]*")
    )


def _tpu_strategy():
    if "tpu" in _strategies:
        return _strategies["tpu"]
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        raise RuntimeError(f"No TPU could be resolved: {e}") from None
    _strategies["tpu"] = tf.distribute.TPUStrategy(resolver)
    return _strategies["tpu"]


def _mirrored_strategy():
    devices = tf.config.list_logical_devices("GPU")
    if not devices:
        # MirroredStrategy() alone would use only CPU:0; simulated devices must be named.
        devices = tf.config.list_logical_devices("CPU")
    key = ("mirrored", *(d.name for d in devices))
    if key not in _strategies:
        _strategies[key] = tf.distribute.MirroredStrategy([d.name for d in devices])
    return _strategies[key]


def _multiworker_strategy():
    if "multiworker" in _strategies:
        return _strategies["multiworker"]
    if _num_workers_in_tf_config() == 0:
        logger.warning(
            "Strategy 'multiworker' without a TF_CONFIG cluster: training on this "
            "machine only."
        )
    try:
        _strategies["multiworker"] = tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as e:
        raise RuntimeError(
            "MultiWorkerMirroredStrategy must be created before any other "
            f"TensorFlow operation runs in the program: {e}"
        ) from None
    return _strategies["multiworker"]


def _auto_choice():
    if _tpu_may_exist():
        try:
            tf.distribute.cluster_resolver.TPUClusterResolver()
            return "tpu"
        except (ValueError, RuntimeError, tf.errors.OpError) as e:
            logger.info("Not using a TPU: %s", e)
    if _num_workers_in_tf_config() > 1:
        return "multiworker"
    if len(tf.config.list_physical_devices("GPU")) > 1 or _simulated_cpu_devices > 1:
        return "mirrored"
    return "default"


def get_strategy(name="auto"):
    """Returns the `tf.distribute.Strategy` named `name`.

    `"auto"` picks, in order: TPUStrategy when a TPU resolves,
    MultiWorkerMirroredStrategy when `TF_CONFIG` names several workers,
    MirroredStrategy when several GPUs are visible (or CPU devices were split
    with `simulate_devices`), else the default (single-device) strategy.

    Args:
        name: one of `"auto"`, `"default"`, `"mirrored"`, `"multiworker"`, `"tpu"`.

    Returns:
        The strategy. Build and compile models inside `strategy.scope()`.

    Example:
    >>> strategy = get_strategy("mirrored")
    >>> with strategy.scope():
    ...     model = build_model()
    ...     model.compile(...)
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"Unknown strategy; expected one of {', '.join(STRATEGIES)}. Received: name={name!r}"
        )
    chosen = _auto_choice() if name == "auto" else name
    builders = {
        "tpu": _tpu_strategy,
        "multiworker": _multiworker_strategy,
        "mirrored": _mirrored_strategy,
        "default": tf.distribute.get_strategy,  # outside any scope: one device
    }
    strategy = builders[chosen]()
    logger.info(
        "Distribution strategy: %s (%s), %d replica(s) in sync%s",
        chosen,
        type(strategy).__name__,
        strategy.num_replicas_in_sync,
        "" if name == chosen else " [chosen by 'auto']",
    )
    return strategy


def is_multi_worker(strategy):
    """True when `strategy` spans several worker processes."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return len(cluster.get("worker", ())) + len(cluster.get("chief", ())) > 1


def _task(strategy=None):
    """Returns (task_type, task_id, cluster_has_chief); task_type is None off-cluster."""
    if strategy is None and tf.distribute.has_strategy():
        strategy = tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None) if strategy is not None else None
    if resolver is not None and resolver.task_type is not None:
        has_chief = "chief" in resolver.cluster_spec().as_dict()
        return resolver.task_type, resolver.task_id, has_chief
    if strategy is not None and not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None, None, False
    config = _tf_config()
    task = config.get("task", {})
    return task.get("type"), task.get("index"), "chief" in config.get("cluster", {})


def is_chief(strategy=None):
    """True on the chief worker, the one that writes exports and final files.

    The chief is the `chief` task, or worker 0 when the cluster has no `chief`.
    Single-process training is always the chief.

    Args:
        strategy: the strategy in use; defaults to the one in scope, else the
            cluster described by `TF_CONFIG`.
    """
    task_type, task_id, has_chief = _task(strategy)
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and not has_chief


def worker_id(strategy=None):
    """A short name for this process, e.g. `worker-1`; `chief` on the chief."""
    task_type, task_id, _ = _task(strategy)
    if task_type is None or is_chief(strategy):
        return "chief"
    return f"{task_type}-{task_id}"


def global_batch_size(per_replica_batch_size, strategy=None):
    """The batch size to give `tf.data` so that each replica gets `per_replica_batch_size`.

    Datasets given to a strategy are batched with the global batch size; the
    strategy splits every batch across its replicas.
    """
    if not _is_positive_int(per_replica_batch_size):
        raise ValueError(
            "per_replica_batch_size must be a positive integer. "
            f"Received: per_replica_batch_size={per_replica_batch_size!r}"
        )
    strategy = strategy or tf.distribute.get_strategy()
    return per_replica_batch_size * strategy.num_replicas_in_sync


def scale_learning_rate(learning_rate, strategy=None):
    """Scales a single-replica learning rate linearly with the number of replicas.

    With R replicas the global batch is R times larger and each step averages
    R times more examples; the linear scaling rule (Goyal et al., 2017,
    "Accurate, Large Minibatch SGD") keeps the per-example update size by
    multiplying the learning rate by R. Combine it with a few warm-up epochs for
    large R, and lower it again if training diverges.
    """
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or learning_rate <= 0:
        raise ValueError(
            f"learning_rate must be a positive number. Received: learning_rate={learning_rate!r}"
        )
    strategy = strategy or tf.distribute.get_strategy()
    return float(learning_rate) * strategy.num_replicas_in_sync


def reads_files(dataset):
    """True when the `tf.data` pipeline reads files (TFRecord, text lines, CSV ...)."""
    graph_def = tf.compat.v1.GraphDef()
    serialized = tf.raw_ops.DatasetToGraphV2(
        input_dataset=dataset._variant_tensor,  # noqa: SLF001 (the only handle to the graph)
        external_state_policy=0,
        strip_device_assignment=True,
    )
    graph_def.ParseFromString(serialized.numpy())
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops.update(node.op for node in function.node_def)
    return any(op.startswith(_FILE_READER_OPS) for op in ops)


def with_shard_policy(dataset, policy=None):
    """Sets the auto-shard policy: AUTO (file sharding) for file readers, else DATA.

    In-memory and generated pipelines have no files to split between workers;
    DATA sharding gives each worker its slice of every global batch.
    """
    if policy is None:
        policy = (
            tf.data.experimental.AutoShardPolicy.AUTO
            if reads_files(dataset)
            else tf.data.experimental.AutoShardPolicy.DATA
        )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy
    return dataset.with_options(options)


def even_batches(dataset, strategy=None):
    """Trims every batch to a multiple of the replica count, dropping emptied ones.

    Keras' `fit`/`evaluate` under `MirroredStrategy` fail when a batch splits
    unevenly across replicas (an `AddN` of `[10, n]` and `[9, n]`), which the
    last, partial batch of each length bucket usually does. With one replica
    the dataset is returned unchanged.

    Args:
        dataset: a batched `tf.data.Dataset`; elements may be nested (tuples,
            dicts of features).
        strategy: the strategy (default: the current one), or a replica count.
    """
    replicas = strategy if isinstance(strategy, int) else (strategy or tf.distribute.get_strategy()).num_replicas_in_sync
    if replicas <= 1:
        return dataset

    unpacked = isinstance(dataset.element_spec, tuple)  # `map` passes tuples as arguments.

    def rows(batch):
        return tf.shape(tf.nest.flatten(batch)[0])[0]

    @tf.autograph.experimental.do_not_convert
    def trim(*batch):
        size = rows(batch) // replicas * replicas
        batch = tf.nest.map_structure(lambda tensor: tensor[:size], batch)
        return batch if unpacked else batch[0]

    @tf.autograph.experimental.do_not_convert
    def not_empty(*batch):
        return rows(batch) > 0

    return dataset.map(trim).filter(not_empty)


def distribute_dataset(dataset, strategy=None, *, policy=None):
    """Distributes a batched `tf.data.Dataset` over the replicas of `strategy`.

    Args:
        dataset: a dataset batched with the global batch size (see
            `global_batch_size`).
        strategy: the strategy; defaults to the one in scope.
        policy: a `tf.data.experimental.AutoShardPolicy` overriding the choice
            of DATA for in-memory pipelines and AUTO (by file) for file readers.

    Returns:
        A `tf.distribute.DistributedDataset`.
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            f"distribute_dataset needs a tf.data.Dataset. Received: {type(dataset).__name__}"
        )
    strategy = strategy or tf.distribute.get_strategy()
    return strategy.experimental_distribute_dataset(with_shard_policy(dataset, policy))
