"""The tokenizer, the punctuation policy, corpus checks and the window pipeline."""

import numpy as np
import pytest
import tensorflow as tf

from textpredict.data import DataSplit, split_data
from textpredict.errors import CorpusError
from textpredict.text import (
    EOS,
    PAD_ID,
    UNK_ID,
    Tokenizer,
    check_text_file,
    corpus_files,
    fit_input,
    id_array,
    line_windows,
    read_lines,
    standardize,
    stream_windows,
)


def clean(text: str) -> str:
    return standardize(tf.constant(text)).numpy().decode()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The Clouds are in the", "the clouds are in the"),
        ("young. Now I speak", "young <eos> now i speak"),
        ("Don't stop!? well-known", "don't stop <eos> well-known"),
        ("the u.s. grew 3.5 %", "the u.s. grew 3.5 %"),
        ("he said 'hello' , then “left”", "he said hello then left"),
        ("Smith’s cat", "smith's cat"),
        ("a . . . b", "a <eos> b"),
        ("a <unk> rose $ 5", "a <unk> rose $ 5"),
        ("emoji 😀\tand\x07control", "emoji and control"),
        ("rain 🌧\ufe0f \u0301ok e\u0301", "rain ok e\u0301"),  # stray marks go
        ('He said "Stop." (Then left.)', "he said stop <eos> then left <eos>"),
        ("'yes.' ?no.", "yes <eos> no <eos>"),
        ("Émile ÇA", "émile ça"),
        ("   ", ""),
    ],
)
def test_standardize_applies_the_punctuation_policy(raw, expected):
    assert clean(raw) == expected


def test_standardize_works_on_batches():
    batch = standardize(tf.constant(["A.", "b c"])).numpy().tolist()
    assert batch == [b"a <eos>", b"b c"]


@pytest.fixture
def tokenizer():
    return Tokenizer(["<eos>", "the", "sky", "is", "blue", "don't"])


def test_tokenizer_round_trips_known_words(tokenizer):
    ids = tokenizer.tokenize("The sky is blue. Don't")
    assert ids == [3, 4, 5, 6, 2, 7]
    assert tokenizer.detokenize(ids) == "the sky is blue <eos> don't"


def test_tokenizer_maps_unknown_words_to_unk(tokenizer):
    assert tokenizer.tokenize("the sea") == [3, UNK_ID]
    assert tokenizer.token_to_id("sea") == UNK_ID


def test_tokenizer_contract(tokenizer):
    assert tokenizer.vocabulary_size == 8
    assert tokenizer.id_to_token(PAD_ID) == ""
    assert tokenizer.id_to_token(UNK_ID) == "[UNK]"
    assert tokenizer.eos_id == tokenizer.token_to_id(EOS) == 2
    assert all(tokenizer.token_to_id(tokenizer.id_to_token(i)) == i for i in range(2, 8))
    assert all(isinstance(t, str) for t in tokenizer.vocabulary)


def test_adapt_counts_each_line_end_and_caps_the_vocabulary():
    lines = ["the sky is blue", "the sea is blue.", "the end"]
    full = Tokenizer.adapt(lines, max_tokens=100)
    assert full.vocabulary[2:5] == ["the", "<eos>", "is"] or full.vocabulary[2:4] == [
        "<eos>",
        "the",
    ]
    assert set(full.vocabulary[2:]) == {"the", "<eos>", "is", "blue", "sky", "sea", "end"}
    capped = Tokenizer.adapt(lines, max_tokens=5)
    assert capped.vocabulary_size == 5
    assert set(capped.vocabulary[2:]) == {"the", "<eos>", "is"}


def test_vocabulary_file_round_trip(tmp_path, tokenizer):
    tokenizer.save(tmp_path / "vocabulary.txt")
    loaded = Tokenizer.load(tmp_path / "vocabulary.txt")
    assert loaded.vocabulary == tokenizer.vocabulary
    assert loaded.tokenize("blue sky") == tokenizer.tokenize("blue sky")


def test_id_stream_ends_every_line_once(tmp_path, tokenizer):
    (tmp_path / "a.txt").write_text("the sky is blue .\n\n  \nthe sky\n", encoding="utf-8")
    ids = id_array(tokenizer, read_lines([tmp_path / "a.txt"]))
    assert tokenizer.detokenize(ids) == "the sky is blue <eos> the sky <eos>"


def test_read_lines_selects_a_line_range(tmp_path):
    (tmp_path / "a.txt").write_text("one\n\ntwo\nthree\nfour\n", encoding="utf-8")
    lines = [x.numpy().decode() for x in read_lines([tmp_path / "a.txt"], 1, 3)]
    assert lines == ["two", "three"]


