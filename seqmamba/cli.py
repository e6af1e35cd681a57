"""The `seqmamba` command: one word per job, each a module under `seqmamba/commands` with `main(argv)`.

Every command ends bad input the same way: one line naming the file and the problem, exit status 2.
"""

from __future__ import annotations

import importlib
import signal
import sys

from seqmamba.errors import UserFacingError

COMMANDS = {  # word -> (module with main(argv), one line of help)
    "pretrain": ("seqmamba.commands.pretrain", "train a DNA language model on a FASTA genome"),
    "finetune": ("seqmamba.commands.finetune", "fine-tune a DNA model to tell species apart"),
    "classify": ("seqmamba.commands.classify", "label reads (FASTA/FASTQ, gzip) with a fine-tuned species model"),
    "audio": ("seqmamba.commands.audio", "audio train | generate: waveform models (SaShiMi U-Net of Mamba blocks)"),
    "sc09": ("seqmamba.commands.sc09", "sc09 train-classifier | score: digit classifier, FID / IS / mIS / AM / NDB"),
    "data": ("seqmamba.commands.data", "data fetch | apes | make-digits | make-piano: datasets and stand-ins"),
    "app": ("seqmamba.commands.app", "the local web page over a folder of runs: Runs, Classify, Generate, Score"),
    "report": ("seqmamba.commands.report", "write RUN_DIR/report.html, one self-contained page of a run"),
}


def usage() -> str:
    """The text of `seqmamba --help`."""
    lines = ["usage: seqmamba COMMAND [--help] ...", "", "commands:"]
    lines += [f"  {word:<10} {text}" for word, (_, text) in COMMANDS.items()]
    lines += ["", "`seqmamba COMMAND --help` lists a command's settings."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point; bad input ends with one line naming the file and the problem (exit 2), a signal with a resume hint."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"seqmamba: unknown command {command!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        importlib.import_module(COMMANDS[command][0]).main(rest)
    except UserFacingError as error:
        if error.shown:
            print(f"seqmamba {command}: {error.label}: {error}", file=sys.stderr)
        return error.exit_status
    return 0


def entry_point() -> None:
    """The console script: a closed pipe (`seqmamba --help | head`) ends quietly, as other Unix tools do."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
