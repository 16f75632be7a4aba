"""A model server that speaks TF Serving's gRPC and REST APIs.

It serves the same `base_path/<version>/` SavedModel layout as
`tensorflow_model_server`, with the same flags, request and response messages,
error codes and REST JSON, so clients written against one work with the
other. Versions appearing under a base path are loaded while serving; the old
version is unloaded only once the new one answered its warmup requests.

gRPC runs on an asyncio server (`grpc_service`), REST on a threaded HTTP
server (`rest`); both resolve requests through one `versions.ModelManager`.

Example:

    from tfllm.serving import ModelServer
    with ModelServer(model_name="sentiment", model_base_path="saved_models/sentiment",
                     port=8500, rest_api_port=8501) as server:
        server.wait()
"""

import asyncio
import concurrent.futures
import logging
import os
import socket
import threading

import grpc
import tensorflow as tf
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2

from tfllm.serving import export
from tfllm.serving.admission import InFlightLimit
from tfllm.serving.batching import BatchingParameters
from tfllm.serving.grpc_service import ModelServicer, PredictionServicer
from tfllm.serving.metrics import Metrics
from tfllm.serving.protocol import ServingError
from tfllm.serving.rest import RestServer
from tfllm.serving.servables import Recorder
from tfllm.serving.versions import ModelManager

__all__ = ["ModelServer", "BatchingParameters", "DEFAULT_MAX_MESSAGE_SIZE"]

log = logging.getLogger("tfllm.serving")

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024


def _load_text_ops():
    # Registers the tensorflow-text kernels (WordPiece tokenizers and friends)
    # that exports of keras_hub tokenizers need; stock TF Serving links them too.
    import tensorflow_text  # noqa: F401


# TF Serving's thread flags and the `tf.config.threading` setting each one sets.
_THREAD_FLAGS = {
    "tensorflow_intra_op_parallelism": "intra_op_parallelism_threads",
    "tensorflow_inter_op_parallelism": "inter_op_parallelism_threads",
}


def _set_tensorflow_threads(threads):
    """Applies `{flag: threads}` for `_THREAD_FLAGS` (0: keep TensorFlow's default)."""
    for flag, value in threads.items():
        setting = _THREAD_FLAGS[flag]
        if value and getattr(tf.config.threading, f"get_{setting}")() != value:
            try:
                getattr(tf.config.threading, f"set_{setting}")(value)
            except RuntimeError:
                raise ValueError(
                    f"{flag}={value} must be set before TensorFlow runs its first op in this "
                    "process; start the server in a fresh process"
                ) from None
    if any(threads.values()):
        log.info("TensorFlow threads: intra-op %s, inter-op %s",
                 *(threads[flag] or "default" for flag in _THREAD_FLAGS))


def _single_model_config(name, base_path):
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(
        name=name, base_path=os.path.abspath(base_path), model_platform="tensorflow"
    )
    return config


