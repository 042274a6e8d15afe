"""docker-compose.yml, checked without a Docker engine: every command is a real `callcenter`
subcommand, every service has an image, long-running ones a healthcheck, no secret is
written in plain text, dependencies make sense, and the proxy points at the API."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from callcenter.cli import _parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROXY_CONF = ROOT / "deploy" / "proxy" / "nginx.conf"
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|PASSWD|API_KEY", re.IGNORECASE)
REQUIRED_VARIABLE = re.compile(r"\$\{[A-Z_][A-Z0-9_]*:\?[^}]*\}")
URL_CREDENTIALS = re.compile(r"://[^/@\s:]+:(?P<password>[^@\s]*)@")


@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def one_shots() -> set[str]:
    """Services that run to completion (others wait for `service_completed_successfully`)."""
    return {name for name, service in services().items() if service.get("restart") == "no"}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): str(value) for key, value in env.items()}


def test_given_the_compose_file_then_the_stack_has_every_part() -> None:
    assert {
        "postgres",
        "redis",
        "asterisk",
        "migrate",
        "api",
        "proxy",
        "pbx-adapter",
        "worker",
        "beat",
    } <= set(services())


@pytest.mark.parametrize("name", sorted(services()))
def test_given_a_service_then_it_has_an_image_or_a_build(name: str) -> None:
    service = services()[name]
    assert service.get("image") or service.get("build"), name
    if service.get("build"):
        context = service["build"] if isinstance(service["build"], str) else "."
        assert (ROOT / context / "Dockerfile").is_file()


@pytest.mark.parametrize(
    "name", sorted(n for n, s in services().items() if s.get("command") and s.get("build"))
)
def test_given_a_callcenter_service_then_its_command_is_a_real_subcommand(name: str) -> None:
    command = services()[name]["command"]
    assert isinstance(command, list), "exec form: no shell between docker and the process"
    assert command[0] == "callcenter"
    try:
        args = _parser().parse_args(command[1:])
    except SystemExit:
        pytest.fail(f"{name}: `{' '.join(command)}` is not a valid callcenter command line")
    assert callable(getattr(args, "handler", None)), f"{command} names no command"


def test_given_the_image_then_it_installs_the_callcenter_command() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install" in dockerfile
    scripts = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'callcenter = "callcenter.cli:main"' in scripts


@pytest.mark.parametrize("name", sorted(set(services()) - one_shots()))
def test_given_a_long_running_service_then_it_has_a_healthcheck(name: str) -> None:
    healthcheck = services()[name].get("healthcheck") or {}
    test = healthcheck.get("test")
    assert test, name
    assert test[0] in {"CMD", "CMD-SHELL"}, name
    assert not healthcheck.get("disable"), name


def test_given_the_api_then_its_health_is_checked_on_api_health_and_it_has_two_replicas() -> None:
    api = services()["api"]
    assert any("/api/health" in part for part in api["healthcheck"]["test"])
    assert api["deploy"]["replicas"] == 2
    assert "ports" not in api, "replicas are reached through the proxy only"
    assert environment(api)["CALLCENTER_HOST"] == "0.0.0.0"


def test_given_every_environment_then_no_secret_is_written_in_plain_text() -> None:
    checked = 0
    for name, service in services().items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert REQUIRED_VARIABLE.fullmatch(value), f"{name}: {key} must be ${{VAR:?...}}"
                checked += 1
            if credentials := URL_CREDENTIALS.search(value):
                password = credentials.group("password")
                assert REQUIRED_VARIABLE.fullmatch(password), f"{name}: {key} has a password"
                checked += 1
    assert checked >= 5


@pytest.mark.parametrize("name", sorted(n for n, s in services().items() if s.get("depends_on")))
def test_given_dependencies_then_each_names_a_service_with_a_valid_condition(name: str) -> None:
    depends_on = services()[name]["depends_on"]
    assert isinstance(depends_on, dict), "long form: say what to wait for"
    for target, spec in depends_on.items():
        assert target in services(), f"{name} depends on unknown {target}"
        condition = spec["condition"]
        assert condition in CONDITIONS
        if condition == "service_healthy":
            assert services()[target].get("healthcheck"), f"{target} has no healthcheck"
        if condition == "service_completed_successfully":
            assert target in one_shots(), f"{target} never completes"


def test_given_the_app_services_then_they_wait_for_the_schema() -> None:
    for name in ("api", "pbx-adapter", "worker", "beat"):
        assert services()[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


@pytest.mark.parametrize("name", sorted(services()))
def test_given_bind_mounts_then_their_sources_are_in_the_repository(name: str) -> None:
    for volume in services()[name].get("volumes") or []:
        source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
        if source.startswith("."):
            assert (ROOT / source).exists(), f"{name} mounts missing {source}"
        else:
            assert source in (compose().get("volumes") or {}), f"{name}: undeclared {source}"


def test_given_the_proxy_then_it_balances_the_api_service_with_websocket_upgrades() -> None:
    proxy = services()["proxy"]
    mounted = [v.split(":")[0] for v in proxy["volumes"]]
    assert "./" + PROXY_CONF.relative_to(ROOT).as_posix() in mounted
    conf = PROXY_CONF.read_text(encoding="utf-8")
    api_port = environment(services()["api"])["CALLCENTER_PORT"]
    assert re.search(rf"server\s+api:{api_port}\b", conf), "upstream must be the api service"
    assert re.search(r"proxy_pass\s+http://callcenter_api;", conf)
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf
    assert any(str(port).endswith(":80") for port in proxy["ports"])


def test_given_the_sample_asterisk_then_ami_is_configured_from_the_environment() -> None:
    asterisk = services()["asterisk"]
    env = environment(asterisk)
    assert {"AMI_USERNAME", "AMI_SECRET"} <= set(env)
    assert not any(str(port).startswith("5038") for port in asterisk.get("ports", []))
    deploy = ROOT / "deploy" / "asterisk"
    entrypoint = (deploy / "entrypoint.sh").read_text(encoding="utf-8")
    assert "secret = ${AMI_SECRET}" in entrypoint
    assert "manager_user.conf" in (deploy / "manager.conf").read_text(encoding="utf-8")
    assert re.search(r"^\[support\]", (deploy / "queues.conf").read_text(), re.MULTILINE)
    app_env = environment(services()["pbx-adapter"])
    assert app_env["CALLCENTER_AMI_HOST"].endswith("asterisk}")
    assert app_env["CALLCENTER_AMI_USERNAME"] == env["AMI_USERNAME"]
