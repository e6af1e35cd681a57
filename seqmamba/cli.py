"""The `seqmamba` command: `seqmamba WORD [SUBWORD] --flags`, every word a typed function parsed by jsonargparse.

COMMANDS is the whole command line: word -> function, or word -> subword -> function. A function's signature is
its flags (required arguments become positionals, keyword-only ones `--flags`, `Args:` docstrings their help);
the training words take their argv to LightningCLI instead, for `--config`, `--model.*`, `--data.*`, `--trainer.*`.
Old flag spellings are rewritten in one place (OLD_FLAGS) with a notice. Bad input ends the same way for every
word: one line naming the file or setting and the problem, exit status 2.
A file the system refuses (permissions, a full or read-only disk) ends likewise, and Ctrl+C with one line
and exit status 130.
"""

from __future__ import annotations

import errno
import inspect
import re
import signal
import sys
import typing
from argparse import SUPPRESS, Action, ArgumentError
from collections.abc import Callable
from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser

from seqmamba.commands import app, audio, classify, data, finetune, pretrain, report, sc09
from seqmamba.errors import HelpRequested, InputError, UserFacingError

COMMANDS: dict[str, Callable | dict[str, Callable]] = {
    "pretrain": pretrain.main,
    "finetune": finetune.main,
    "classify": classify.classify,
    "audio": {"train": audio.train, "generate": audio.generate},
    "sc09": {"train-classifier": sc09.train_classifier, "score": sc09.score},
    "data": {"fetch": data.fetch, "apes": data.apes, "make-digits": data.make_digits, "make-piano": data.make_piano},
    "app": app.app,
    "report": report.report,
}
TRAINING = {pretrain.main, finetune.main, audio.train, sc09.train_classifier}  # LightningCLI parses their argv
HELP_FLAGS = ("-h", "--help", "--help-all")

OLD_FLAGS = {  # old spelling -> new; accepted with a notice for one release (remove in the next)
    "--run_dir": "--out", "-o": "--out", "--dest": "--out", "--json": "--out", "--classifier": "--ckpt",
    "--seed_everything": "--seed", "--batch-size": "--batch_size", "--batch-tokens": "--batch_tokens",
    "--min-confidence": "--min_confidence", "--top-p": "--top_p", "--no-cuda-graphs": "--cuda_graphs=false",
    "--drop-low": "--drop_low", "--drop-high": "--drop_high", "--ndb-bins": "--ndb_bins",
    "--mis-pairs": "--mis_pairs", "--base-url": "--base_url", "--per-voice": "--per_voice",
}


def modern_flags(word: str, argv: list[str], training: bool) -> list[str]:
    """argv with old flag spellings replaced, one notice on stderr per old spelling used."""
    new_argv, noticed = [], set()
    for i, token in enumerate(argv):
        flag, equals, value = token.partition("=")
        new = OLD_FLAGS.get(flag)
        if training and flag == "--data" and not equals and i + 1 < len(argv) and Path(argv[i + 1]).is_dir():
            new = "--data.root"  # `--data DIR` was short for --data.root DIR; `--data X.yaml` is a data config
        if new is None:
            new_argv.append(token)
            continue
        if flag not in noticed:
            noticed.add(flag)
            print(f"seqmamba {word}: {flag} is now {new}; the old spelling works until the next release",
                  file=sys.stderr)
        new_argv.append(new + equals + value)
    return new_argv


