"""From text files to training windows: corpus reading, the tokenizer, tf.data.

Punctuation policy (applied identically to corpora, prompts and the exported model,
because it is one TensorFlow function traced into each of them):

* Text is lower-cased (Unicode aware); curly apostrophes become ``'``.
* A word-final ``.``, ``!`` or ``?`` run (closing quotes or brackets may follow it),
  or a stand-alone one, ends a sentence and becomes the token ``<eos>``, so a model
  learns to predict sentence ends. A period inside a token is kept, so abbreviations
  such as ``u.s.`` and numbers such as ``3.5`` stay whole; ``!`` and ``?`` inside one
  separate words. Every line of a corpus file also ends a sentence (as in Mikolov's
  Penn Treebank files), and repeated ``<eos>`` collapse to one.
* Apostrophes and hyphens inside words are kept: ``don't`` and ``well-known`` are one
  token each, and Penn Treebank's ``'s`` and ``n't`` stay as they are.
* Letters, digits, ``$``, ``%``, ``&``, ``<`` and ``>`` are kept (``<unk>`` in Penn
  Treebank is an ordinary word); every other character, commas, quotes, brackets,
  symbols and emoji included, separates words and is dropped, and so does a
  combining mark that follows no letter or digit (an emoji's variation selector).
* Standardised text standardises to itself (a property test checks this).

A corpus that is already tokenized, such as Penn Treebank, can skip this policy
(``tokenization="pretokenized"``): its words are split on whitespace and kept exactly,
case included, so perplexities are over the same tokens as the papers'.

Token ids: 0 is padding and 1 is ``[UNK]`` (Keras's ``TextVectorization``
convention); neither is ever offered as a completion.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from textpredict.errors import CorpusError

EOS = "<eos>"
TOKENIZATIONS = ("standard", "pretokenized")
PAD_ID = 0
UNK_ID = 1
SPECIAL_IDS = (PAD_ID, UNK_ID)


@keras.saving.register_keras_serializable(package="textpredict")
def standardize(text: tf.Tensor) -> tf.Tensor:
    """Normalises a string tensor as the module docstring describes."""
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, "[\u2018\u2019\u02bc]", "'")
    text = tf.strings.regex_replace(text, r"[^\p{L}\p{M}\p{N}\s'.!?$%&<>-]", " ")
    # "!" and "?" inside a word separate; at its end they end a sentence, as "." does.
    text = tf.strings.regex_replace(text, r"[!?]+([^\s.!?'])", r" \1")
    text = tf.strings.regex_replace(text, r"[!?]", ".")
    # Double every gap so that each token owns a space on both sides: RE2 has no
    # look-around, and this lets one pass match adjacent tokens.
    text = tf.strings.regex_replace(text, r"\s+", "  ")
    text = tf.strings.join([" ", text, " "])
    # A combining mark belongs to the letter before it; one left alone (an emoji's
    # variation selector, say) goes with what it followed.
    text = tf.strings.regex_replace(text, r"([^\p{L}\p{M}\p{N}])\p{M}+", r"\1")
    # Single quotes around a word go; apostrophes inside or in front of one stay.
    text = tf.strings.regex_replace(text, r"\s'+([^\s]*[^\s'])'+\s", r" \1 ")
    # Periods (and quotes) ending a word with no period inside end a sentence. Each
    # step leaves nothing an earlier one would change: standardising is idempotent.
    text = tf.strings.regex_replace(text, r"\s'*([^\s.]*[^\s.'])?[.']*\.[.']*\s", r" \1 <eos> ")
    text = tf.strings.regex_replace(text, r"(^|\s)'+(\s|$)", " ")
    text = tf.strings.regex_replace(text, r"<eos>(\s+<eos>)+", EOS)
    return tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))


class Tokenizer:
    """Words to ids and back, with Keras's ``TextVectorization`` doing the work.

    Args:
        vocabulary: the tokens after padding and ``[UNK]``, most frequent first.
        tokenization: ``"standard"``, the punctuation policy of this module, or
            ``"pretokenized"``, whitespace splitting only.

    Example:
        >>> tokenizer = Tokenizer.adapt(["The sky is blue.", "The sea is blue."])
        >>> tokenizer.detokenize(tokenizer.tokenize("the sea is blue"))
        'the sea is blue'
    """

    def __init__(self, vocabulary: Sequence[str], tokenization: str = "standard"):
        self.tokenization = tokenization
        self._layer = make_vectorizer(tokenization, vocabulary=[str(t) for t in vocabulary])
        self._tokens = [str(t) for t in self._layer.get_vocabulary()]
        self._ids = {token: i for i, token in enumerate(self._tokens)}

    @classmethod
    def adapt(
        cls,
        lines: tf.data.Dataset | Iterable[str],
        max_tokens: int,
        tokenization: str = "standard",
    ) -> Tokenizer:
        """Builds the vocabulary from corpus lines in one streaming pass.

        Each line ends a sentence, so ``<eos>`` is counted like any other word.
        ``max_tokens`` counts padding and ``[UNK]``.
        """
        if not isinstance(lines, tf.data.Dataset):
            lines = tf.data.Dataset.from_tensor_slices(tf.constant(list(lines), tf.string))
        layer = make_vectorizer(tokenization, max_tokens=max_tokens)
        layer.adapt(lines.map(end_sentence).batch(4096).prefetch(tf.data.AUTOTUNE))
        return cls(layer.get_vocabulary(include_special_tokens=False), tokenization)

    @property
    def layer(self) -> keras.layers.TextVectorization:
        """The ``TextVectorization`` layer, to place inside a model graph."""
        return self._layer

    @property
    def vocabulary(self) -> list[str]:
        """All tokens, index = id, padding and ``[UNK]`` included."""
        return list(self._tokens)

    @property
    def vocabulary_size(self) -> int:
        return len(self._tokens)

    @property
    def eos_id(self) -> int:
        return self._ids.get(EOS, UNK_ID)

    def id_to_token(self, token_id: int) -> str:
        return self._tokens[token_id]

    def token_to_id(self, token: str) -> int:
        return self._ids.get(token, UNK_ID)

    def tokenize(self, text: str) -> list[int]:
        """The ids of one text, standardised as the module docstring describes."""
        return self._layer(tf.constant(text)).numpy().tolist()

    def detokenize(self, ids: Iterable[int]) -> str:
        return " ".join(self._tokens[i] for i in ids if i != PAD_ID)

    def save(self, path: Path) -> None:
        """Writes the vocabulary one token a line, without padding and ``[UNK]``."""
        Path(path).write_text("".join(f"{t}\n" for t in self._tokens[2:]), encoding="utf-8")

    @classmethod
    def load(cls, path: Path, tokenization: str = "standard") -> Tokenizer:
        return cls(Path(path).read_text(encoding="utf-8").splitlines(), tokenization)


def make_vectorizer(tokenization: str = "standard", **kwargs) -> keras.layers.TextVectorization:
    """The ``TextVectorization`` layer of a tokenization (see the module docstring)."""
    if tokenization not in TOKENIZATIONS:
        raise ValueError(f"tokenization must be one of {TOKENIZATIONS}, got {tokenization!r}")
    return keras.layers.TextVectorization(
        standardize=standardize if tokenization == "standard" else None,
        split="whitespace",
        output_mode="int",
        ragged=True,
        **kwargs,
    )


def end_sentence(line: tf.Tensor) -> tf.Tensor:
    """A corpus line ends a sentence: it is followed by one ``<eos>``.

    (The standard policy collapses a line's own final ``<eos>`` into this one.)
    """
    return tf.strings.join([line, " ", EOS])


# --- reading corpora ---------------------------------------------------------------


#: The longest corpus line read, in bytes. A line is one training sequence, held in
#: memory with its tokens; a sentence or paragraph a line is far below this, and a
#: file that is one enormous line is refused rather than read.
MAX_LINE_BYTES = 1 << 20

#: How --errors treats bytes that are not text in the chosen encoding.
ERRORS = ("strict", "replace")


def check_encoding(encoding: str, errors: str = "strict") -> None:
    """Raises ``CorpusError`` unless files in ``encoding`` can be read line by line.

    The name must be known both to Python (which checks each file and reports the
    offset of a bad byte) and to ICU (which TensorFlow's ``unicode_transcode`` uses
    to convert the lines to UTF-8 as they stream). Lines are split at byte ``\\n``, so
    encodings that write it otherwise (UTF-16, UTF-32) cannot be read.
    """
    if errors not in ERRORS:
        raise CorpusError(f"errors must be one of {', '.join(ERRORS)}; got {errors!r}")
    try:
        line_compatible = "\n a".encode(encoding) == b"\n a"
        tf.strings.unicode_transcode("a", encoding, "UTF-8")
    except (LookupError, tf.errors.InvalidArgumentError):
        raise CorpusError(
            f"unknown encoding {encoding!r} (try utf-8, latin-1, windows-1252 or shift_jis)"
        ) from None
    if not line_compatible:
        raise CorpusError(
            f"encoding {encoding!r} is not supported: corpora are read line by line, so "
            "they must be in an encoding that keeps ASCII line ends, such as utf-8"
        )


def corpus_files(
    paths: Iterable[str | Path], encoding: str = "utf-8", errors: str = "strict"
) -> list[Path]:
    """Expands files and folders into a sorted list of readable text files.

    Folders are read recursively, hidden files skipped. Raises ``CorpusError`` naming
    the path for anything missing, unreadable, empty or not text in ``encoding`` (see
    `check_text_file`).
    """
    check_encoding(encoding, errors)
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                raise CorpusError(f"corpus folder {path} contains no files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CorpusError(f"corpus path {path} does not exist")
    if not files:
        raise CorpusError("no corpus files given")
    for file in files:
        check_text_file(file, encoding, errors)
    return files


def check_text_file(
    path: Path,
    encoding: str = "utf-8",
    errors: str = "strict",
    chunk_size: int = 1 << 20,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> None:
    """Reads a file once, in chunks, and raises ``CorpusError`` unless it is
    non-empty text in ``encoding`` with at least one word and no line longer than
    ``max_line_bytes``.

    ``errors="replace"`` accepts bytes that are not text (they are read as U+FFFD);
    ``"strict"`` refuses the file, naming the offset of the first such byte.
    """
    decoder = codecs.getincrementaldecoder(encoding)(errors)
    name = codecs.lookup(encoding).name.upper()
    chunk_size = min(chunk_size, max_line_bytes)  # then only lines across chunks can be long
    offset, line, line_bytes, has_text = 0, 1, 0, False
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(chunk_size):
                # A NUL byte is no text in any encoding read here (check_encoding), and
                # a binary file is better called that than blamed on its encoding.
                if b"\x00" in chunk:
                    raise CorpusError(f"{path} looks like a binary file (it contains NUL bytes)")
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError as error:
                    raise CorpusError(
                        f"{path} is not {name} text (invalid byte at offset "
                        f"{offset + error.start - len(decoder.getstate()[0])}); "
                        "pass --encoding or --errors replace"
                    ) from None
                has_text = has_text or any(c.isalnum() for c in text)
                end = chunk.find(b"\n")
                line_bytes += len(chunk) if end < 0 else end
                if line_bytes > max_line_bytes:
                    raise CorpusError(
                        f"line {line} of {path} is longer than {max_line_bytes:,} bytes; "
                        "put one sentence or paragraph on each line"
                    )
                if end >= 0:
                    line += chunk.count(b"\n")
                    line_bytes = len(chunk) - 1 - chunk.rfind(b"\n")
                offset += len(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise CorpusError(
            f"{path} is not {name} text (it ends inside a character); "
            "pass --encoding or --errors replace"
        ) from None
    except OSError as error:
        raise CorpusError(f"cannot read {path}: {error.strerror}") from None
    if not has_text:
        raise CorpusError(f"{path} contains no words")


def count_lines(files: Sequence[Path]) -> int:
    """Non-blank lines over all files (the unit of the held-out split)."""
    total = 0
    for file in files:
        with open(file, "rb") as handle:
            total += sum(1 for line in handle if line.strip())
    return total


def read_lines(
    files: Sequence[Path],
    start: int = 0,
    stop: int | None = None,
    encoding: str = "utf-8",
    errors: str = "strict",
) -> tf.data.Dataset:
    """The non-blank lines of ``files`` in order, optionally only lines [start, stop).

    Lines come out as UTF-8: text in another ``encoding``, or with bytes to replace
    (``errors="replace"``), is converted as it streams. Check the files first
    (`corpus_files`): a strict conversion that meets a bad byte stops with an error.
    """
    lines = tf.data.TextLineDataset([str(f) for f in files])
    if codecs.lookup(encoding).name != "utf-8" or errors == "replace":
        lines = lines.map(
            lambda line: tf.strings.unicode_transcode(
                line, encoding, "UTF-8", errors=errors, replacement_char=0xFFFD
            )
        )
    lines = lines.filter(lambda line: tf.strings.regex_full_match(line, r".*\S.*"))
    if start or stop is not None:
        lines = lines.skip(start)
        if stop is not None:
            lines = lines.take(stop - start)
    return lines


def token_ids(tokenizer: Tokenizer, lines: tf.data.Dataset) -> tf.data.Dataset:
    """The id stream of a corpus: every line's ids followed by its ``<eos>``."""
    layer = tokenizer.layer
    batched = lines.map(end_sentence).batch(1024).map(layer, num_parallel_calls=tf.data.AUTOTUNE)
    return batched.unbatch().unbatch()


def id_array(tokenizer: Tokenizer, lines: tf.data.Dataset) -> np.ndarray:
    """The whole id stream in memory (for held-out sets and small corpora)."""
    chunks = [c.numpy() for c in token_ids(tokenizer, lines).batch(1 << 16)]
    return np.concatenate(chunks).astype(np.int32) if chunks else np.zeros(0, np.int32)


def with_known_length(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """The dataset, counted once and declaring its length.

    A known length gives Keras's progress bar its total and tells ``fit`` where an
    epoch ends. Counting a cached dataset is the pass that fills the cache.
    """
    count = int(dataset.reduce(0, lambda n, _: n + 1))
    return dataset.apply(tf.data.experimental.assert_cardinality(count))


#: Number of row widths `batch_rows` pads to.
BUCKETS = 8


def line_rows(tokenizer: Tokenizer, lines: tf.data.Dataset, seq_len: int) -> tf.data.Dataset:
    """One ``(n, 2)`` int32 row of ``(input, target)`` pairs per line, ``n <= seq_len``.

    A line ``w1 … wn`` becomes ``inputs = <eos> w1 … wn`` and ``targets = w1 … wn
    <eos>``: the model reads every line as ``complete`` reads a prompt, starting after a
    sentence end, and every word of the line (the first included) is a target. Lines
    longer than ``seq_len`` are cut into rows of ``seq_len``. Streams: nothing is held.
    """
    eos = tf.constant(tokenizer.eos_id, tf.int64)

    def rows(line_ids):  # ragged (lines, ids) -> ragged (rows, pairs, 2), one op a batch
        starts = tf.fill([line_ids.nrows(), 1], eos)
        ids = tf.concat([tf.RaggedTensor.from_tensor(starts), line_ids], axis=1)
        inputs, targets = ids[:, :-1], ids[:, 1:]  # <eos> w1 … wn  /  w1 … wn <eos>
        lengths = inputs.row_lengths()
        # Cut every line into pieces of seq_len, the last one shorter.
        piece_starts = tf.ragged.range(tf.zeros_like(lengths), lengths, tf.cast(seq_len, tf.int64))
        line_of_piece = tf.repeat(lengths, piece_starts.row_lengths())
        piece_lengths = tf.minimum(
            tf.cast(seq_len, tf.int64), line_of_piece - piece_starts.flat_values
        )
        pairs = tf.stack([inputs.flat_values, targets.flat_values], axis=1)
        return tf.RaggedTensor.from_row_lengths(tf.cast(pairs, tf.int32), piece_lengths)

    layer = tokenizer.layer
    ids = lines.map(end_sentence).batch(1024).map(layer, num_parallel_calls=tf.data.AUTOTUNE)
    # Unbatched rows arrive typed as ragged tensors of ragged rank 0; a map makes them
    # plain tensors, which bucketing needs.
    return ids.map(rows).unbatch().map(tf.identity)


def batch_rows(rows: tf.data.Dataset, seq_len: int, batch_size: int) -> tf.data.Dataset:
    """``(inputs, targets)`` batches of rows of similar length, right-padded with id 0.

    Rows are padded up to the next multiple of ``seq_len / 8``: little padding, and few
    distinct shapes, so few traces (and XLA compilations) of the training step. Each
    bucket yields ``ceil(rows / batch_size)`` batches whatever the order of the rows,
    so every shuffle of the same rows gives the same number of batches.
    """
    boundaries = sorted({max(1, seq_len * k // BUCKETS) + 1 for k in range(1, BUCKETS + 1)})
    batches = rows.bucket_by_sequence_length(
        lambda p: tf.shape(p)[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        pad_to_bucket_boundary=True,
    )

    def fill_batch(p):
        # A bucket's last batch is topped up with all-padding rows, which the loss and
        # metrics ignore, so every batch of a bucket has the same shape.
        p = tf.pad(p, [[0, batch_size - tf.shape(p)[0]], [0, 0], [0, 0]])
        return p[:, :, 0], p[:, :, 1]

    return batches.map(fill_batch)


def line_windows(
    tokenizer: Tokenizer,
    lines: tf.data.Dataset,
    seq_len: int,
    batch_size: int,
    shuffle_seed: int | None = None,
    shuffle_buffer: int = 10_000,
) -> tf.data.Dataset:
    """Batches of ``(inputs, targets)``, one corpus line per row, from a fresh state
    (``line_rows`` and ``batch_rows``), cached in memory, of known length,
    reshuffled on every pass when a ``shuffle_seed`` is given, and ready for ``fit``
    (``fit_input``).

    Why not one continuous stream: an LSTM fed a stream must learn to overwrite the
    previous line's memories before it can learn to keep the current line's (Gers et
    al. 2000), which on a small budget it does not; stories that are one line each
    lose nothing by starting fresh. ``stream_windows`` gives the stream.
    """
    rows = with_known_length(line_rows(tokenizer, lines, seq_len).cache())
    if shuffle_seed is not None:
        rows = rows.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    return fit_input(with_known_length(batch_rows(rows, seq_len, batch_size)))


#: Batches read ahead of the training step. A batch of ids takes far less time to make
#: (from a cache, or tokenized in parallel) than a step takes to use it: two hide it.
READ_AHEAD = 2


def fit_input(batches: tf.data.Dataset) -> tf.data.Dataset:
    """``batches`` read ahead, and without tf.data's autotuner, for ``fit``.

    ``fit`` stops after an epoch's steps without reading its iterator to the end, and
    releasing an iterator whose autotuner still runs holds the caller until the tuner's
    next wake-up, 10 ms · 2^k after the iterator started: seconds, and more as epochs
    grow. Measured with the autotuner on, some 50-step epochs of ``zaremba-small``
    that trained in 2.8 s returned after 5.1 s (the earlier records in
    ``benchmarks/results/ptb_throughput.txt`` have that stall in them).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return batches.prefetch(READ_AHEAD).with_options(options)


def stream_windows(ids: np.ndarray, seq_len: int, batch_size: int) -> tf.data.Dataset:
    """Batches for truncated backpropagation through time over one id stream.

    The stream is laid out as ``batch_size`` contiguous rows of ``n = len(ids) //
    batch_size`` ids (the remainder dropped), and batch ``j`` is columns
    ``[j·T, (j+1)·T)`` of every row, with the targets one column later:

        inputs_j = rows[:, j·T : (j+1)·T],   targets_j = rows[:, j·T+1 : (j+1)·T+1]

    so row ``r`` of batch ``j`` continues row ``r`` of batch ``j - 1``, and a stateful
    network that carries its state from batch to batch reads each row as one text
    (Zaremba et al. 2014's reader). Never shuffled: the order is the point.
    """
    ids = np.asarray(ids, np.int32)
    row = len(ids) // batch_size
    windows = max(0, (row - 1) // seq_len)
    rows = ids[: batch_size * row].reshape(batch_size, row)
    span = windows * seq_len
    inputs = rows[:, :span].reshape(batch_size, windows, seq_len).transpose(1, 0, 2)
    targets = rows[:, 1 : span + 1].reshape(batch_size, windows, seq_len).transpose(1, 0, 2)
    return tf.data.Dataset.from_tensor_slices((inputs, targets))
