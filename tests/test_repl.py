"""Tests for textpredict.repl, driving run_repl with scripted input."""

from __future__ import annotations

import dataclasses

import pytest

from textpredict.repl import PROMPT, ReplSettings, format_settings, run_repl
from textpredict.sampling import SAMPLER_NAMES, TopPSampler


class Session:
    """Scripted read_line, recorded writes and complete calls."""

    def __init__(self, lines, end=EOFError):
        self._lines = iter(lines)
        self._end = end
        self.prompts: list[str] = []
        self.writes: list[str] = []
        self.calls: list[tuple[str, ReplSettings]] = []

    def read_line(self, prompt: str) -> str:
        self.prompts.append(prompt)
        try:
            return next(self._lines)
        except StopIteration:
            raise self._end from None

    def complete(self, text: str, settings: ReplSettings) -> str:
        self.calls.append((text, settings))
        return f"<{text}>"

    def run(self, settings=None, complete=None) -> ReplSettings:
        return run_repl(complete or self.complete, self.read_line, self.writes.append, settings)

    @property
    def errors(self) -> list[str]:
        return [w for w in self.writes if w.startswith("Error:")]


def run(lines, **kwargs):
    session = Session(lines)
    final = session.run(**kwargs)
    return session, final


# --------------------------------------------------------------------------- #
# Settings
# --------------------------------------------------------------------------- #


class TestReplSettings:
    def test_defaults(self):
        s = ReplSettings()
        assert (s.k, s.words, s.sampler, s.temperature, s.top_k, s.top_p, s.seed) == (
            3,
            0,
            "greedy",
            1.0,
            40,
            0.9,
            None,
        )

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("k", 0),
            ("words", -1),
            ("sampler", "beam"),
            ("temperature", 0.0),
            ("top_k", 0),
            ("top_p", 1.5),
            ("seed", -3),
        ],
    )
    def test_invalid_values_rejected(self, field, value):
        with pytest.raises(ValueError, match=field):
            ReplSettings(**{field: value})

    def test_frozen(self):
        with pytest.raises(dataclasses.FrozenInstanceError):
            ReplSettings().k = 5  # type: ignore[misc]

    def test_build_sampler(self):
        sampler = ReplSettings(sampler="top-p", top_p=0.5, temperature=0.8).build_sampler()
        assert isinstance(sampler, TopPSampler)
        assert (sampler.p, sampler.temperature) == (0.5, 0.8)

    def test_format_settings_lists_every_field(self):
        text = format_settings(ReplSettings(k=7))
        for f in dataclasses.fields(ReplSettings):
            assert f.name in text
        assert "7" in text and "none" in text


# --------------------------------------------------------------------------- #
# The loop
# --------------------------------------------------------------------------- #