def word_parser(prog: str, function: Callable) -> ArgumentParser:
    """The parser of a typed command: `--config YAML`, then the function's arguments.

    Lists of files are positionals (`seqmamba classify a.fa b.fa`, not a JSON list: one or more, or any number
    where the argument has a default); a keyword list of tuples is a repeatable flag taking that many values
    (`--paired R1 R2`).
    """
    parser = ArgumentParser(prog=prog, description=first_line(function.__doc__), exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML file of these settings (keys as the flags)")
    hints, parameters = typing.get_type_hints(function), inspect.signature(function).parameters
    many = [name for name, p in parameters.items() if p.kind is p.POSITIONAL_OR_KEYWORD
            and typing.get_origin(hints[name]) is list]
    groups = [name for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY and typing.get_origin(hints[name]) is list
              and typing.get_origin(typing.get_args(hints[name])[0]) is tuple]
    parser.add_function_arguments(function, as_group=False, as_positional=True, skip={*many, *groups})
    for name in many:
        optional = parameters[name].default is not parameters[name].empty
        parser.add_argument(name, nargs="*" if optional else "+", type=typing.get_args(hints[name])[0],
                            default=[] if optional else None, help=argument_help(function, name))
    for name in groups:
        members = typing.get_args(typing.get_args(hints[name])[0])
        parser.add_argument(f"--{name}", nargs=len(members), action="append", type=str, default=[],
                            metavar=tuple(f"{name.upper()}{k + 1}" for k in range(len(members))),
                            help=argument_help(function, name))
    return parser


def argument_help(function: Callable, name: str) -> str:
    """The `name: ...` line of a function's `Args:` docstring section."""
    lines = [line.strip() for line in (function.__doc__ or "").splitlines()]
    return next((line.partition(":")[2].strip() for line in lines if line.startswith(f"{name}:")), "")


def first_line(text: str | None) -> str:
    """What a word does: the first line of its docstring."""
    return (text or "").strip().splitlines()[0] if text else ""


def choices(action: Action) -> list[str]:
    """Valid values of a setting: argparse choices, a Literal's values, or true/false."""
    if action.choices:
        return [str(choice) for choice in action.choices]
    hint = getattr(action, "_typehint", None)
    values = [arg for arg in typing.get_args(hint) if arg is not type(None)] if typing.get_origin(hint) is typing.Union \
        else [hint]
    literal = [v for arg in values if typing.get_origin(arg) is typing.Literal for v in typing.get_args(arg)]
    return [str(v) for v in literal] or (["true", "false"] if hint is bool else [])


def flag_of(action: Action) -> str:
    """The long spelling of a setting (`--config`, not `-c` nor `--list+`), or a positional's name."""
    long = [flag for flag in action.option_strings if flag.startswith("--") and not flag.endswith("+")]
    return long[0] if long else action.dest.upper()


def type_name(hint: object) -> str:
    """`int`, `str | None`, `MambaLMConfig | None`: a setting's type where its help says nothing."""
    text = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
    return re.sub(r"\b[a-z_][\w]*\.", "", text)  # module paths off: seqmamba.nn.lm.MambaLMConfig -> MambaLMConfig


def setting_line(action: Action) -> str:
    """One setting: its flag, what it does (or its type), valid choices, default (or 'required')."""
    hint = getattr(action, "_typehint", None)
    words = [first_line(action.help) if action.help else type_name(hint)]
    if valid := choices(action):
        words.append(f"[{'|'.join(valid)}]")
    default = action.default
    if action.required or (not action.option_strings and action.nargs != "*"):
        words.append("(required)")
    elif default not in (None, SUPPRESS, "") and isinstance(default, (str, int, float, Path, list, tuple)):
        words.append(f"(default: {default})")
    return f"  {flag_of(action):<34} {' '.join(words)}".rstrip()


def section(action: Action, groups: set[str]) -> str:
    """'model' for --model.lr and --model, 'lightning' for Lightning's own (--trainer.*, --optimizer), '' for the rest."""
    name = action.dest.partition(".")[0]
    if name in ("trainer", "optimizer", "lr_scheduler"):
        return "lightning"
    return name if name in groups else ""


def help_text(parser: ArgumentParser, prog: str, description: str, show_all: bool) -> str:
    """`seqmamba WORD --help`: usage, what the word does, then its settings one line each (Lightning's last)."""
    actions = [a for a in parser._actions if a.help != SUPPRESS and a.dest not in ("help", "print_config")
               and not a.dest.endswith(".help") and "--print_shtab" not in a.option_strings]
    groups = {action.dest.partition(".")[0] for action in actions if "." in action.dest}
    sections: dict[str, list[Action]] = {}
    for action in actions:
        sections.setdefault(section(action, groups), []).append(action)
    required = [f"{flag_of(a)} {a.dest.rpartition('.')[2].upper()}" for a in actions if a.required and a.option_strings]
    positionals = [f"[{a.dest.upper()} ...]" if a.nargs == "*" else f"{a.dest.upper()}{' ...' if a.nargs == '+' else ''}"
                   for a in actions if not a.option_strings]
    groups = [f"[--{name}.* ...]" for name in sections if name in ("model", "data")] + \
        (["[--trainer.* ...]"] if "lightning" in sections else [])
    lines = [f"usage: {' '.join([prog, *required, '[settings]', *groups, *positionals])}", "", description]
    titles = {"": "settings:", "model": "model settings (--model.*):", "data": "data settings (--data.*):",
              "lightning": "Lightning's settings (--trainer.*, --optimizer, --lr_scheduler):"}
    for name in sorted(sections, key=list(titles).index):
        if name == "lightning" and not show_all:
            lines += ["", f"Lightning's trainer settings (--trainer.*): `{prog} --help-all` lists them too."]
            continue
        lines += ["", titles[name], *map(setting_line, sections[name])]
    return "\n".join(lines)


def usage() -> str:
    """The text of `seqmamba --help`, or of `seqmamba WORD --help` for a word with subwords."""
    lines = ["usage: seqmamba WORD [SUBWORD] [--help] ...", "", "words:"]
    for word, target in COMMANDS.items():
        subwords = target.items() if isinstance(target, dict) else [("", target)]
        lines += [f"  {f'{word} {sub}'.strip():<24} {first_line(function.__doc__)}" for sub, function in subwords]
    lines += ["", "`seqmamba WORD [SUBWORD] --help` lists its settings, one line each."]
    return "\n".join(lines)


def group_usage(word: str, subwords: dict[str, Callable]) -> str:
    """`seqmamba audio --help`: the subwords and what each does."""
    lines = [f"usage: seqmamba {word} {{{','.join(subwords)}}} [--help] ...", "", f"subwords of {word}:"]
    lines += [f"  {sub:<18} {first_line(function.__doc__)}" for sub, function in subwords.items()]
    return "\n".join(lines)


def find_command(argv: list[str]) -> tuple[str, Callable, list[str]]:
    """WORD [SUBWORD] -> the prog name, its function and the rest of argv; an unknown word is one line."""
    word, rest = argv[0], argv[1:]
    if word not in COMMANDS:
        raise InputError(word, f"unknown word; the words are {', '.join(COMMANDS)} (`seqmamba --help`)")
    target = COMMANDS[word]
    if callable(target):
        return word, target, rest
    if rest and rest[0] in target:
        return f"{word} {rest[0]}", target[rest[0]], rest[1:]
    raise InputError(rest[0] if rest else "subword", f"choose one of {', '.join(target)} (then --help)")


def word_help(name: str, function: Callable, show_all: bool = False) -> str:
    """`seqmamba NAME --help` (or --help-all): a training word's parser comes from LightningCLI, asked for --help."""
    try:
        parser = function(["--help"]) if function in TRAINING else word_parser(f"seqmamba {name}", function)
    except HelpRequested as request:
        parser = request.parser
    return help_text(parser, f"seqmamba {name}", first_line(function.__doc__), show_all)


def run(name: str, function: Callable, argv: list[str]) -> object:
    """Parse argv for one word and call its function; --help prints the word's help instead."""
    argv = modern_flags(name, argv, function in TRAINING)
    if help_flag := next((flag for flag in argv if flag in HELP_FLAGS), None):
        print(word_help(name, function, help_flag == "--help-all"))
        return None
    try:
        if function in TRAINING:
            return function(argv)
        config = word_parser(f"seqmamba {name}", function).parse_args(argv)
        return function(**{key: config[key] for key in inspect.signature(function).parameters})
    except ArgumentError as error:
        raise parser_error(error) from None


def parser_error(error: Exception) -> InputError:
    """jsonargparse's multi-line error -> one line naming the flag (a nested dataclass field by its whole key)."""
    lines = [line.strip().removeprefix("- ") for line in str(error).splitlines() if line.strip()]
    first = lines[0] if lines else "invalid arguments"
    keys = [match[1] for line in lines if (match := re.match(r'Parser key "([^"]+)":', line))]
    detail = (next((line for line in lines[1:] if line.startswith(("Expected", "Unrecognized"))), None)
              or next((line for line in lines[1:] if "not" in line), ""))
    if not keys or not first.startswith("Parser key"):
        return InputError("command line", f"{first} {detail}".strip()[:400] + " (run with --help for every setting)")
    problem = (first.partition(":")[2].strip() if len(keys) == 1 else "") or detail or lines[-1]
    if not_finite := re.fullmatch(r"Expected a <class 'float'>\. Got value: ([-+]?(nan|inf|infinity))", problem, re.I):
        problem = f"must be a finite number, got {not_finite[1]}"  # YAML reads nan and inf as words, not floats
    return InputError(f"--{'.'.join(keys)}", f"{problem[:400]} (run with --help for every setting)")


def main(argv: list[str] | None = None) -> int:
    """Entry point; bad input ends with one line naming the file and the problem (exit 2), a signal with a resume hint."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in HELP_FLAGS:
        print(usage())
        return 0
    name = "" if argv[0] not in COMMANDS else f" {argv[0]}"
    try:
        if isinstance(COMMANDS.get(argv[0]), dict) and (len(argv) == 1 or argv[1] in HELP_FLAGS):
            print(group_usage(argv[0], COMMANDS[argv[0]]))
            return 0
        word, function, rest = find_command(argv)
        name = f" {word}"
        run(word, function, rest)
    except UserFacingError as error:
        if error.shown:
            print(f"seqmamba{name}: {error.label}: {error}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:  # training commands save and stop on their own; the others end here
        print(f"seqmamba{name}: stopped: interrupted (Ctrl+C) before it finished", file=sys.stderr)
        return 128 + signal.SIGINT
    except OSError as error:
        if error.filename is None and error.errno != errno.ENOSPC:
            raise
        print(f"seqmamba{name}: error: {os_error_line(error)}", file=sys.stderr)
        return 2
    return 0


def os_error_line(error: OSError) -> str:
    """A file the system refused to read or write, as one line: the path, the reason, what to do."""
    where = f"{error.filename}: " if error.filename is not None else ""
    advice = {errno.ENOSPC: "free some space and run again", errno.EACCES: "check the file's permissions",
              errno.EROFS: "choose a writable folder", errno.ENOTDIR: "a folder in the path is a file"}
    reason = error.strerror or str(error)
    return f"{where}{reason}; {advice.get(error.errno, 'check the path')}"


def entry_point() -> None:
    """The console script: a closed pipe (`seqmamba --help | head`) ends quietly, as other Unix tools do."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
