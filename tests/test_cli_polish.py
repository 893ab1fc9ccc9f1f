"""The command line's manners: help on every option, --version, -v anywhere, exit codes 2 and 3."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

import knockoff
from knockoff.cli.app import EXIT_BAD_INPUT, EXIT_INTERNAL, build_parser, main
from knockoff.errors import ConfigError


def walk(parser: argparse.ArgumentParser, path: str = "knockoff") -> Iterator[tuple[str, argparse.Action]]:
    """Every option and positional of every (sub)command, with the command's path."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield from walk(subparser, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_walk_reaches_nested_subcommands():
    paths = {path for path, _ in walk(build_parser())}
    assert {"knockoff", "knockoff index build", "knockoff scan", "knockoff make-set", "knockoff demo"} <= paths


def test_every_option_and_positional_has_help():
    missing = [f"{path}: {'/'.join(action.option_strings) or action.dest}"
               for path, action in walk(build_parser())
               if not action.help or action.help == argparse.SUPPRESS]
    assert missing == []


def test_every_subcommand_has_help_in_the_listing():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in subparsers._choices_actions}
    assert set(helps) == set(subparsers.choices) and all(helps.values()), helps


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"knockoff {knockoff.__version__}"


def test_engine_option_lists_the_engines(capsys):
    assert main(["index", "build", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "auto, clip, perceptual" in out


@pytest.mark.parametrize(
    "argv, verbose",
    [
        (["engines"], 0),
        (["-v", "engines"], 1),
        (["engines", "-v"], 1),
        (["engines", "-vv"], 2),
        (["index", "build", "cat", "--out", "o", "-v"], 1),
        (["make-set", "out", "--verbose"], 1),
        (["-vv", "scan", "f", "--index", "i", "--out", "o"], 2),
    ],
)
def test_verbose_before_or_after_the_subcommand(argv, verbose):
    assert build_parser().parse_args(argv).verbose == verbose


def _break_engines(monkeypatch, error: Exception) -> None:
    def broken() -> dict[str, str]:
        raise error

    monkeypatch.setattr("knockoff.embedders.base.describe_embedders", broken)


def test_an_internal_error_exits_3_with_one_line(monkeypatch, capsys):
    _break_engines(monkeypatch, ZeroDivisionError("division by zero"))
    assert main(["engines"]) == EXIT_INTERNAL == 3
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "internal error" in err and "ZeroDivisionError" in err
    assert "Traceback" not in err and "-v" in err


def test_an_internal_error_shows_the_traceback_with_v(monkeypatch, capsys):
    _break_engines(monkeypatch, KeyError("oops"))
    assert main(["engines", "-v"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError" in err and "internal error" in err.strip().splitlines()[-1]


def test_a_knockoff_error_is_bad_input_exit_2(monkeypatch, capsys):
    _break_engines(monkeypatch, ConfigError("size must be positive"))
    assert main(["engines"]) == EXIT_BAD_INPUT == 2
    assert capsys.readouterr().err.strip() == "knockoff: error: size must be positive"


def test_a_bad_make_set_size_is_exit_2(tmp_path, capsys):
    assert main(["make-set", str(tmp_path / "s"), "--size", "2"]) == 2
    assert "--size must be at least 4" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_the_one_time_model_preparation_is_shown_without_v(monkeypatch, caplog):
    """A first check derives the OCR models (10-30 s): its INFO line shows at the default level, other INFO does not."""
    import logging

    def engines_that_log() -> dict[str, str]:
        logging.getLogger("knockoff.match.ocr_int8").info("preparing the int8 models once")
        logging.getLogger("knockoff.match.text").info("chatter")
        return {}

    monkeypatch.setattr("knockoff.embedders.base.describe_embedders", engines_that_log)
    before = logging.getLogger("knockoff.match.ocr_int8").level
    monkeypatch.setattr(logging.getLogger(), "level", logging.WARNING)  # the command's default level
    main(["engines"])
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == ["preparing the int8 models once"]
    assert logging.getLogger("knockoff.match.ocr_int8").level == before
