"""Benchmark: PhoneIdentity.normalize against a bare phonenumbers parse + E.164 format.

Run from the repository root:

    .venv/bin/python bench/phones.py [--count 100000] [--distinct 2000] [--rounds 5]

(a) ``unique``: ``--count`` distinct inputs in the mixed formats seen on trunks and in
    spreadsheets, each normalised once (a fresh instance per round, so every call is a
    cache miss; ``identity_nocache`` is the same with the cache switched off).
(b) ``repeated``: ``--count`` calls over only ``--distinct`` different inputs (a busy line:
    the same callers again and again), a fresh instance per round, misses included.

The baseline is ``phonenumbers.format_number(phonenumbers.parse(raw, "RU"), E164)`` on the
same inputs, in the same process, with parse errors caught. It does less than
``normalize`` (no validity check, no local numbers, no extensions, no rejected reasons),
so it is an upper bound for "just call the library". Best of ``--rounds`` rounds each.
Figures are printed and written to ``bench/results/phones.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import phonenumbers

if TYPE_CHECKING:
    from callcenter.phones import PhoneIdentity

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "phones.json"

MOBILE_CODES = [f"9{n:02d}" for n in range(100)]
GEO_CODES = ["495", "499", "812", "383", "343", "831", "846", "843", "861", "863"]


def _load_identity() -> type[PhoneIdentity]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from callcenter.phones import PhoneIdentity

    return PhoneIdentity


def _sub(rnd: random.Random) -> str:
    return f"{rnd.randrange(10_000_000):07d}"


def _dashed(code: str, sub: str) -> str:
    return f"{code} {sub[:3]}-{sub[3:5]}-{sub[5:]}"


# kind → (weight, generator). Weights: roughly an inbound trunk plus spreadsheet imports.
def _generators() -> dict[str, tuple[int, Callable[[random.Random], str]]]:
    def mobile(rnd: random.Random) -> tuple[str, str]:
        return rnd.choice(MOBILE_CODES), _sub(rnd)

    def geo(rnd: random.Random) -> tuple[str, str]:
        return rnd.choice(GEO_CODES), _sub(rnd)

    def plus(rnd: random.Random) -> str:
        code, sub = mobile(rnd)
        return f"+7{code}{sub}"

    def seven(rnd: random.Random) -> str:
        code, sub = mobile(rnd)
        return f"7{code}{sub}"

    def eight(rnd: random.Random) -> str:
        code, sub = rnd.choice([mobile, geo])(rnd)
        return f"8{code}{sub}"

    def ten(rnd: random.Random) -> str:
        code, sub = rnd.choice([mobile, geo])(rnd)
        return f"{code}{sub}"

    def local(rnd: random.Random) -> str:
        sub = _sub(rnd)
        return rnd.choice([sub, f"{sub[:3]}-{sub[3:5]}-{sub[5:]}"])

    def formatted(rnd: random.Random) -> str:
        code, sub = rnd.choice([mobile, geo])(rnd)
        return rnd.choice(
            [f"+7 {_dashed(code, sub)}", f"8 ({code}) {sub[:3]}-{sub[3:5]}-{sub[5:]}"]
        )

    def foreign(rnd: random.Random) -> str:
        sub = f"{rnd.randrange(10_000):04d}"
        return rnd.choice(
            [
                f"+44 20 7946 {sub}",
                f"+380 44 {rnd.randrange(100, 1000)} {sub}",
                f"+49 30 {rnd.randrange(100, 1000)}{sub}",
                f"00 44 20 7946 {sub}",
                f"+1 201 555 {sub}",
            ]
        )

    def extension(rnd: random.Random) -> str:
        code, sub = geo(rnd)
        return f"8 ({code}) {sub[:3]}-{sub[3:5]}-{sub[5:]} доб. {rnd.randrange(1, 1000)}"

    def excel(rnd: random.Random) -> str:
        code, sub = mobile(rnd)
        return f"7{code}{sub}.0"

    def garbage(rnd: random.Random) -> str:
        return rnd.choice(
            [
                f"+7 0{rnd.randrange(10**8):08d}",
                f"{rnd.randrange(100)}",
                f"n/a {rnd.randrange(10**6)}",
                f"8{rnd.randrange(10**12):012d}",
            ]
        )

    return {
        "plus": (20, plus),
        "seven": (12, seven),
        "eight": (16, eight),
        "ten": (10, ten),
        "local": (8, local),
        "formatted": (14, formatted),
        "foreign": (8, foreign),
        "extension": (4, extension),
        "excel": (4, excel),
        "garbage": (4, garbage),
    }


def generate(count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` distinct (kind, raw) pairs."""
    rnd = random.Random(seed)
    generators = _generators()
    kinds = list(generators)
    weights = [generators[k][0] for k in kinds]
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    while len(out) < count:
        kind = rnd.choices(kinds, weights)[0]
        raw = generators[kind][1](rnd)
        if raw not in seen:
            seen.add(raw)
            out.append((kind, raw))
    return out


