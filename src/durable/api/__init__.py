"""The HTTP API: a Powertools resolver over `durable.Client` (see `durable.api.app`)."""

from durable.api.app import app_for, build_app, handle

__all__ = ["app_for", "build_app", "handle"]