class TestLoop:
    def test_text_lines_call_complete_with_current_settings(self):
        session, final = run(["the cat", ":k 5", "  sat on  ", ":words 2", "the"])
        assert [text for text, _ in session.calls] == ["the cat", "sat on", "the"]
        assert [s.k for _, s in session.calls] == [3, 5, 5]
        assert [s.words for _, s in session.calls] == [0, 0, 2]
        assert "<the cat>" in session.writes and "<sat on>" in session.writes
        assert final == ReplSettings(k=5, words=2)

    def test_prompt(self):
        session, _ = run(["a", "b"])
        assert session.prompts == [PROMPT] * 3
        assert PROMPT == "> "

    def test_blank_lines_ignored(self):
        session, _ = run(["", "   ", "\t", "hello\n"])
        assert [text for text, _ in session.calls] == ["hello"]
        assert session.writes == ["<hello>", ""]

    def test_initial_settings_used_and_returned_when_unchanged(self):
        start = ReplSettings(k=9, sampler="random")
        session, final = run(["x"], settings=start)
        assert session.calls == [("x", start)]
        assert final is start

    @pytest.mark.parametrize(
        ("command", "field", "value"),
        [
            (":k 7", "k", 7),
            (":words 4", "words", 4),
            (":words 0", "words", 0),
            (":sampler top-p", "sampler", "top-p"),
            (":sampler TOP-K", "sampler", "top-k"),
            (":temperature 0.25", "temperature", 0.25),
            (":temperature 2", "temperature", 2.0),
            (":top-k 12", "top_k", 12),
            (":top-p 0.5", "top_p", 0.5),
            (":top-p 1", "top_p", 1.0),
            (":seed 42", "seed", 42),
            (":seed 0", "seed", 0),
        ],
    )
    def test_every_setter_changes_its_setting(self, command, field, value):
        session, final = run([command, "text"])
        assert getattr(final, field) == value
        assert getattr(session.calls[0][1], field) == value
        assert session.errors == []
        # Nothing else changed.
        others = {f.name for f in dataclasses.fields(ReplSettings)} - {field}
        for name in others:
            assert getattr(final, name) == getattr(ReplSettings(), name)

    def test_seed_none(self):
        _, final = run([":seed none"], settings=ReplSettings(seed=5))
        assert final.seed is None

    def test_every_sampler_name_accepted(self):
        for name in SAMPLER_NAMES:
            _, final = run([f":sampler {name}"])
            assert final.sampler == name

    def test_setter_confirms(self):
        session, _ = run([":k 4"])
        assert session.writes[0] == "k = 4"

    @pytest.mark.parametrize(
        ("command", "expected"),
        [
            (":k 0", "k"),
            (":k three", "three"),
            (":k 2.5", "2.5"),
            (":k", "usage"),
            (":k 1 2", "usage"),
            (":words -1", "words"),
            (":sampler beam", "beam"),
            (":temperature 0", "temperature"),
            (":temperature -1", "temperature"),
            (":temperature hot", "hot"),
            (":temperature nan", "temperature"),
            (":top-k 0", "top_k"),
            (":top-p 0", "top_p"),
            (":top-p 1.5", "top_p"),
            (":seed -1", "seed"),
            (":seed abc", "abc"),
            (":frobnicate", "unknown command"),
            (":", "unknown command"),
            (":quit now", "no argument"),
            (":help me", "no argument"),
        ],
    )
    def test_bad_command_writes_one_error_and_continues(self, command, expected):
        session, final = run([command, "after"])
        assert len(session.errors) == 1
        error = session.errors[0]
        assert "\n" not in error
        assert expected in error
        # The loop went on, with the settings unchanged.
        assert session.calls == [("after", ReplSettings())]
        assert final == ReplSettings()

    def test_bad_sampler_lists_choices(self):
        session, _ = run([":sampler beam"])
        for name in SAMPLER_NAMES:
            assert name in session.errors[0]

    def test_value_error_from_complete_is_reported(self):
        def complete(text, settings):
            if text == "bad":
                raise ValueError("no known words in\nthe text")
            return "ok"

        session = Session(["bad", "good"])
        session.run(complete=complete)
        assert session.writes == ["Error: no known words in the text", "ok", ""]

    def test_other_exceptions_from_complete_propagate(self):
        def complete(text, settings):
            raise RuntimeError("bug")

        with pytest.raises(RuntimeError, match="bug"):
            Session(["x"]).run(complete=complete)

    def test_help_lists_commands_and_settings(self):
        session, _ = run([":sampler random", ":help"])
        (text,) = [w for w in session.writes if "Commands" in w]
        for command in (
            ":k",
            ":words",
            ":sampler",
            ":temperature",
            ":top-k",
            ":top-p",
            ":seed",
            ":settings",
            ":quit",
        ):
            assert command in text
        assert "random" in text

    def test_settings_command(self):
        session, _ = run([":top-p 0.3", ":settings"])
        assert session.writes[1] == format_settings(ReplSettings(top_p=0.3))
        assert "0.3" in session.writes[1]


class TestEnding:
    def test_eof_ends_cleanly_with_newline(self):
        session, final = run([":k 2"])
        assert session.writes == ["k = 2", ""]
        assert final.k == 2

    def test_keyboard_interrupt_ends_cleanly(self):
        session = Session(["hi", ":words 3"], end=KeyboardInterrupt)
        final = session.run()
        assert session.writes == ["<hi>", "words = 3", ""]
        assert final.words == 3

    def test_immediate_eof(self):
        session, final = run([])
        assert session.writes == [""]
        assert final == ReplSettings()

    @pytest.mark.parametrize("command", [":quit", ":exit", ":q", "  :QUIT  "])
    def test_quit_stops_reading(self, command):
        session, final = run([":k 6", command, "never"])
        assert session.calls == []
        assert len(session.prompts) == 2
        assert session.writes == ["k = 6"]
        assert final.k == 6
