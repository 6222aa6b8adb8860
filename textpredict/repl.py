"""The interactive completion loop, driven entirely through callbacks.

:func:`run_repl` never touches a terminal or a model itself: it reads lines with
``read_line(prompt)``, prints with ``write(message)`` and completes text with
``complete(text, settings)``. The command-line interface plugs in ``input`` /
``click.echo`` and a model-backed ``complete``; tests plug in lists.

Each ``write`` call is one message without a trailing newline (the caller's
``write`` ends the line, as ``click.echo`` and ``print`` do); a message may span
several lines (``:help``, ``:settings``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from textpredict.sampling import (
    SAMPLER_NAMES,
    Sampler,
    make_sampler,
    validate_num_words,
    validate_positive_int,
    validate_sampler_name,
    validate_seed,
    validate_temperature,
    validate_top_p,
)

__all__ = ["PROMPT", "ReplSettings", "format_settings", "run_repl"]

#: The prompt passed to ``read_line``.
PROMPT = "> "


@dataclasses.dataclass(frozen=True)
class ReplSettings:
    """What the loop passes to ``complete`` with every line of text.

    Frozen: commands build a new instance with :func:`dataclasses.replace`, and
    every construction is validated, so an instance always holds valid values.
    """

    # How many candidate next words to rank and show (>= 1).
    k: int = 3
    # 0 = only rank the next words; N > 0 = also continue the text by N words.
    words: int = 0
    # Decoding strategy for the continuation, one of sampling.SAMPLER_NAMES.
    sampler: str = "greedy"
    # Softmax temperature T > 0 applied before sampling (ignored by "greedy").
    temperature: float = 1.0
    # Candidate-set size k >= 1 used by the "top-k" sampler.
    top_k: int = 40
    # Nucleus mass 0 < p <= 1 used by the "top-p" sampler.
    top_p: float = 0.9
    # Random seed (>= 0) for reproducible sampling; None = fresh randomness.
    seed: int | None = None

    def __post_init__(self) -> None:
        validate_positive_int(self.k, "k")
        validate_num_words(self.words, "words")
        validate_sampler_name(self.sampler, "sampler")
        validate_temperature(self.temperature, "temperature")
        validate_positive_int(self.top_k, "top_k")
        validate_top_p(self.top_p, "top_p")
        validate_seed(self.seed, "seed")

    def build_sampler(self) -> Sampler:
        """The :class:`~textpredict.sampling.Sampler` these settings describe."""
        return make_sampler(
            self.sampler, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p
        )


def format_settings(settings: ReplSettings) -> str:
    """The settings, one ``name = value`` per line."""
    fields = dataclasses.fields(settings)
    width = max(len(f.name) for f in fields)
    lines = []
    for f in fields:
        value = getattr(settings, f.name)
        lines.append(f"  {f.name:<{width}} = {'none' if value is None else value}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# Commands
# --------------------------------------------------------------------------- #


class _Quit(Exception):
    """Raised by :quit, :exit or :q to leave the loop."""


def _parse_int(command: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{command} expects an integer, got {text!r}") from None


def _parse_float(command: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{command} expects a number, got {text!r}") from None


def _parse_seed(command: str, text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{command} expects an integer or 'none', got {text!r}") from None


# command -> (settings field, parser, argument placeholder, description)
_SETTERS: dict[str, tuple[str, Callable[[str, str], object], str, str]] = {
    ":k": ("k", _parse_int, "N", "number of next words to rank"),
    ":words": ("words", _parse_int, "N", "continue the text by N words (0 = rank only)"),
    ":sampler": (
        "sampler",
        lambda _command, text: text.lower(),
        "NAME",
        "decoding strategy: " + ", ".join(SAMPLER_NAMES),
    ),
    ":temperature": ("temperature", _parse_float, "X", "sampling temperature (> 0)"),
    ":top-k": ("top_k", _parse_int, "N", "candidates kept by the top-k sampler (>= 1)"),
    ":top-p": ("top_p", _parse_float, "X", "probability mass kept by top-p (0 < X <= 1)"),
    ":seed": ("seed", _parse_seed, "N|none", "random seed, or none for fresh randomness"),
}

# command -> description, for the commands that take no argument
_ACTIONS: dict[str, str] = {
    ":help": "show this help",
    ":settings": "show the current settings",
    ":quit": "leave (also :q, :exit, Ctrl-D or Ctrl-C)",
    ":exit": "leave",
    ":q": "leave",
}
_QUIT = (":quit", ":exit", ":q")


def _help_text(settings: ReplSettings) -> str:
    usage = [(f"{name} {arg}", desc) for name, (_, _, arg, desc) in _SETTERS.items()]
    usage += [(name, desc) for name, desc in _ACTIONS.items() if name not in _QUIT[1:]]
    width = max(len(u) for u, _ in usage)
    lines = [
        "Type some text to get the most likely next words; a blank line is ignored.",
        "Commands:",
        *(f"  {u:<{width}}  {desc}" for u, desc in usage),
        "Current settings:",
        format_settings(settings),
    ]
    return "\n".join(lines)


def _run_command(line: str, settings: ReplSettings, write: Callable[[str], None]) -> ReplSettings:
    """Execute one ``:command``; return the new settings or raise ValueError / _Quit."""
    command, *args = line.split()
    command = command.lower()
    if command in _ACTIONS:
        if args:
            raise ValueError(f"{command} takes no argument, got {' '.join(args)!r}")
        if command in _QUIT:
            raise _Quit
        write(_help_text(settings) if command == ":help" else format_settings(settings))
        return settings
    if command in _SETTERS:
        field, parse, placeholder, _ = _SETTERS[command]
        if len(args) != 1:
            raise ValueError(f"usage: {command} {placeholder}")
        new = dataclasses.replace(settings, **{field: parse(command, args[0])})
        write(f"{field} = {'none' if getattr(new, field) is None else getattr(new, field)}")
        return new
    raise ValueError(f"unknown command {command!r} (type :help for the list of commands)")


# --------------------------------------------------------------------------- #
# The loop
# --------------------------------------------------------------------------- #


def run_repl(
    complete: Callable[[str, ReplSettings], str],
    read_line: Callable[[str], str],
    write: Callable[[str], None],
    settings: ReplSettings | None = None,
) -> ReplSettings:
    """Read lines until the user quits; complete text, execute ``:commands``.

    Args:
        complete: ``complete(text, settings) -> str``, the answer to one line of
            text (the ranked next words, and the continuation if
            ``settings.words > 0``). A ``ValueError`` it raises is reported as
            one ``Error: ...`` line and the loop goes on; other exceptions
            propagate.
        read_line: ``read_line(prompt) -> str``, e.g. :func:`input`. Raising
            ``EOFError`` (Ctrl-D) or ``KeyboardInterrupt`` (Ctrl-C) ends the loop.
        write: Prints one message; expected to end the line itself.
        settings: Initial settings (default ``ReplSettings()``).

    Returns:
        The settings in force when the loop ended.

    Lines are stripped; blank lines are ignored, lines starting with ``:`` are
    commands (see ``:help``), any other line is passed to ``complete``. A bad
    command or value writes one ``Error: ...`` line and leaves the settings as
    they were. On EOF or Ctrl-C one empty message is written, so that the
    terminal's next prompt starts on a fresh line, and the loop returns.
    """
    settings = ReplSettings() if settings is None else settings
    while True:
        try:
            line = read_line(PROMPT)
        except (EOFError, KeyboardInterrupt):
            write("")
            return settings
        line = line.strip()
        if not line:
            continue
        try:
            if line.startswith(":"):
                settings = _run_command(line, settings, write)
            else:
                write(complete(line, settings))
        except _Quit:
            return settings
        except ValueError as error:
            write("Error: " + " ".join(str(error).splitlines()))