def test_stream_windows_lay_the_stream_out_in_rows_that_continue_batch_to_batch():
    ids = np.arange(1, 48)  # 47 ids, 3 rows of 15, windows of 4: 3 batches
    batches = [(x.numpy(), y.numpy()) for x, y in stream_windows(ids, seq_len=4, batch_size=3)]
    assert len(batches) == 3 and all(x.shape == (3, 4) for x, _ in batches)
    assert batches[0][0].dtype == np.int32
    rows = np.concatenate([x for x, _ in batches], axis=1)  # each row read left to right
    np.testing.assert_array_equal(rows, [np.arange(1, 13), np.arange(16, 28), np.arange(31, 43)])
    targets = np.concatenate([y for _, y in batches], axis=1)
    np.testing.assert_array_equal(targets, rows + 1)


def test_stream_windows_of_a_stream_too_short_for_a_batch_are_empty():
    assert stream_windows(np.arange(1, 10), seq_len=4, batch_size=3).cardinality() == 0
    assert stream_windows(np.arange(1, 3), seq_len=4, batch_size=3).cardinality() == 0


def test_line_windows_read_each_line_after_eos_and_split_long_lines(tokenizer):
    lines = tf.data.Dataset.from_tensor_slices(["the sky is blue . the sky", "blue sky"])
    batches = list(line_windows(tokenizer, lines, seq_len=4, batch_size=8))
    rows = [
        (tokenizer.detokenize(x[x > 0]), tokenizer.detokenize(y[y > 0]))
        for xs, ys in batches
        for x, y in zip(xs.numpy(), ys.numpy(), strict=True)
        if y.any()  # rows of padding fill up a bucket's last batch
    ]
    # Every batch is full, so the training step sees few distinct shapes.
    assert {xs.shape[0] for xs, _ in batches} == {8}
    # "<eos> the sky is blue <eos> the sky <eos>": 8 targets, cut into rows of 4.
    assert sorted(rows) == sorted(
        [
            ("<eos> the sky is", "the sky is blue"),
            ("blue <eos> the sky", "<eos> the sky <eos>"),
            ("<eos> blue sky", "blue sky <eos>"),
        ]
    )


def test_line_windows_pad_with_zero_and_group_similar_lengths(tokenizer):
    texts = ["sky"] * 5 + ["the sky is blue the sky is blue"] * 5
    lines = tf.data.Dataset.from_tensor_slices(texts)
    batches = list(line_windows(tokenizer, lines, seq_len=16, batch_size=4, shuffle_seed=0))
    widths = sorted(x.shape[1] for x, _ in batches)
    # No batch mixes one-word lines with long ones; widths round up to seq_len / 8 = 2.
    assert widths == [2, 2, 10, 10]
    for x, y in batches:
        assert x.dtype == tf.int32 and x.shape == y.shape
        np.testing.assert_array_equal(x.numpy() == PAD_ID, y.numpy() == PAD_ID)


def test_pretokenized_text_keeps_every_whitespace_token_exactly():
    lines = ["mr. <unk> said N 's", "the U.S. , he said ."]
    tokenizer = Tokenizer.adapt(lines, 100, tokenization="pretokenized")
    words = tokenizer.detokenize(tokenizer.tokenize("mr. <unk> said N 's , U.S."))
    assert words == "mr. <unk> said N 's , U.S."
    stream = tokenizer.detokenize(id_array(tokenizer, tf.data.Dataset.from_tensor_slices(lines)))
    assert stream == "mr. <unk> said N 's <eos> the U.S. , he said . <eos>"
    # The standard policy would have changed all of that.
    standard = Tokenizer.adapt(lines, 100)
    assert standard.detokenize(standard.tokenize("mr. said N 's")) != "mr. said N 's"


def test_corpus_files_expands_folders_and_skips_hidden_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_text("two words", encoding="utf-8")
    (tmp_path / "1.txt").write_text("one", encoding="utf-8")
    (tmp_path / ".hidden").write_text("secret", encoding="utf-8")
    assert corpus_files([tmp_path]) == [tmp_path / "1.txt", tmp_path / "b" / "2.txt"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "contains no words"),
        (b" \n\t\n", "contains no words"),
        (
            b"caf\xc3\xa9 ok \xff\xfe bad",
            r"not UTF-8 text \(invalid byte at offset 9\); pass --encoding or --errors replace",
        ),
        (b"caf\xc3", "ends inside a character"),
        (b"\x00\x01\x02binary", "binary file"),
    ],
)
def test_corpus_files_rejects_unusable_text(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=message):
        corpus_files([path])


def test_corpus_files_reports_the_offset_across_chunks(tmp_path):
    path = tmp_path / "late.txt"
    path.write_bytes(b"a" * 10 + b"\xe2\x82" + b"\xff")  # a broken 3-byte sequence
    with pytest.raises(CorpusError, match="offset 10"):
        check_text_file(path, chunk_size=11)


