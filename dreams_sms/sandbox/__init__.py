"""A local, stateful stand-in for the Dreams SMS provider.

Speaks the provider's wire format (see /work/shared/dreams-api.md and the
project README), keeps a record of every accepted message, and can be told
to misbehave. Run it with `python -m dreams_sms.sandbox --port 8025 --admin`.
"""

from .faults import Faults
from .server import SandboxServer, run
from .state import Outcome, Sandbox

__all__ = ["Faults", "Outcome", "Sandbox", "SandboxServer", "run"]
