# TF Serving image for HA-CNN embeddings.
#   docker build -t hacnn-serving --build-arg CHECKPOINT=runs/demo/train/best.keras .
#   docker run --rm -p 8500:8500 -p 8501:8501 hacnn-serving
# Stage 1 exports the checkpoint with the project's own exporter (self-checked, warm-up requests included);
# stage 2 serves it. The serving version must be >= the exporting TensorFlow (2.21): older servers reject ops that
# TF 2.21 writes, such as DisableCopyOnRead.
ARG SERVING_VERSION=2.21.0

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

FROM tensorflow/serving:${SERVING_VERSION}
COPY --from=export /models/hacnn /models/hacnn
ENV MODEL_NAME=hacnn
# 8500: gRPC (PredictionService), 8501: REST (/v1/models/hacnn:predict)
EXPOSE 8500 8501
