"""`sam local` against `durable dev`: where containers reach the stack, and `env.json`.

    sam local invoke / start-api ─► container ─► http://<bridge>:<moto port>  (moto)
                                                 the dev stack's table, queue, bucket

A container reaches the machine it runs on at the Docker bridge's address (172.17.0.1 by
default), never at 127.0.0.1, so `durable dev --host ADDRESS` binds the API and moto there:
either the bridge's address itself, or 0.0.0.0 (every interface; containers are then
told the bridge's address, this machine 127.0.0.1).

SAM CLI hands a function only the environment variables the template declares
(`--env-vars` silently drops the others), so template.yaml declares `DURABLE_ENDPOINT_URL`
and `DURABLE_REGION`, empty by default (empty means AWS's own endpoint and the region
Lambda sets). `env.json`, written into the stack's state directory, fills them in per
function, with the stack's table, queue, bucket, code version and task modules. The
credentials cannot be set there (`AWS_ACCESS_KEY_ID` and the like are reserved names a
template may not declare): SAM passes those of its own environment, so run it with fake
ones (`AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing`), never real ones.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import struct
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# The functions of template.yaml (their logical ids): env.json has a section for each.
FUNCTIONS = ("IamApiFunction", "JwtApiFunction", "WorkerFunction", "SweeperFunction")
ENV_JSON = "env.json"
# Docker's default bridge, and the address its gateway (this machine) has on it.
BRIDGE_INTERFACE = "docker0"
DEFAULT_BRIDGE_ADDRESS = "172.17.0.1"
WILDCARD = "0.0.0.0"
# What `sam local` is run with, so that no real credential is signed with (moto takes any).
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def check_host(value: str) -> str:
    """`value` if the API and moto can be asked to listen there; ValueError saying why not."""
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        try:
            socket.gethostbyname(value)
        except (OSError, UnicodeError):
            raise ValueError(
                f"{value!r} is neither an IPv4 address nor a host name this machine resolves "
                f"(give 127.0.0.1, {WILDCARD}, or the Docker bridge's address, usually "
                f"{DEFAULT_BRIDGE_ADDRESS})"
            ) from None
        return value
    if address.version != 4:
        raise ValueError(f"{value!r} is an IPv6 address: durable dev listens on IPv4 only")
    if not is_wildcard(value):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((value, 0))
            except OSError:
                raise ValueError(
                    f"{value} is not an address of this machine (with Docker, the bridge's "
                    f"address exists once its daemon runs: see `ip -4 addr show "
                    f"{BRIDGE_INTERFACE}`)"
                ) from None
    return value


def is_wildcard(host: str) -> bool:
    return host in (WILDCARD, "")


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine's loopback only (which no container can reach)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except (OSError, UnicodeError, ValueError):
            return False


def local_address(host: str) -> str:
    """The address this machine reaches a server bound to `host` at."""
    return "127.0.0.1" if is_wildcard(host) else host


def container_address(host: str) -> str:
    """The address a container reaches a server bound to `host` at (loopback: none does)."""
    return bridge_address() if is_wildcard(host) else host


def bridge_address(interface: str = BRIDGE_INTERFACE) -> str:
    """The IPv4 address of this machine on Docker's bridge, else Docker's default one."""
    try:
        import fcntl
    except ImportError:  # not Linux or a Unix: Docker Desktop's own name for the host
        return DEFAULT_BRIDGE_ADDRESS
    siocgifaddr = 0x8915  # Linux: the address of an interface, by name
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            answer = fcntl.ioctl(
                probe.fileno(), siocgifaddr, struct.pack("256s", interface.encode()[:15])
            )
        except OSError:  # no such interface (no Docker daemon yet), or not Linux
            return DEFAULT_BRIDGE_ADDRESS
    return socket.inet_ntoa(answer[20:24])


def with_host(url: str, host: str) -> str:
    """`url` with its host replaced by `host` (the port kept)."""
    parts = urlsplit(url)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def env_variables(
    *,
    endpoint_url: str,
    region: str,
    table_name: str,
    queue_url: str,
    bucket_name: str,
    code_version: str,
    task_modules: str,
) -> dict[str, str]:
    """The variables of every function: the stack's resources, reached from a container."""
    return {
        "DURABLE_ENDPOINT_URL": endpoint_url,
        "DURABLE_REGION": region,
        "DURABLE_TABLE_NAME": table_name,
        "DURABLE_QUEUE_URL": queue_url,
        "DURABLE_BUCKET_NAME": bucket_name,
        "DURABLE_CODE_VERSION": code_version,
        "DURABLE_TASK_MODULES": task_modules,
    }


def env_json(variables: dict[str, str]) -> dict[str, Any]:
    """`sam local ... --env-vars` content: the same variables for each function by logical
    id, and under "Parameters" (SAM's section for every function of the template)."""
    return {"Parameters": dict(variables), **{name: dict(variables) for name in FUNCTIONS}}


def write_env_json(directory: Path, variables: dict[str, str]) -> Path:
    """Write `env.json` into `directory` (atomically: a reader never sees half of it)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ENV_JSON
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(env_json(variables), indent=2) + "\n")
    os.replace(temporary, path)
    return path
