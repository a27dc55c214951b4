"""Size limits of the product code: no file over 400 lines, no function over 60.

A function that is a table (a literal mapping or list of rows, not logic) may say so with
`# size: table` on its `def` line. Run from the repository root; exits 1 naming each offender.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGES = ("kedge", "devicetwin", "edgecore", "mappers", "controllers", "cloudcore", "simulators")
MAX_FILE = 400
MAX_FUNCTION = 60
TABLE = "# size: table"


def offences(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    out = []
    if len(lines) > MAX_FILE:
        out.append(f"{path}: {len(lines)} lines (limit {MAX_FILE})")
    for node in ast.walk(ast.parse(text, str(path))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        length = (node.end_lineno or node.lineno) - start + 1
        if length > MAX_FUNCTION and TABLE not in lines[node.lineno - 1]:
            out.append(f"{path}:{node.lineno}: {node.name} is {length} lines "
                       f"(limit {MAX_FUNCTION})")  # fmt: skip
    return out


def main() -> int:
    found = [o for package in PACKAGES for path in sorted(Path(package).rglob("*.py"))
             for o in offences(path)]  # fmt: skip
    for offence in found:
        print(offence)  # noqa: T201 - the report
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
