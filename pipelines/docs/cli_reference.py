"""README's command reference, written from the parsers themselves: `python pipelines/docs/cli_reference.py`.

Rewrites the part of README.md between the two markers below; tests/test_cli.py checks that README matches.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from seqmamba.cli import COMMANDS, usage, word_help  # noqa: E402

BEGIN = "<!-- command reference: written by pipelines/docs/cli_reference.py from the parsers; do not edit -->"
END = "<!-- end of command reference -->"


def reference() -> str:
    """The reference section: `seqmamba --help`, then every word's `--help`."""
    parts = [BEGIN, "## Command reference", "", "```", usage(), "```"]
    for word, target in COMMANDS.items():
        for name, function in (target.items() if isinstance(target, dict) else [("", target)]):
            full = f"{word} {name}".strip()
            parts += ["", f"### `seqmamba {full}`", "", "```", word_help(full, function), "```"]
    return "\n".join([*parts, END])


def with_reference(readme: str) -> str:
    """README text with its reference section replaced by the current one."""
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"README.md: no command reference markers; put {BEGIN!r} and {END!r} where it goes")
    head, rest = readme.split(BEGIN, 1)
    return head + reference() + rest.split(END, 1)[1]


def main() -> None:
    """Rewrite README.md's reference (through a temporary file, renamed into place)."""
    readme = ROOT / "README.md"
    tmp = readme.with_name(".README.md.tmp")
    tmp.write_text(with_reference(readme.read_text()))
    tmp.replace(readme)
    print(f"{readme}: command reference rewritten")


if __name__ == "__main__":
    main()
