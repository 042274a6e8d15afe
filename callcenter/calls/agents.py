"""How a PBX agent interface maps to the extension set on a user."""

from __future__ import annotations

import re

_INTERFACE = re.compile(r"^(?:[A-Za-z0-9_]+/)?(?P<ext>[^@/;\-]+)")


def extension_of(interface: str) -> str:
    """`Local/101@agents;1`, `PJSIP/101-00000a`, `SIP/101` and `101` all give `101`."""
    match = _INTERFACE.match(interface.strip())
    return match.group("ext") if match else interface.strip()
