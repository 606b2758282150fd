"""Fails when a function in src/ is longer than the limit (default 80 lines).

Usage: python scripts/lint/function_length.py [--max 80] [PATH ...]   (default PATH: src)

A function's length is from its `def` line to its last line, decorators and docstring
included. Prints one `file:line name (N lines)` per offender and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def long_functions(paths: list[Path], limit: int) -> list[tuple[str, int, str, int]]:
    rows = []
    for root in paths:
        for f in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            tree = ast.parse(f.read_text(encoding="utf-8"), filename=str(f))
            for n in ast.walk(tree):
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (n.end_lineno or n.lineno) - n.lineno + 1
                    if length > limit:
                        rows.append((str(f), n.lineno, n.name, length))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path, default=[Path("src")])
    ap.add_argument("--max", type=int, default=80)
    args = ap.parse_args()
    rows = long_functions(args.paths, args.max)
    for f, line, name, length in rows:
        print(f"{f}:{line} {name} ({length} lines > {args.max})")
    return 1 if rows else 0


if __name__ == "__main__":
    sys.exit(main())
