"""Write docs/asyncapi.yaml from the code (`callcenter.realtime.asyncapi`).

Usage: .venv/bin/python scripts/asyncapi.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

from callcenter.realtime.asyncapi import render

TARGET = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.yaml"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET} is stale: run scripts/asyncapi.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
