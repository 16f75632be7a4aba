"""TF Serving's PredictionService and ModelService on grpc.aio.

A request waiting for its batch costs a coroutine, not a thread; signature
calls run on the executor (TensorFlow releases the GIL while ops run) or on
the batch threads.
"""

import asyncio
import time

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfllm.serving import protocol
from tfllm.serving import servables
from tfllm.serving.servables import Recorder


class _Servicer:
    """Shared plumbing: metrics, error statuses, and running blocking work off the loop."""

    def __init__(self, manager, metrics, executor, max_bytes=None, admission=None):
        self._manager = manager
        self._admission = admission  # An InFlightLimit for inference calls, or None.
        self._max_bytes = max_bytes  # Largest decoded input tensor.
        self._recorder = Recorder(metrics, "GRPC")
        self._executor = executor

    async def _serve(self, context, api, model_name, work, response_type, admit=False):
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            if admit and self._admission is not None:
                with self._admission.admit():
                    return await work()
            return await work()
        except Exception as e:
            error = servables.as_serving_error(e, api, model_name)
            code = error.code
            context.set_code(error.code)
            context.set_details(error.message)
            return response_type()
        finally:
            self._recorder.observe(api, model_name, code, start)

    async def _blocking(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)


class PredictionServicer(_Servicer, prediction_service_pb2_grpc.PredictionServiceServicer):
    async def Predict(self, request, context):
        async def work():
            servable = self._manager.resolve(request.model_spec)
            inputs = {k: protocol.to_ndarray(v, k, self._max_bytes) for k, v in request.inputs.items()}
            name = servables.prepare_predict(servable, request.model_spec, inputs)
            outputs = await servable.run_async(name, inputs, self._executor)
            outputs = servables.filter_outputs(outputs, request.output_filter)
            response = predict_pb2.PredictResponse()
            servables.fill_spec(response.model_spec, servable, name)
            for key, value in outputs.items():
                response.outputs[key].CopyFrom(protocol.to_tensor_proto(value))
            return response
        return await self._serve(context, "predict", request.model_spec.name, work,
                                 predict_pb2.PredictResponse, admit=True)

    async def _run_examples(self, context, api, request, run, response_type):
        """Classify/Regress: `run(manager, request)` gives the result put into `response_type`."""
        async def work():
            servable, name, result = await self._blocking(run, self._manager, request)
            response = response_type(result=result)
            servables.fill_spec(response.model_spec, servable, name)
            return response
        return await self._serve(context, api, request.model_spec.name, work, response_type,
                                 admit=True)

    async def Classify(self, request, context):
        return await self._run_examples(context, "classify", request, servables.classify,
                                        classification_pb2.ClassificationResponse)

    async def Regress(self, request, context):
        return await self._run_examples(context, "regress", request, servables.regress,
                                        regression_pb2.RegressionResponse)

    async def GetModelMetadata(self, request, context):
        async def work():
            return servables.metadata(self._manager, request)[1]
        return await self._serve(context, "metadata", request.model_spec.name, work,
                                 get_model_metadata_pb2.GetModelMetadataResponse)

    async def MultiInference(self, request, context):
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details("MultiInference is not supported by this server")
        return inference_pb2.MultiInferenceResponse()


class ModelServicer(_Servicer, model_service_pb2_grpc.ModelServiceServicer):
    async def GetModelStatus(self, request, context):
        async def work():
            return servables.status(self._manager, request)
        return await self._serve(context, "status", request.model_spec.name, work,
                                 get_model_status_pb2.GetModelStatusResponse)

    async def HandleReloadConfigRequest(self, request, context):
        # TF Serving reports a rejected config in the response status, not the RPC's.
        response = model_management_pb2.ReloadConfigResponse()
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            await self._blocking(self._manager.reload, request.config)
        except Exception as e:
            error = servables.as_serving_error(e, "reload_config", "")
            code = error.code
            response.status.error_code = code.value[0]
            response.status.error_message = error.message
        finally:
            self._recorder.observe("reload_config", "", code, start)
        return response
