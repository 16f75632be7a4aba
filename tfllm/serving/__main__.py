"""Command line: `python -m tfllm.serving {serve,predict,status,metadata} ...`.

    python -m tfllm.serving serve --model_name=sentiment \\
        --model_base_path=saved_models/sentiment --port=8500 --rest_api_port=8501
    python -m tfllm.serving predict --server localhost:8500 --model sentiment "great film"

`serve` takes `tensorflow_model_server`'s flag names (`--flag=value` or
`--flag value`). Exit codes: 0 ok, 1 server unreachable or failing, 2 bad
arguments or a request the server rejected.
"""

import argparse
import json
import logging
import os
import signal
import sys

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _bool(value):
    lowered = str(value).lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false. Received: {value!r}")


def _parser():
    parser = argparse.ArgumentParser(prog="python -m tfllm.serving", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve SavedModels over TF Serving's gRPC and REST APIs")
    serve.add_argument("--port", type=int, default=8500, help="gRPC port (default 8500)")
    serve.add_argument("--rest_api_port", type=int, default=0, help="REST port; 0 disables REST (default)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="interface to bind (default 127.0.0.1; 0.0.0.0 for all)")
    serve.add_argument("--model_name", default="default", help="name of the served model")
    serve.add_argument("--model_base_path", help="directory holding integer version directories")
    serve.add_argument("--model_config_file", help="ModelServerConfig text proto for several models")
    serve.add_argument("--model_config_file_poll_wait_seconds", type=float, default=0,
                       help="re-read --model_config_file this often when it changes; 0 never")
    serve.add_argument("--enable_batching", type=_bool, nargs="?", const=True, default=False,
                       help="merge concurrent requests into batches")
    serve.add_argument("--batching_parameters_file", help="BatchingParameters text proto")
    serve.add_argument("--file_system_poll_wait_seconds", type=float, default=1,
                       help="poll base paths for new versions this often; 0 never (default 1)")
    serve.add_argument("--grpc_max_message_size", type=int, default=None,
                       help="largest request in bytes, gRPC or REST (default 64 MiB)")
    serve.add_argument("--grpc_max_threads", type=int, default=64, help="gRPC worker threads")
    serve.add_argument("--max_in_flight_requests", type=int, default=None,
                       help="inference requests run at once; more get UNAVAILABLE / HTTP 503 "
                            "(default --grpc_max_threads without batching, none with; 0 none)")
    serve.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0,
                       help="threads one op may use; 0 lets TensorFlow pick (default)")
    serve.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0,
                       help="ops run in parallel; 0 lets TensorFlow pick (default)")

    predict = sub.add_parser("predict", help="send a Predict request and print the outputs as JSON")
    predict.add_argument("texts", nargs="+", help="input texts (one batch)")
    _client_args(predict)
    predict.add_argument("--signature", default=None, help="signature name (default serving_default)")
    predict.add_argument("--input_key", default=None, help="input name (default text)")

    for name, help_ in (("status", "print the model's version states"),
                        ("metadata", "print the model's signatures")):
        _client_args(sub.add_parser(name, help=help_))
    return parser


def _client_args(parser):
    parser.add_argument("--server", default="localhost:8500",
                        help="host:port for gRPC, or http://host:port for REST (default localhost:8500)")
    parser.add_argument("--model", required=True, help="model name")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--version", type=int, default=None, help="model version (default latest)")
    group.add_argument("--label", default=None, help="version label")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")


def _serve(args):
    from tfllm.serving.export import ExportError
    from tfllm.serving.server import DEFAULT_MAX_MESSAGE_SIZE, ModelServer

    if bool(args.model_base_path) == bool(args.model_config_file):
        print("error: give exactly one of --model_base_path or --model_config_file", file=sys.stderr)
        return EXIT_USAGE
    if args.batching_parameters_file and not args.enable_batching:
        print("error: --batching_parameters_file needs --enable_batching", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        server = ModelServer(
            model_name=args.model_name if args.model_base_path else None,
            model_base_path=args.model_base_path,
            model_config_file=args.model_config_file,
            model_config_file_poll_wait_seconds=args.model_config_file_poll_wait_seconds,
            port=args.port,
            rest_api_port=args.rest_api_port or None,
            host=args.host,
            enable_batching=args.enable_batching,
            batching_parameters=args.batching_parameters_file,
            file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
            grpc_max_message_size=args.grpc_max_message_size or DEFAULT_MAX_MESSAGE_SIZE,
            grpc_max_threads=args.grpc_max_threads,
            max_in_flight_requests=args.max_in_flight_requests,
            tensorflow_intra_op_parallelism=args.tensorflow_intra_op_parallelism,
            tensorflow_inter_op_parallelism=args.tensorflow_inter_op_parallelism,
        )
        server.start()
    except (ExportError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: server.request_stop())
    try:
        server.wait()
    finally:
        server.stop()
    return EXIT_OK


def _client(args):
    if args.server.startswith(("http://", "https://")):
        from tfllm.serving.client import RestClient

        return RestClient(args.server, timeout=args.timeout)
    from tfllm.serving.client import ServingClient

    return ServingClient(args.server, timeout=args.timeout)


def _jsonable(value):
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value


def _request(args):
    import grpc

    from tfllm.serving import signatures as sig
    from tfllm.serving.protocol import ServingError

    try:
        client = _client(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "predict":
            outputs = client.predict(
                args.model, {args.input_key or sig.TEXT: list(args.texts)},
                signature=args.signature, version=args.version, label=args.label,
            )
            result = {k: _jsonable(v) for k, v in sorted(outputs.items())}
        elif args.command == "status":
            result = client.status(args.model, version=args.version, label=args.label)
        else:
            result = client.metadata(args.model, version=args.version, label=args.label)
    except ServingError as e:
        print(f"error: {args.server}: {e}", file=sys.stderr)
        usage = e.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
        return EXIT_USAGE if usage else EXIT_FAILED
    finally:
        client.close()
    print(json.dumps(result, ensure_ascii=False))
    return EXIT_OK


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _request(args)


if __name__ == "__main__":
    sys.exit(main())