def test_corpus_files_rejects_missing_paths_and_empty_folders(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        corpus_files([tmp_path / "nope.txt"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="contains no files"):
        corpus_files([tmp_path / "empty"])


def test_other_encodings_are_checked_in_that_encoding(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café crème\n".encode("latin-1"))
    with pytest.raises(CorpusError, match="not UTF-8 text"):
        check_text_file(path)
    check_text_file(path, encoding="latin-1")
    check_text_file(path, errors="replace")
    path.write_bytes("ok \x81".encode("latin-1"))  # 0x81 is no character in windows-1252
    with pytest.raises(CorpusError, match=r"not CP1252 text \(invalid byte at offset 3\)"):
        check_text_file(path, encoding="windows-1252")


@pytest.mark.parametrize(
    ("encoding", "errors", "message"),
    [
        ("klingon", "strict", "unknown encoding 'klingon'"),
        ("8859", "strict", "unknown encoding '8859'"),  # Python knows it, ICU does not
        ("utf-16", "strict", "encoding 'utf-16' is not supported"),
        ("utf-8", "ignore", "errors must be one of strict, replace"),
    ],
)
def test_unreadable_encodings_are_refused_up_front(tmp_path, encoding, errors, message):
    (tmp_path / "a.txt").write_text("words", encoding="utf-8")
    with pytest.raises(CorpusError, match=message):
        corpus_files([tmp_path / "a.txt"], encoding, errors)


def test_a_line_longer_than_the_bound_is_refused_naming_it(tmp_path):
    path = tmp_path / "long.txt"
    path.write_bytes(b"short\n" + b"x" * 30 + b"\nshort\n")
    check_text_file(path, chunk_size=4, max_line_bytes=30)
    with pytest.raises(CorpusError, match=r"line 2 of .* is longer than 29 bytes"):
        check_text_file(path, chunk_size=4, max_line_bytes=29)


def test_read_lines_converts_other_encodings_to_utf8_as_it_streams(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café\n\n  \nà bientôt \xff\n".encode("latin-1"))
    lines = read_lines([path], encoding="latin-1")
    assert [t.numpy().decode() for t in lines] == ["café", "à bientôt \xff"]
    replaced = read_lines([path], errors="replace")
    assert [t.numpy().decode() for t in replaced] == ["caf\ufffd", "\ufffd bient\ufffdt \ufffd"]


def test_a_split_remembers_how_its_files_were_read(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("".join(f"ligne {i} été\n" for i in range(20)).encode("latin-1"))
    split = split_data([path], encoding="latin-1")
    again = DataSplit.from_description(split.describe())
    assert (again.encoding, again.errors, again.held_out) == ("latin-1", "strict", (18, 19, 20))
    assert next(iter(again.lines("test"))).numpy().decode() == "ligne 19 été"
    description = split.describe()
    size = path.stat().st_size
    path.write_bytes(b"\x00binary now".ljust(size))
    with pytest.raises(CorpusError, match="binary"):
        DataSplit.from_description(description)
    path.write_bytes("".join(f"ligne {i} été\n" for i in range(2, 20)).encode("latin-1"))
    with pytest.raises(CorpusError, match=rf"changed since this model was trained \({size} bytes"):
        DataSplit.from_description(description)  # its held-out lines would be others now


def test_what_fit_reads_is_read_ahead_without_the_autotuner(tmp_path, tokenizer):
    """An epoch that `fit` stops reading before its end must not leave tf.data's
    autotuner running: releasing its iterator would wait for the tuner's next wake-up."""
    from textpredict.batches import EpochBatches, held_out_batches
    from textpredict.training import TrainingConfig

    numbers = tf.data.Dataset.range(10)
    ahead = fit_input(numbers)
    assert list(ahead.as_numpy_iterator()) == list(range(10))  # nothing lost or reordered
    assert ahead.options().autotune.enabled is False
    assert numbers.options().autotune.enabled is not False  # the input is left as it was

    lines = tf.data.Dataset.from_tensor_slices(["the cat sat on the mat"] * 40)
    config = TrainingConfig(batch_size=4, seq_len=4, seed=0)
    for sequences in ("lines", "stream"):
        settings = TrainingConfig(**{**vars(config), "sequences": sequences})
        cache = tmp_path / sequences  # as training makes it
        cache.mkdir()
        epoch = EpochBatches(tokenizer, lines, settings, cache).epoch(0)
        held_out = held_out_batches(tokenizer, lines, settings, cache / "valid")
        for batches in (epoch, held_out, line_windows(tokenizer, lines, 4, 4)):
            assert batches.options().autotune.enabled is False
            assert next(iter(batches))[0].shape[0] == 4