class ModelServer:
    """Serves SavedModels over TF Serving's gRPC (`port`) and REST (`rest_api_port`) APIs.

    Args:
        model_name: name of the single served model (with `model_base_path`).
        model_base_path: directory holding integer version directories.
        model_config_file: a `ModelServerConfig` text proto (see
            `tfllm.serving.export.write_model_config`) instead of the two above.
        model_config: a `ModelServerConfig` proto, or what `write_model_config`
            accepts (`{name: base_path}` or a list of dicts).
        port: gRPC port; 0 picks a free one (see `.port` after `start()`).
        rest_api_port: REST port; 0 picks a free one; None disables REST.
        host: interface to bind; default loopback only.
        enable_batching: merge concurrent requests (see `BatchingParameters`).
        batching_parameters: a `BatchingParameters`, or the path of a
            `--batching_parameters_file` text proto.
        file_system_poll_wait_seconds: how often base paths are polled for new
            versions; 0 disables polling after the initial load.
        grpc_max_message_size: largest request (gRPC message or REST body) in
            bytes; larger ones fail with RESOURCE_EXHAUSTED (HTTP 413).
        grpc_max_threads: threads answering gRPC requests.
        max_in_flight_requests: Predict/Classify/Regress requests (gRPC and
            REST together) run at once; more are refused with UNAVAILABLE
            (HTTP 503) instead of queuing. Default: `grpc_max_threads` with
            batching off, no limit with batching on (then
            `max_enqueued_batches` refuses the excess). 0: no limit.
        tensorflow_intra_op_parallelism: threads one op may use; 0 lets
            TensorFlow pick (one per core). On a machine with few cores that
            also runs the gRPC front end, 1 leaves more CPU for requests.
        tensorflow_inter_op_parallelism: ops run at the same time; 0 lets
            TensorFlow pick. Both must be set before this process runs its
            first TensorFlow op (a fresh process, as `python -m tfllm.serving
            serve`, always qualifies).
        model_config_file_poll_wait_seconds: re-read `model_config_file` this
            often and apply it when it changed; 0 never.

    Example:

        with ModelServer(model_name="demo", model_base_path="saved_models/demo",
                         port=0, rest_api_port=0) as server:
            print(server.port, server.rest_api_port)
    """

    def __init__(self, *, model_name=None, model_base_path=None, model_config_file=None,
                 model_config=None, port=8500, rest_api_port=None, host="127.0.0.1",
                 enable_batching=False, batching_parameters=None,
                 file_system_poll_wait_seconds=1.0, grpc_max_message_size=DEFAULT_MAX_MESSAGE_SIZE,
                 grpc_max_threads=64, max_in_flight_requests=None,
                 model_config_file_poll_wait_seconds=0,
                 tensorflow_intra_op_parallelism=0, tensorflow_inter_op_parallelism=0):
        sources = sum(x is not None for x in (model_base_path, model_config_file, model_config))
        if sources != 1:
            raise ValueError(
                "give exactly one of model_base_path (with model_name), model_config_file or model_config"
            )
        if model_base_path is not None:
            if not model_name:
                raise ValueError("model_name is required with model_base_path")
            config = _single_model_config(model_name, model_base_path)
        elif model_config_file is not None:
            config = export.read_model_config(model_config_file)
        elif isinstance(model_config, model_server_config_pb2.ModelServerConfig):
            config = model_config
        else:
            config = export.model_server_config(model_config)
        if grpc_max_message_size <= 0:
            raise ValueError(f"grpc_max_message_size must be > 0. Received: {grpc_max_message_size}")
        self.tensorflow_threads = {
            "tensorflow_intra_op_parallelism": int(tensorflow_intra_op_parallelism),
            "tensorflow_inter_op_parallelism": int(tensorflow_inter_op_parallelism),
        }
        for flag, value in self.tensorflow_threads.items():
            if value < 0:
                raise ValueError(f"{flag} must be >= 0 (0: TensorFlow's default). Received: {value}")
        if isinstance(batching_parameters, (str, os.PathLike)):
            batching_parameters = BatchingParameters.from_file(batching_parameters)
        self.config = config
        self.config_file = model_config_file
        self.config_poll_seconds = float(model_config_file_poll_wait_seconds)
        self.host = host
        self.port = port
        self.rest_api_port = rest_api_port
        self.batching = (batching_parameters or BatchingParameters()) if enable_batching else None
        self.poll_seconds = float(file_system_poll_wait_seconds)
        self.max_message_size = int(grpc_max_message_size)
        self.grpc_max_threads = int(grpc_max_threads)
        if max_in_flight_requests is None:
            max_in_flight_requests = 0 if self.batching else self.grpc_max_threads
        self.admission = InFlightLimit(max_in_flight_requests)
        self.metrics = Metrics()
        self.manager = None
        self.rest_recorder = Recorder(self.metrics, "REST")
        self._grpc_thread = None
        self._loop = None
        self._grace = 1.0
        self._rest = None
        self._threads = []
        self._stop = threading.Event()

    @staticmethod
    def _address(host, port):
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def _check_port_free(self, what, port):
        if not port:  # None: off; 0: any free port.
            return
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As the real servers bind: a port left in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.host, port))
            except OSError as e:
                raise OSError(
                    f"cannot bind {what} to {self._address(self.host, port)}: {e.strerror}"
                ) from None

    def start(self):
        """Loads the models (raising if one fails to load), then starts serving."""
        _set_tensorflow_threads(self.tensorflow_threads)
        # Both checks fail in a second instead of after loading every model.
        for what, port in (("gRPC", self.port), ("REST", self.rest_api_port)):
            self._check_port_free(what, port)
        for entry in self.config.model_config_list.config:
            if not tf.io.gfile.isdir(entry.base_path):
                raise export.ExportError(
                    f"model {entry.name}: base path {entry.base_path} does not exist"
                )
        _load_text_ops()
        self.manager = ModelManager(self.config, batching=self.batching, metrics=self.metrics)
        for model in self.manager.models.values():
            if not model.servables:
                failed = [m for _, _, m in model.status.values() if m]
                self.manager.close()
                raise export.ExportError(
                    f"model {model.name}: no servable version under {model.base_path}"
                    + (f" ({failed[0]})" if failed else "")
                )
        self._executor = concurrent.futures.ThreadPoolExecutor(
            self.grpc_max_threads, thread_name_prefix="tfllm-predict"
        )
        started = threading.Event()
        failure = []
        self._grpc_thread = threading.Thread(
            target=self._run_grpc, args=(started, failure), name="tfllm-grpc", daemon=True
        )
        self._grpc_thread.start()
        started.wait()
        if failure:
            self._grpc_thread.join()
            self._grpc_thread = None
            self._executor.shutdown()
            self.manager.close()
            raise OSError(f"cannot bind gRPC to {self._address(self.host, self.port)}: {failure[0]}")
        if self.rest_api_port is not None:
            try:
                self._rest = RestServer((self.host, self.rest_api_port), self)
            except OSError as e:
                self.stop()
                raise OSError(
                    f"cannot bind REST to {self._address(self.host, self.rest_api_port)}: {e.strerror}"
                ) from None
            self.rest_api_port = self._rest.server_address[1]
            self._spawn(self._rest.serve_forever, "tfllm-rest")
        if self.poll_seconds > 0:
            self._spawn(self._poll, "tfllm-poll")
        if self.config_file and self.config_poll_seconds > 0:
            self._spawn(self._poll_config, "tfllm-config-poll")
        log.info(
            "serving gRPC on %s%s", self._address(self.host, self.port),
            f", REST on {self._address(self.host, self.rest_api_port)}" if self._rest else "",
        )
        return self

    def _run_grpc(self, started, failure):
        """Runs the asyncio gRPC server on this thread's own event loop until `stop()`."""
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop

        async def serve():
            server = grpc.aio.server(options=[
                ("grpc.max_receive_message_length", self.max_message_size),
                ("grpc.max_send_message_length", self.max_message_size),
                ("grpc.so_reuseport", 0),
            ])
            prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
                PredictionServicer(self.manager, self.metrics, self._executor,
                                   self.max_message_size, self.admission), server
            )
            model_service_pb2_grpc.add_ModelServiceServicer_to_server(
                ModelServicer(self.manager, self.metrics, self._executor), server
            )
            try:
                bound = server.add_insecure_port(self._address(self.host, self.port))
            except RuntimeError as e:
                failure.append(str(e).splitlines()[0] if str(e) else "address in use?")
                return
            self.port = bound
            self._grpc_stopping = asyncio.Event()
            await server.start()
            started.set()
            await self._grpc_stopping.wait()
            await server.stop(self._grace)

        try:
            loop.run_until_complete(serve())
        finally:
            started.set()
            loop.close()

    def _spawn(self, target, name):
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _poll(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.manager.poll()
            except Exception:  # Polling must survive a transient file system error.
                log.exception("polling model base paths failed")

    def _poll_config(self):
        def stamp():
            try:
                return os.path.getmtime(self.config_file)
            except OSError:
                return None
        seen = stamp()
        while not self._stop.wait(self.config_poll_seconds):
            current = stamp()
            if current is None or current == seen:
                continue
            seen = current
            try:
                self.manager.reload(export.read_model_config(self.config_file))
                log.info("applied model config %s", self.config_file)
            except (export.ExportError, ServingError) as e:
                log.error("ignoring model config %s: %s", self.config_file, e)

    def reload_config(self, config):
        """Applies a new `ModelServerConfig` (or `write_model_config`-style models)."""
        if not isinstance(config, model_server_config_pb2.ModelServerConfig):
            config = export.model_server_config(config)
        self.manager.reload(config)

    def poll(self):
        """Picks up new and removed versions now instead of at the next poll."""
        self.manager.poll()

    def request_stop(self):
        """Makes `wait()` return; safe in signal handlers."""
        self._stop.set()

    def wait(self, timeout=None):
        """Blocks until `stop()` (from another thread or a signal handler)."""
        return self._stop.wait(timeout)

    def stop(self, grace=1.0):
        """Stops serving, finishing in-flight requests for up to `grace` seconds."""
        self._stop.set()
        if self._rest is not None:
            self._rest.shutdown()
            self._rest.server_close()
            self._rest = None
        if self._grpc_thread is not None:
            self._grace = grace
            self._loop.call_soon_threadsafe(self._grpc_stopping.set)
            self._grpc_thread.join()
            self._grpc_thread = None
            self._executor.shutdown()
        for thread in self._threads:
            thread.join()
        self._threads = []
        if self.manager is not None:
            self.manager.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
