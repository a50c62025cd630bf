# TF Serving image for HA-CNN embeddings, production flags included.
#   docker build -t hacnn-serving --build-arg CHECKPOINT=runs/demo/train/best.keras .
#   docker run --rm -p 8500:8500 -p 8501:8501 hacnn-serving
#   GPU: docker build -t hacnn-serving-gpu --build-arg SERVING_TAG=2.21.0-gpu ... ; docker run --gpus all ...
# Stage 1 exports the checkpoint with the project's own exporter (self-checked under TF Serving's session loader,
# warm-up requests included); stage 2 serves it with server-side batching, Prometheus metrics and a model config with
# a version policy (export/tf_serving/). The serving version must be >= the exporting TensorFlow (2.21): older servers
# reject ops that TF 2.21 writes, such as DisableCopyOnRead.
ARG SERVING_TAG=2.21.0

FROM python:3.11-slim AS export
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY hacnn_tf ./hacnn_tf
COPY export ./export
RUN pip install --no-cache-dir . \
 && pip install --no-cache-dir --no-deps tensorflow-serving-api==2.21.0
ARG CHECKPOINT=runs/demo/train/best.keras
ARG MODEL_VERSION=1
COPY ${CHECKPOINT} /checkpoint/model.keras
# Warm-up requests use a few synthetic images (generated here: nothing is downloaded).
RUN python -m hacnn_tf.data.synthetic --root /tmp/warmup --num-train-ids 2 --num-test-ids 2 --num-cameras 2 \
 && python -m export.saved_model /checkpoint/model.keras /models --model-name hacnn --version ${MODEL_VERSION} \
      --warmup-images /tmp/warmup/query

FROM tensorflow/serving:${SERVING_TAG}
COPY --from=export /models/saved_model-fp32/hacnn /models/hacnn
COPY export/tf_serving/models.config export/tf_serving/batching_parameters.txt export/tf_serving/monitoring.config \
     /models/config/
ENV MODEL_NAME=hacnn
# 8500: gRPC (PredictionService), 8501: REST (/v1/models/hacnn:predict, /monitoring/prometheus/metrics)
EXPOSE 8500 8501
# Appended to the image's entrypoint (tensorflow_model_server --port=8500 --rest_api_port=8501 ...); with
# --model_config_file the server ignores the entrypoint's --model_name/--model_base_path and serves what the file says.
CMD ["--model_config_file=/models/config/models.config", \
     "--model_config_file_poll_wait_seconds=60", \
     "--enable_batching=true", \
     "--batching_parameters_file=/models/config/batching_parameters.txt", \
     "--monitoring_config_file=/models/config/monitoring.config"]