def raw_library(inputs: Iterable[str]) -> None:
    parse = phonenumbers.parse
    fmt = phonenumbers.format_number
    e164 = phonenumbers.PhoneNumberFormat.E164
    error = phonenumbers.NumberParseException
    for raw in inputs:
        try:
            fmt(parse(raw, "RU"), e164)
        except error:
            continue


def best_rates(runs: dict[str, Callable[[], None]], calls: int, rounds: int) -> dict[str, float]:
    """Calls per second, best of ``rounds``; the contenders alternate inside each round so
    that a noisy machine slows them down alike."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            gc.collect()
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: calls / seconds for name, seconds in best.items()}


def compare(
    identity_cls: type[PhoneIdentity], inputs: list[str], rounds: int
) -> dict[str, float | int]:
    def ours(cache_size: int) -> Callable[[], None]:
        def run() -> None:
            normalize = identity_cls(region="RU", area_code="495", cache_size=cache_size).normalize
            for raw in inputs:
                normalize(raw)

        return run

    rates = best_rates(
        {"raw": lambda: raw_library(inputs), "cached": ours(65536), "nocache": ours(0)},
        len(inputs),
        rounds,
    )
    return {
        "calls": len(inputs),
        "distinct": len(set(inputs)),
        "raw_phonenumbers_per_s": round(rates["raw"]),
        "identity_per_s": round(rates["cached"]),
        "identity_nocache_per_s": round(rates["nocache"]),
        "ratio_vs_raw": round(rates["cached"] / rates["raw"], 3),
        "ratio_nocache_vs_raw": round(rates["nocache"] / rates["raw"], 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--distinct", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    identity_cls = _load_identity()
    # Load the metadata of every region used before timing anything.
    raw_library(["+79161234567", "+442079460958", "+380441234567", "+49301234567", "+12015550123"])

    pairs = generate(args.count, args.seed)
    unique = [raw for _, raw in pairs]
    rnd = random.Random(args.seed + 1)
    pool = unique[: args.distinct]
    repeated = [rnd.choice(pool) for _ in range(args.count)]

    results: dict[str, object] = {
        "python": platform.python_version(),
        "phonenumbers": phonenumbers.__version__,
        "machine": platform.machine(),
        "rounds": args.rounds,
        "unique": compare(identity_cls, unique, args.rounds),
        "repeated": compare(identity_cls, repeated, args.rounds),
    }
    by_kind: dict[str, dict[str, float | int]] = {}
    for kind in _generators():
        subset = [raw for k, raw in pairs if k == kind]
        by_kind[kind] = compare(identity_cls, subset, args.rounds)
    results["unique_by_kind"] = by_kind

    print(f"phonenumbers {phonenumbers.__version__}, Python {platform.python_version()}")
    header = f"{'set':<22}{'calls':>8}{'raw/s':>12}{'identity/s':>13}{'no cache/s':>13}{'ratio':>8}"
    print(header)
    rows: list[tuple[str, dict[str, float | int]]] = [
        ("unique", results["unique"]),  # type: ignore[list-item]
        ("repeated", results["repeated"]),  # type: ignore[list-item]
    ]
    rows += [(f"  unique/{kind}", figures) for kind, figures in by_kind.items()]
    for name, figures in rows:
        print(
            f"{name:<22}{figures['calls']:>8}{figures['raw_phonenumbers_per_s']:>12,}"
            f"{figures['identity_per_s']:>13,}{figures['identity_nocache_per_s']:>13,}"
            f"{figures['ratio_vs_raw']:>8.2f}"
        )

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
