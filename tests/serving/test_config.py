"""The container's TF Serving configuration (export/tf_serving/, the Dockerfile) read with TF Serving's schemas."""

import pathlib
import re

import pytest
import yaml

from hacnn_tf.serving.config import (
    BatchingParameters,
    read_batching_parameters,
    read_model_server_config,
    read_monitoring_config,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = ROOT / "export" / "tf_serving"


def dockerfile_flags() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r"^CMD \[(.*?)\]", text, re.S | re.M).group(1)
    return dict(flag.split("=", 1) for flag in re.findall(r'"--([^"]+)"', cmd))


def test_model_config_serves_the_exported_folder_with_a_version_policy():
    config = read_model_server_config(CONFIG / "models.config")
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == ("hacnn", "/models/hacnn", "tensorflow")
    assert model.model_version_policy.WhichOneof("policy_choice") == "latest"
    assert model.model_version_policy.latest.num_versions == 1
    # The Dockerfile copies the export (hacnn-tf export's saved_model-fp32 folder) where the config points.
    assert "COPY --from=export /models/saved_model-fp32/hacnn /models/hacnn" in (ROOT / "Dockerfile").read_text()


def test_batching_parameters_parse_with_tf_servings_rules():
    params = read_batching_parameters(CONFIG / "batching_parameters.txt")
    assert params.max_batch_size.value == 64
    assert 0 < params.batch_timeout_micros.value <= 10_000
    assert params.num_batch_threads.value >= 1 and params.max_enqueued_batches.value >= 1
    assert list(params.allowed_batch_sizes) == [1, 2, 4, 8, 16, 32, 64]


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "max_batch_size { value: 64 }\nallowed_batch_sizes: 8\nallowed_batch_sizes: 32\n",
            "must equal max_batch_size",
        ),
        (
            "max_batch_size { value: 64 }\nallowed_batch_sizes: 32\nallowed_batch_sizes: 8\nallowed_batch_sizes: 64\n",
            "increasing",
        ),
        ("max_batch_size: 64\n", "not a valid BatchingParameters"),  # a wrapper message, as the server's schema has it
        ("max_batch_sise { value: 64 }\n", "not a valid BatchingParameters"),
    ],
)
def test_bad_batching_parameters_are_refused(tmp_path, text, message):
    path = tmp_path / "batching.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_batching_parameters(path)


def test_batching_schema_has_tf_servings_field_numbers():
    """The wire numbers of tensorflow/serving's session_bundle_config.proto (a renumbered field would still parse
    from text, so they are pinned here)."""
    numbers = {f.name: f.number for f in BatchingParameters.DESCRIPTOR.fields}
    assert numbers == {
        "max_batch_size": 1,
        "batch_timeout_micros": 2,
        "max_enqueued_batches": 3,
        "num_batch_threads": 4,
        "thread_pool_name": 5,
        "allowed_batch_sizes": 6,
        "pad_variable_length_inputs": 7,
    }


def test_monitoring_exposes_prometheus_metrics_at_the_documented_path():
    config = read_monitoring_config(CONFIG / "monitoring.config")
    assert config.prometheus_config.enable
    assert config.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_dockerfile_passes_each_config_file_to_the_server():
    flags = dockerfile_flags()
    assert flags["enable_batching"] == "true"
    copied = re.search(r"^COPY export/tf_serving/.*?(/models/config/)$", (ROOT / "Dockerfile").read_text(), re.S | re.M)
    assert copied
    for flag, name in (
        ("model_config_file", "models.config"),
        ("batching_parameters_file", "batching_parameters.txt"),
        ("monitoring_config_file", "monitoring.config"),
    ):
        assert flags[flag] == f"/models/config/{name}" and (CONFIG / name).exists()
        assert f"export/tf_serving/{name}" in copied.group(0)


def test_kubernetes_manifest_probes_the_model_and_exposes_both_ports():
    deployment, service = yaml.safe_load_all((CONFIG / "kubernetes.yaml").read_text())
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"grpc": 8500, "http": 8501}
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1/models/hacnn/metadata"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert (
        annotations["prometheus.io/path"] == read_monitoring_config(CONFIG / "monitoring.config").prometheus_config.path
    )
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert {p["port"] for p in service["spec"]["ports"]} == {8500, 8501}
