"""The KubeRay manifests and the autoscaler YAML parse and say what docs/cluster.md says they do, token auth
and who can reach the dashboard included."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import jsonschema
import ray
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERAY = ROOT / "cluster" / "kuberay"


TOKEN_SECRET = "corrvos-ray-token"
RAY_PORTS = {6379, 8265, 10001}


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _documents(path: Path) -> dict[str, dict]:
    """The objects of a multi-document manifest, by kind."""
    return {doc["kind"]: doc for doc in yaml.safe_load_all(path.read_text()) if doc}


def _check_token_auth(spec: dict) -> None:
    """Ray token auth on: authOptions for the operator's own containers, RAY_AUTH_* from the Secret in every Ray pod."""
    assert spec["authOptions"] == {"mode": "token", "secretName": TOKEN_SECRET}
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    for container in (c for g in groups for c in _containers(g)):
        env = {e["name"]: e for e in container["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": TOKEN_SECRET, "key": "auth_token"}
        assert "value" not in env["RAY_AUTH_TOKEN"] and "RAY_AUTH_TOKEN_PATH" not in env


def _check_head_reachable_inside_only(spec: dict) -> None:
    """The head's Service stays inside the Kubernetes cluster: ClusterIP, no Ingress, no host ports."""
    head = spec["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP" and head["enableIngress"] is False
    assert all("hostPort" not in p for p in _containers(head)[0]["ports"])


def _containers(group: dict) -> list[dict]:
    return group["template"]["spec"]["containers"]


def _check_head_and_gpu_workers(spec: dict) -> None:
    head = _containers(spec["headGroupSpec"])[0]
    assert "nvidia.com/gpu" not in head["resources"]["limits"]
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert {p["containerPort"] for p in head["ports"]} >= {6379, 8265}
    gpu = [g for g in spec["workerGroupSpecs"] if g["groupName"] == "gpu"]
    assert len(gpu) == 1 and gpu[0]["minReplicas"] <= gpu[0]["replicas"] <= gpu[0]["maxReplicas"]
    worker = _containers(gpu[0])[0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
    for container in (head, worker):
        assert "YOUR-ORG" in container["image"]  # a placeholder, never a real registry by accident
        secrets = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
        assert secrets == {"AWS_ACCESS_KEY_ID": "corrvos-s3", "AWS_SECRET_ACCESS_KEY": "corrvos-s3",
                           "RAY_AUTH_TOKEN": TOKEN_SECRET}
    _check_token_auth(spec)
    _check_head_reachable_inside_only(spec)


def test_raycluster_has_a_cpu_head_and_a_gpu_worker_group():
    manifest = _documents(KUBERAY / "raycluster.yaml")["RayCluster"]
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayCluster"
    assert manifest["spec"]["rayVersion"] == ray.__version__
    _check_head_and_gpu_workers(manifest["spec"])
    for group in (manifest["spec"]["headGroupSpec"], manifest["spec"]["workerGroupSpecs"][0]):
        env = {e["name"]: e.get("value") for e in _containers(group)[0]["env"]}
        assert env["MLFLOW_TRACKING_URI"].startswith("http://")


def test_rayjob_runs_the_pipeline_on_a_shipped_config():
    manifest = _load(KUBERAY / "rayjob.yaml")
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayJob"
    words = shlex.split(manifest["spec"]["entrypoint"])
    assert words[:5] == ["python", "-m", "pipelines.cli", "run", "configs/stcn-released.yaml"]
    assert (ROOT / words[4]).is_file()
    overrides = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
    assert any(o.startswith("storage.root=s3://") for o in overrides)
    assert any(o.startswith("tracking.mlflow_uri=http://") for o in overrides)
    assert manifest["spec"]["shutdownAfterJobFinishes"] is True
    assert "working_dir" in yaml.safe_load(manifest["spec"]["runtimeEnvYAML"])
    _check_head_and_gpu_workers(manifest["spec"]["rayClusterSpec"])


def test_raycluster_pods_admit_only_their_own_cluster():
    documents = _documents(KUBERAY / "raycluster.yaml")
    name = documents["RayCluster"]["metadata"]["name"]
    policy = documents["NetworkPolicy"]["spec"]
    assert policy["podSelector"] == {"matchLabels": {"ray.io/cluster": name}} and policy["policyTypes"] == ["Ingress"]
    sources = [source for rule in policy["ingress"] for source in rule["from"]]
    assert sources and all(set(s) == {"podSelector"} for s in sources)  # pods of this namespace, no ipBlock
    assert {"ray.io/cluster": name} in [s["podSelector"]["matchLabels"] for s in sources]


def test_autoscaler_yaml_passes_rays_schema_and_has_gpu_workers():
    config = _load(ROOT / "cluster" / "autoscaler" / "aws.yaml")
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    assert config["provider"]["type"] == "aws"
    types = config["available_node_types"]
    assert config["head_node_type"] in types and types[config["head_node_type"]]["resources"] == {"CPU": 0}
    workers = [t for name, t in types.items() if name != config["head_node_type"]]
    assert workers and all(t["node_config"]["InstanceType"].startswith(("g", "p")) for t in workers)
    assert any("pip install" in c and "corrvos" in c for c in config["setup_commands"])


def test_autoscaler_cluster_uses_a_shipped_token_file_and_opens_no_ray_port():
    config = _load(ROOT / "cluster" / "autoscaler" / "aws.yaml")
    remote = [r for r, local in config["file_mounts"].items() if local.endswith("ray-auth-token")]
    assert len(remote) == 1 and not config["file_mounts"][remote[0]].startswith(".")  # from outside the project
    for commands in (config["head_start_ray_commands"], config["worker_start_ray_commands"]):
        start = [c for c in commands if "ray start" in c]
        assert start and all("RAY_AUTH_MODE=token" in c and f"RAY_AUTH_TOKEN_PATH={remote[0]}" in c for c in start)
    text = (ROOT / "cluster" / "autoscaler" / "aws.yaml").read_text()
    assert "RAY_AUTH_TOKEN=" not in text  # the token itself is never in the file
    rules = config["provider"].get("security_group", {}).get("IpPermissions", [])
    for rule in rules:  # Ray's own group admits SSH from anywhere and any port from the cluster's nodes only
        assert not RAY_PORTS & set(range(rule["FromPort"], rule["ToPort"] + 1)) or all(
            r["CidrIp"] != "0.0.0.0/0" for r in rule.get("IpRanges", []))
