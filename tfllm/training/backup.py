"""Epoch-boundary backups so an interrupted training run resumes where it stopped."""

import hashlib
import json
import logging
import os
import shutil
import tempfile

import keras
import tensorflow as tf

logger = logging.getLogger("tfllm.training")

_STATE_FILE = "backup.json"


class TrainingBackup(keras.callbacks.Callback):
    """Backs up weights and optimizer state at every epoch end; restores them at start.

    A drop-in for `keras.callbacks.BackupAndRestore` that also serves
    `tfllm.training.fit`'s multi-worker loop. Each backup is written in full
    before `backup.json` is atomically switched to it, so a process killed
    while saving leaves the previous backup intact. When training finishes the
    backup is deleted; an interrupted run started again with the same
    `backup_dir` continues from the first unfinished epoch, with the optimizer's
    step count and slots as they were.

    On multi-worker clusters every worker must save (reading distributed
    variables may need all workers), but only the chief writes to
    `backup_dir`: the others pass a private `write_dir` that is deleted after
    each save, as the `tf.distribute` guide recommends. `backup_dir` then has
    to be on storage every worker can read (NFS, GCS) for them to restore.
    Files go through `tf.io.gfile` and Keras' file utilities, which also take
    remote paths such as `gs://` (not tested here).

    Args:
        backup_dir: directory holding the backup; not to be shared with other
            files or runs.
        write_dir: where this process writes; `None` means `backup_dir`.
        delete_on_finish: remove the backup once training completes.

    Example:
    >>> model.fit(data, epochs=10, callbacks=[TrainingBackup("/tmp/run1-backup")])
    """

    def __init__(self, backup_dir, *, write_dir=None, delete_on_finish=True):
        super().__init__()
        if not backup_dir:
            raise ValueError(f"backup_dir must be a directory path. Received: backup_dir={backup_dir!r}")
        self.backup_dir = os.fspath(backup_dir)
        self.write_dir = os.fspath(write_dir) if write_dir else None
        self.delete_on_finish = delete_on_finish
        self.initial_epoch = 0

    def _state(self):
        path = os.path.join(self.backup_dir, _STATE_FILE)
        if not tf.io.gfile.exists(path):
            return None
        try:
            with tf.io.gfile.GFile(path) as f:
                state = json.load(f)
            weights = os.path.join(self.backup_dir, state["weights"])
            epoch = int(state["epoch"])
        except (OSError, tf.errors.OpError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: unreadable training backup ({e})") from None
        return epoch, weights

    def on_train_begin(self, logs=None):
        self.initial_epoch = 0
        state = self._state()
        if state is None:
            return
        epoch, weights = state
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            with self.model.distribute_strategy.scope():
                optimizer.build(self.model.trainable_variables)
        self.model.load_weights(weights)
        self.initial_epoch = epoch
        # The attribute Keras' own fit() reads to skip finished epochs.
        self.model._initial_epoch = epoch  # noqa: SLF001
        logger.info("Restored training backup from %s: resuming at epoch %d", self.backup_dir, epoch + 1)

    def on_epoch_end(self, epoch, logs=None):
        if self.write_dir is None:
            self._save(self.backup_dir, epoch + 1)
            return
        try:
            self._save(self.write_dir, epoch + 1)
        finally:
            shutil.rmtree(self.write_dir, ignore_errors=True)

    def _save(self, directory, epochs_done):
        tf.io.gfile.makedirs(directory)
        name = f"epoch-{epochs_done:05d}.weights.h5"
        self.model.save_weights(os.path.join(directory, name), overwrite=True)
        tmp = os.path.join(directory, f".{_STATE_FILE}.tmp")
        with tf.io.gfile.GFile(tmp, "w") as f:
            f.write(json.dumps({"epoch": epochs_done, "weights": name}))
        tf.io.gfile.rename(tmp, os.path.join(directory, _STATE_FILE), overwrite=True)
        for old in tf.io.gfile.listdir(directory):
            if old.endswith(".weights.h5") and old != name:
                tf.io.gfile.remove(os.path.join(directory, old))

    def on_train_end(self, logs=None):
        self.model._initial_epoch = None  # noqa: SLF001
        if not self.delete_on_finish:
            return
        directory = self.write_dir or self.backup_dir
        if tf.io.gfile.exists(directory):
            tf.io.gfile.rmtree(directory)


def worker_temp_dir(kind, target, worker):
    """An empty private directory for a non-chief worker's throw-away copy of `target`.

    The name is derived from `target`, so a worker restarted after being killed
    reuses (and empties) the directory it left behind instead of piling up new ones.
    """
    digest = hashlib.sha1(os.path.abspath(os.fspath(target)).encode()).hexdigest()[:12]
    path = os.path.join(tempfile.gettempdir(), f"tfllm-{kind}-{worker}-{os.getuid()}-{digest}")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path
