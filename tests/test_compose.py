"""docker-compose.yml, without a Docker engine to run it on: valid against the Compose
specification's JSON schema, every image pinned, and every service the README's walkthrough
uses present and wired as the walkthrough needs."""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# Downloaded by the Makefile beside the virtual environment (docker-compose 1.29's wheel).
SCHEMA_WHEEL = (
    Path(sys.prefix) / "share" / "compose-spec" / "docker_compose-1.29.2-py2.py3-none-any.whl"
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def walkthrough() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## A cluster with docker compose", 1)[1].split("\n## ", 1)[0]


def test_the_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    assert SCHEMA_WHEEL.exists(), f"{SCHEMA_WHEEL} is missing: run `make` (the venv target)"
    with zipfile.ZipFile(SCHEMA_WHEEL) as wheel:
        schema = json.loads(wheel.read("compose/config/compose_spec.json"))
    validator = jsonschema.Draft201909Validator(schema)  # its $schema, which it misspells
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    # The schema has teeth: a misspelt key is refused.
    broken = {**compose, "services": {"x": {"image": "a:1", "depends": ["y"]}}}
    assert list(validator.iter_errors(broken))


def test_every_image_is_pinned_to_a_version(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image", "")
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image!r} is not pinned"
        if "build" in service:  # built here: from a Dockerfile whose base is pinned too
            context = ROOT / (
                service["build"]
                if isinstance(service["build"], str)
                else service["build"]["context"]
            )
            base = re.search(r"^FROM\s+(\S+)", (context / "Dockerfile").read_text(), re.M)
            assert base and re.search(r":\S*\d", base.group(1)), f"{name}: unpinned base image"


def test_the_walkthrough_has_its_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    needed = {
        "postgresql", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui",
        "ferry-worker", "ferry-agent", "ferry-api", "minio", "samba", "namenode", "datanode",
        "jaeger", "prometheus",
    }  # fmt: skip
    assert needed <= set(services)
    used = set(re.findall(r"docker compose (?:exec -T|logs) ([\w-]+)", walkthrough()))
    assert used and used <= set(services), used - set(services)
    for hostname in ("minio", "samba", "namenode"):
        assert (
            f"--server-hostname {hostname}" in walkthrough()
            or f"Hostname={hostname}" in walkthrough()
        )

    # Temporal starts on a database whose schema is set up, and Ferry once its namespace is.
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == (
        "service_completed_successfully"
    )
    for name in ("ferry-worker", "ferry-agent"):
        ferry = services[name]
        assert ferry["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
        assert ferry["depends_on"]["temporal-namespace"]["condition"] == (
            "service_completed_successfully"
        )
        # Nothing shared but Temporal and the staging bucket, in MinIO; the key each is given.
        environment = ferry["environment"]
        assert environment["FERRY_STAGING_URL"].startswith("s3://")
        assert urlparse(environment["AWS_ENDPOINT_URL_S3"]).hostname == "minio"
        assert environment["FERRY_SECRET_KEY"].startswith("${FERRY_SECRET_KEY:?")
        assert ferry["depends_on"]["minio-buckets"]["condition"] == "service_completed_successfully"
        # Their traces and metrics go to services of the file, over OTLP/HTTP.
        for signal in ("TRACES", "METRICS"):
            url = urlparse(ferry["environment"][f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"])
            assert url.scheme == "http" and url.hostname in services, url
    assert services["ferry-agent"]["command"] == ["worker", "--agent"]
    worker_volumes = {v.partition(":")[0] for v in services["ferry-worker"]["volumes"]}
    agent_volumes = {v.partition(":")[0] for v in services["ferry-agent"]["volumes"]}
    assert not worker_volumes & agent_volumes
    assert "FERRY_DATA_DIR=/var/lib/ferry" in (ROOT / "Dockerfile").read_text()
