"""`libingest --help` lists every subcommand with its one-line help, and the README's command
table names every subcommand too."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from entrypoints.cli import build_parser, main

README = Path(__file__).resolve().parents[2] / "README.md"


def _subcommands() -> dict[str, str]:
    """Each subcommand's name and its help, as the parser holds them."""
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {choice.dest: choice.help or "" for choice in commands._choices_actions}
    return {name: helps.get(name, "") for name in commands.choices}


def test_help_lists_every_subcommand_with_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    listed = capsys.readouterr().out
    flat = " ".join(listed.split())

    assert exit_.value.code == 0
    for name, help_text in _subcommands().items():
        assert re.search(rf"^\s+{re.escape(name)}\b", listed, re.MULTILINE), name
        assert help_text and " ".join(help_text.split()) in flat, name


def test_the_readme_command_table_names_every_subcommand() -> None:
    table = README.read_text(encoding="utf-8").split("## Command line", 1)[1].split("##", 1)[0]

    assert [name for name in _subcommands() if f"`libingest {name}" not in table] == []
