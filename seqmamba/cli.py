"""The `seqmamba` command: one word per job, each a module under `seqmamba/commands` with `main(argv)`.

Every command ends bad input the same way: one line naming the file and the problem, exit status 2; a file the
system refuses (permissions, a full or read-only disk) likewise, and Ctrl+C with one line and exit status 130.
"""

from __future__ import annotations

import errno
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
    except KeyboardInterrupt:  # training commands save and stop on their own; the others end here
        print(f"seqmamba {command}: stopped: interrupted (Ctrl+C) before it finished", file=sys.stderr)
        return 128 + signal.SIGINT
    except OSError as error:
        if error.filename is None and error.errno != errno.ENOSPC:
            raise
        print(f"seqmamba {command}: error: {os_error_line(error)}", file=sys.stderr)
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
