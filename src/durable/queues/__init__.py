"""Wake-up queues: how a run asks for its next invocation."""

from durable.queues.base import WakeQueue

__all__ = ["WakeQueue"]
