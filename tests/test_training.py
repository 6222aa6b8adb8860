"""Training: truncated BPTT over a stream, optimisers and schedules, presets, splits."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from textpredict.cli import PRESET_NAMES
from textpredict.data import DataSplit, split_data
from textpredict.errors import TextpredictError
from textpredict.evaluation import stateful_copy
from textpredict.model import ModelConfig, load_model
from textpredict.presets import PRESETS, preset_configs
from textpredict.text import id_array, read_lines, stream_windows
from textpredict.training import TrainingConfig, train

WORDS = ["the", "cat", "sat", "on", "the", "mat", "N", "'s", "<unk>", "a", "dog", "ran"]


@pytest.fixture(scope="module")
def ptb_like(tmp_path_factory):
    """A folder laid out like Penn Treebank: pretokenized lines, three splits."""
    folder = tmp_path_factory.mktemp("ptb")
    rng = np.random.default_rng(0)
    for part, lines in (("train", 120), ("valid", 40), ("test", 40)):
        text = "".join(" " + " ".join(rng.choice(WORDS, 8)) + " \n" for _ in range(lines))
        (folder / f"ptb.{part}.txt").write_text(text, encoding="utf-8")
    return folder


def test_a_folder_of_splits_is_read_as_its_splits(ptb_like, tmp_path):
    data = split_data([ptb_like])
    assert [p.name for p in data.train + data.valid + data.test] == [
        "ptb.train.txt",
        "ptb.valid.txt",
        "ptb.test.txt",
    ]
    other = tmp_path / "other.txt"
    other.write_text("the cat\n", encoding="utf-8")
    data = split_data([ptb_like], valid=[other])  # replaces the folder's validation file
    assert [p.name for p in data.train + data.valid + data.test] == [
        "ptb.train.txt",
        "other.txt",
        "ptb.test.txt",
    ]
    (tmp_path / "notes.txt").write_text("one line\n" * 30, encoding="utf-8")
    assert split_data([tmp_path]).held_out is not None  # an ordinary folder: hold lines out


def _line_numbers(data, part):
    return [int(line.numpy().split()[-1]) for line in data.lines(part)]


def test_what_is_not_given_is_held_out_from_the_corpus(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"line {i}\n" for i in range(40)), encoding="utf-8")
    given = tmp_path / "given.txt"
    given.write_text("given 100\ngiven 101\n", encoding="utf-8")

    neither = split_data([corpus])  # 10 %: 2 lines to validate on, 2 to test on
    assert _line_numbers(neither, "train") == list(range(36))
    assert _line_numbers(neither, "valid") == [36, 37]
    assert _line_numbers(neither, "test") == [38, 39]

    test_only = split_data([corpus], test=[given])  # 5 % to validate on; --test is used
    assert _line_numbers(test_only, "train") == list(range(38))
    assert _line_numbers(test_only, "valid") == [38, 39]
    assert _line_numbers(test_only, "test") == [100, 101]
    again = DataSplit.from_description(test_only.describe())  # as evaluate reads it
    assert _line_numbers(again, "test") == [100, 101]

    valid_only = split_data([corpus], valid=[given])  # all is trained on; tested on --valid
    assert _line_numbers(valid_only, "train") == list(range(40))
    assert _line_numbers(valid_only, "test") == _line_numbers(valid_only, "valid") == [100, 101]


@pytest.fixture(scope="module")
def stream_model(ptb_like, tmp_path_factory):
    model = ModelConfig(units=8, embedding_dim=8, num_layers=2, tokenization="pretokenized")
    config = TrainingConfig(
        epochs=3,
        batch_size=4,
        seq_len=5,
        sequences="stream",
        optimizer="sgd",
        learning_rate=2.0,
        lr_decay=0.5,
        constant_epochs=1,
        clipnorm=None,
        global_clipnorm=1.0,
    )
    path = tmp_path_factory.mktemp("models") / "stream"
    return train([ptb_like], model=path, model_config=model, training_config=config, verbose=0)


def test_stream_training_saves_a_stateless_model_of_pretokenized_text(stream_model):
    assert not any(getattr(layer, "stateful", False) for layer in stream_model.network.layers)
    assert stream_model.network(np.array([[2, 3, 4]])).shape[:2] == (1, 3)
    tokenizer = load_model(stream_model.path).tokenizer
    assert tokenizer.tokenization == "pretokenized"
    assert tokenizer.detokenize(tokenizer.tokenize("N 's <unk>")) == "N 's <unk>"


def test_the_learning_rate_decays_after_the_constant_epochs(stream_model):
    history = stream_model.metrics["history"]
    assert history["learning_rate"] == pytest.approx([2.0, 1.0, 0.5])
    assert len(history["epoch_seconds"]) == 3 and all(s > 0 for s in history["epoch_seconds"])
    assert stream_model.info["training"]["optimizer"] == "sgd"


def test_validation_reads_the_stream_from_a_zero_state_carried_across_windows(stream_model):
    """Keras's validation loss of the best epoch (the saved weights; the last epoch here,
    as the loss falls) equals scoring the validation windows in order, the state zero
    at the start and carried from each window to the next."""
    history = stream_model.metrics["history"]["val_loss"]
    assert stream_model.metrics["best_epoch"] == len(history)
    tokenizer = stream_model.tokenizer
    ids = id_array(tokenizer, read_lines(stream_model.info["data"]["valid"]))
    windows = list(stream_windows(ids, seq_len=5, batch_size=4).as_numpy_iterator())

    def mean_loss(network, batches):
        losses = [
            keras.losses.sparse_categorical_crossentropy(y, network(x), from_logits=True)
            for x, y in batches
        ]
        return float(tf.reduce_mean(losses))

    network = stateful_copy(stream_model.network, stream_model.config, tokenizer, 4)
    carried = mean_loss(network, windows)
    assert carried == pytest.approx(history[-1], rel=1e-5)
    # Each window from a zero state scores differently: the carried state matters.
    assert abs(mean_loss(stream_model.network, windows) - carried) > 1e-4


def test_learning_rate_schedule_is_zarembas():
    small = PRESETS["zaremba-small"].training
    rates = [small.learning_rate_at(e) / small.seq_len for e in range(small.epochs)]
    assert rates == pytest.approx([1, 1, 1, 1, 0.5, 0.25, 0.125] + [0.5**k for k in range(4, 10)])
    assert TrainingConfig().learning_rate_at(7) == TrainingConfig().learning_rate


def test_presets_are_table_1_of_zaremba_et_al_and_ours():
    rows = {
        name: (p.model.units, p.model.dropout, p.training.seq_len, p.training.epochs)
        for name, p in PRESETS.items()
    }
    assert rows == {
        "zaremba-small": (200, 0.0, 20, 13),
        "zaremba-medium": (650, 0.5, 35, 39),
        "zaremba-large": (1500, 0.65, 35, 55),
        "tied-500": (500, 0.4, 35, 7),
    }
    assert [name for name, p in PRESETS.items() if p.model.tie_embeddings] == ["tied-500"]
    for preset in PRESETS.values():
        assert preset.model.num_layers == 2 and preset.model.embedding_dim == preset.model.units
        training = preset.training
        assert training.optimizer == "sgd" and training.sequences == "stream"
        # lr 1 and the clip on the window's summed loss = lr·T and clip/T on its mean
        assert training.learning_rate == training.seq_len
        assert training.global_clipnorm * training.seq_len in (5.0, 10.0)
    assert tuple(PRESETS) == PRESET_NAMES


def test_preset_fields_can_be_overridden_and_are_checked():
    model, training = preset_configs("zaremba-small", {"units": 32}, {"epochs": 2})
    assert (model.units, model.embedding_dim, training.epochs) == (32, 200, 2)
    with pytest.raises(TextpredictError, match="dropout"):
        preset_configs("zaremba-small", {"dropout": 2.0}, {})
    with pytest.raises(TextpredictError, match="preset must be one of"):
        preset_configs("zaremba-huge", {}, {})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"optimizer": "adagrad"}, "optimizer must be one of"),
        ({"clipnorm": 1.0, "global_clipnorm": 1.0}, "not both"),
        ({"clipnorm": -1.0}, "positive clipnorm"),
        ({"lr_decay": 1.5}, "lr_decay"),
        ({"constant_epochs": -1}, "constant_epochs"),
    ],
)
def test_training_config_rejects_bad_values(fields, message):
    with pytest.raises(TextpredictError, match=message):
        TrainingConfig(**fields)


def test_optimizers_clip_as_configured():
    sgd = TrainingConfig(optimizer="sgd", clipnorm=None, global_clipnorm=0.25).make_optimizer()
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.global_clipnorm == 0.25
    adam = TrainingConfig().make_optimizer()
    assert isinstance(adam, keras.optimizers.Adam) and adam.clipnorm == 1.0


def test_stream_training_of_a_text_too_short_for_one_batch_is_refused(ptb_like, tmp_path):
    config = TrainingConfig(batch_size=64, seq_len=64, sequences="stream")
    with pytest.raises(TextpredictError, match="shorter than one training window"):
        train([ptb_like], model=tmp_path / "m", training_config=config, verbose=0)
    assert not (tmp_path / "m").exists()
