"""The network, its configuration, the model directory, and whole-stream metrics."""

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from textpredict.errors import ModelError, TextpredictError
from textpredict.metrics import (
    FLOAT32_MAX,
    TOKEN_MEAN_LOSS,
    PerplexityLogger,
    TokenMeanCrossEntropy,
    evaluate_lines,
    evaluate_stream,
)
from textpredict.model import (
    ModelConfig,
    TiedEmbedding,
    TokenCrossEntropy,
    build_language_model,
    check_replaceable,
    load_model,
    recover_previous,
    replace_directory,
    resolve_model_path,
)

VOCAB = 12


def small_config(**overrides):
    return ModelConfig(**{"embedding_dim": 6, "units": 8, "dropout": 0.0, **overrides})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cell", "transformer", "cell must be one of lstm"),
        ("units", 0, "units must be a positive integer"),
        ("num_layers", 1.5, "num_layers must be a positive integer"),
        ("dropout", 1.0, r"dropout must be in \[0, 1\)"),
        ("vocabulary_size", 2, "vocabulary_size must be at least 3"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value, message):
    with pytest.raises(TextpredictError, match=message):
        ModelConfig(**{field: value})


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("layers", [1, 2])
def test_network_maps_ids_to_logits_over_the_vocabulary(tie, layers):
    network = build_language_model(small_config(tie_embeddings=tie, num_layers=layers), VOCAB)
    logits = network(np.array([[2, 3, 4], [5, 6, 7]], np.int32))
    assert logits.shape == (2, 3, VOCAB)
    if tie:  # the output layer has no matrix of its own
        assert not any(layer.name == "logits" for layer in network.layers)
        assert any(isinstance(layer, TiedEmbedding) for layer in network.layers)


def test_right_padding_does_not_change_the_real_positions():
    network = build_language_model(small_config(num_layers=2), VOCAB, seed=1)
    short = network(np.array([[2, 3, 4]], np.int32)).numpy()
    padded = network(np.array([[2, 3, 4, 0, 0], [5, 6, 7, 8, 9]], np.int32)).numpy()
    np.testing.assert_allclose(padded[0, :3], short[0], atol=1e-6)


def test_same_seed_same_initial_network():
    def weights(seed):
        return build_language_model(small_config(), VOCAB, seed=seed).get_weights()

    for a, b in zip(weights(3), weights(3), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(weights(3), weights(4), strict=True))


@pytest.mark.parametrize("tie", [False, True])
def test_keras_file_round_trip_in_safe_mode(tmp_path, tie):
    network = build_language_model(small_config(tie_embeddings=tie, units=6), VOCAB, seed=2)
    network.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    ids = np.array([[2, 3, 4, 0]], np.int32)
    np.testing.assert_allclose(loaded(ids), network(ids), atol=1e-6)


def test_token_mean_cross_entropy_weighs_every_token_alike():
    rng = np.random.default_rng(0)
    metric = TokenMeanCrossEntropy()
    nll_sum, tokens, batch_means = 0.0, 0, []
    # A batch of long lines, then a narrower one of short lines that the model
    # predicts worse (batches of lines are padded to different widths).
    for real_per_row, width, scale in (([7, 7, 7], 8, 1.0), ([1, 2, 0], 3, 4.0)):
        targets = np.zeros((3, width), np.int32)  # 0: padding
        for row, n in enumerate(real_per_row):
            targets[row, :n] = rng.integers(1, 6, n)
        logits = (scale * rng.normal(size=(3, width, 6))).astype(np.float32)
        metric.update_state(targets, logits)
        log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        nll = -np.take_along_axis(log_p, targets[..., None], -1)[..., 0][targets > 0]
        nll_sum, tokens = nll_sum + nll.sum(), tokens + nll.size
        batch_means.append(nll.mean())
    assert float(metric.result()) == pytest.approx(nll_sum / tokens, rel=1e-5)
    assert nll_sum / tokens != pytest.approx(np.mean(batch_means), rel=1e-2)  # Keras's mean
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_token_cross_entropy_trains_as_keras_ignore_class_loss():
    """`train`'s loss against Keras's `ignore_class`, on batches of lines padded
    unevenly: the same losses and, with plain SGD (which, unlike Adam, keeps the
    gradients' scale), the same weights after each update."""
    rng = np.random.default_rng(0)
    batches = []
    for width, lengths in ((6, [6, 2, 4]), (3, [1, 3, 0])):
        ids = np.zeros((3, width), np.int32)
        for row, n in enumerate(lengths):
            ids[row, :n] = rng.integers(1, VOCAB, n)
        batches.append((ids, np.roll(ids, -1, axis=1) * (ids > 0)))  # pads stay pads
    losses = {
        "keras": keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
        "textpredict": TokenCrossEntropy(),
    }
    trained = {}
    initial = build_language_model(small_config(), VOCAB, seed=3).get_weights()
    for name, loss in losses.items():
        network = build_language_model(small_config(), VOCAB, seed=3)
        network.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss)
        steps = [float(network.train_on_batch(x, y)) for x, y in batches + batches]
        trained[name] = steps, network.get_weights()
    (keras_steps, keras_weights), (steps, weights) = trained.values()
    np.testing.assert_allclose(steps, keras_steps, rtol=1e-6)
    for mine, theirs in zip(weights, keras_weights, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-7)
    assert not any(np.allclose(w, w0) for w, w0 in zip(weights, initial, strict=True))


def test_perplexity_logger_makes_the_loss_the_token_mean():
    logs = {"loss": 2.0, TOKEN_MEAN_LOSS: 2.5, "val_loss": 1.0, f"val_{TOKEN_MEAN_LOSS}": 1.5}
    PerplexityLogger().on_epoch_end(0, logs)
    assert logs == pytest.approx(
        {"loss": 2.5, "val_loss": 1.5, "perplexity": np.exp(2.5), "val_perplexity": np.exp(1.5)}
    )
    batch_logs = {"loss": 2.0, TOKEN_MEAN_LOSS: 2.1}
    PerplexityLogger().on_train_batch_end(0, batch_logs)
    assert batch_logs == {"loss": 2.0}  # the progress bar shows one loss


def test_perplexity_logger_adds_exp_of_each_loss():
    logs = {"loss": 2.0, "val_loss": 1.0, "other": 5.0}
    PerplexityLogger().on_epoch_end(0, logs)
    assert logs["perplexity"] == pytest.approx(np.exp(2.0))
    assert logs["val_perplexity"] == pytest.approx(np.exp(1.0))
    assert logs["other"] == 5.0
    # A run near divergence: exp(loss) beyond float32 would make TensorBoard's
    # summary writer raise, so the logged perplexity stops at the largest float32.
    logs = {"loss": 89.0, "val_loss": 1e6}
    PerplexityLogger().on_epoch_end(0, logs)
    assert logs["perplexity"] == logs["val_perplexity"] == FLOAT32_MAX
    assert np.isfinite(tf.constant(logs["perplexity"], tf.float32).numpy())


def test_line_evaluation_ignores_padding_and_scores_every_row_alone():
    network = build_language_model(small_config(), VOCAB, seed=4)
    rows = np.array([[2, 3, 4, 5], [2, 6, 0, 0]], np.int32)
    targets = np.array([[3, 4, 5, 7], [6, 8, 0, 0]], np.int32)
    batches = tf.data.Dataset.from_tensors((rows, targets))
    result = evaluate_lines(network, batches)
    expected = [
        tf.nn.sparse_softmax_cross_entropy_with_logits(t[t > 0], network(r[None, t > 0])[0])
        for r, t in zip(rows, targets, strict=True)
    ]
    assert result.tokens == 6
    np.testing.assert_allclose(result.cross_entropy, np.concatenate(expected).mean(), rtol=1e-5)


def test_stream_evaluation_carries_state_across_windows_and_rows():
    config = small_config()
    network = build_language_model(config, VOCAB, seed=5)
    stream = np.random.default_rng(0).integers(2, VOCAB, size=61).astype(np.int32)
    # Reference: one row, one call over the whole stream, no state to carry.
    logits = network(stream[None, :-1]).numpy()[0]
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(stream[1:], logits).numpy()
    ranked = np.argsort(-np.where(np.isin(np.arange(VOCAB), [0, 1]), -np.inf, logits), axis=1)
    top3 = np.mean([t in r[:3] for t, r in zip(stream[1:], ranked, strict=True)])

    stateful = build_language_model(config, VOCAB, stateful=True, batch_size=1)
    stateful.set_weights(network.get_weights())
    result = evaluate_stream(stateful, stream, seq_len=7)
    assert result.tokens == 60
    np.testing.assert_allclose(result.cross_entropy, nll.mean(), rtol=1e-5)
    np.testing.assert_allclose(result.perplexity, np.exp(nll.mean()), rtol=1e-5)
    np.testing.assert_allclose(result.top_k_accuracy[3], top3)

    # Several rows: every target still scored once (rows start cold, so close, not equal).
    rows = build_language_model(config, VOCAB, stateful=True, batch_size=4)
    rows.set_weights(network.get_weights())
    assert evaluate_stream(rows, stream, seq_len=7).tokens == 60


def test_model_names_resolve_under_the_models_home(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTPREDICT_MODELS", str(tmp_path))
    assert resolve_model_path("small") == tmp_path / "small"
    assert resolve_model_path("ptb/small") == tmp_path / "ptb" / "small"
    assert resolve_model_path("saved_models/m") == tmp_path / "saved_models" / "m"
    with pytest.raises(ModelError, match="empty"):
        resolve_model_path(" ")
    for unset in ("", None):  # `TEXTPREDICT_MODELS= textpredict ...` is not "here"
        if unset is None:
            monkeypatch.delenv("TEXTPREDICT_MODELS")
        else:
            monkeypatch.setenv("TEXTPREDICT_MODELS", unset)
        assert resolve_model_path("small") == Path("saved_models") / "small"


def test_a_name_may_start_with_a_relative_models_home(monkeypatch):
    # `ls saved_models` shows `books`; `--model saved_models/books` means that folder.
    monkeypatch.delenv("TEXTPREDICT_MODELS", raising=False)
    assert resolve_model_path("saved_models/books") == Path("saved_models") / "books"
    assert resolve_model_path("saved_models/ptb/small") == Path("saved_models/ptb/small")
    assert resolve_model_path("saved_models/saved_models/m") == Path("saved_models/saved_models/m")
    monkeypatch.setenv("TEXTPREDICT_MODELS", "store/models")
    assert resolve_model_path("store/models/m") == Path("store/models/m")
    assert resolve_model_path("store/m") == Path("store/models/store/m")  # not the whole home
    for home in ("store/models", "store/models/"):
        with pytest.raises(ModelError, match="names the folder of all models"):
            resolve_model_path(home)
    with pytest.raises(ModelError, match="leads outside store/models/"):
        resolve_model_path("store/models/../m")


def test_explicit_paths_are_taken_as_they_are(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTPREDICT_MODELS", str(tmp_path))
    monkeypatch.setenv("HOME", "/home/someone")
    assert str(resolve_model_path("./elsewhere/m")) == "elsewhere/m"
    assert str(resolve_model_path("./../m")) == "../m"
    assert resolve_model_path("/srv/models/m") == Path("/srv/models/m")
    assert resolve_model_path("~/models/m") == Path("/home/someone/models/m")
    assert resolve_model_path(Path("../m")) == Path("../m")  # a Path is always a path


def test_a_path_without_a_name_is_the_folder_it_names(monkeypatch, tmp_path):
    """`cd mymodel; textpredict complete -m ./` loads the current folder, whose name is
    what the run and swap directories beside it are called after."""
    (tmp_path / "m").mkdir()
    monkeypatch.chdir(tmp_path / "m")
    monkeypatch.setenv("TEXTPREDICT_MODELS", str(tmp_path / "home"))
    assert resolve_model_path("./") == tmp_path / "m"
    assert resolve_model_path(Path(".")) == tmp_path / "m"
    with pytest.raises(ModelError, match="/ cannot be a model directory"):
        resolve_model_path("/")
    with pytest.raises(ModelError, match="names the folder of all models, not a model"):
        resolve_model_path(".")


@pytest.mark.parametrize(
    "name", [".m.training", "ptb/.m.previous", "./.m.training", "/x/.m.previous"]
)
def test_names_of_working_directories_are_refused(monkeypatch, tmp_path, name):
    """`.NAME.training` and `.NAME.previous` are deleted by runs and loads of NAME."""
    monkeypatch.setenv("TEXTPREDICT_MODELS", str(tmp_path))
    with pytest.raises(ModelError, match="a name textpredict keeps for a run's working files"):
        resolve_model_path(name)
    with pytest.raises(ModelError, match="a name textpredict keeps"):
        resolve_model_path(Path(name))
    assert resolve_model_path(name.replace(".m.", ".m-")).name.startswith(".m-")


@pytest.mark.parametrize("name", ["../../etc", "..", "a/../../b", "a/..", "..\\x", "p/../.."])
def test_a_model_name_cannot_leave_the_models_home(monkeypatch, tmp_path, name):
    monkeypatch.setenv("TEXTPREDICT_MODELS", str(tmp_path / "home"))
    with pytest.raises(ModelError, match=r"leads outside .*home/; .* give its path"):
        resolve_model_path(name)


def test_replacing_a_directory_swaps_it_in_and_deletes_the_old(tmp_path):
    target, new = tmp_path / "m", tmp_path / ".m.training"
    for path, text in ((target, "old"), (new, "new")):
        path.mkdir()
        (path / "config.json").write_text(text)
    replace_directory(new, target)
    assert (target / "config.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_replaced_model_passes_its_exported_versions_on(tmp_path):
    """A server reading NAME/export keeps its versions when NAME is trained again, also
    when the swap was cut short after the new model arrived."""
    target, new = tmp_path / "m", tmp_path / ".m.training"
    for path in (target, new):
        path.mkdir()
        (path / "config.json").write_text(path.name)
    (target / "export" / "1").mkdir(parents=True)
    (target / "export" / "1" / "saved_model.pb").write_text("version 1")
    replace_directory(new, target)
    assert (target / "config.json").read_text() == ".m.training"
    assert (target / "export" / "1" / "saved_model.pb").read_text() == "version 1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    # A crash right after the new model arrived, before the old one was discarded:
    shutil.rmtree(target / "export")
    previous = tmp_path / ".m.previous"
    (previous / "export" / "2").mkdir(parents=True)
    (previous / "export" / "2" / "saved_model.pb").write_text("version 2")
    recover_previous(target)
    assert (target / "export" / "2" / "saved_model.pb").read_text() == "version 2"
    assert not previous.exists()


def test_overwrite_may_replace_only_a_directory_of_textpredict_files(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    for name in ("config.json", "model.keras", "vocabulary.txt", "metrics.json", "gates.png"):
        (model / name).write_text("x")
    (model / "logs").mkdir()
    (model / "export").mkdir()
    check_replaceable(model)
    (model / "thesis.txt").write_text("mine")
    (model / "sub").mkdir()
    with pytest.raises(ModelError, match=r"also holds sub, thesis\.txt, which --overwrite would"):
        check_replaceable(model)
    with pytest.raises(ModelError, match="is a file, not a model"):
        check_replaceable(model / "thesis.txt")
    (tmp_path / "notes").mkdir()
    with pytest.raises(ModelError, match=r"not a textpredict model \(missing config.json, model"):
        check_replaceable(tmp_path / "notes")


def test_a_swap_cut_short_between_its_renames_is_undone(tmp_path):
    """A crash after `m` was parked and before the new one arrived: the old model is
    put back by the next load (or training run); after the arrival it is deleted."""
    previous = tmp_path / ".m.previous"
    previous.mkdir()
    (previous / "config.json").write_text("old")
    recover_previous(tmp_path / "m")
    assert (tmp_path / "m" / "config.json").read_text() == "old"
    assert not previous.exists()
    previous.mkdir()  # the new model had arrived: the parked one is just deleted
    recover_previous(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_loading_reports_missing_and_foreign_directories(tmp_path):
    with pytest.raises(ModelError, match="no model at"):
        load_model(tmp_path / "absent")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hello")
    with pytest.raises(ModelError, match="not a textpredict model"):
        load_model(tmp_path / "other")
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("model.keras", "vocabulary.txt"):
        (broken / name).write_text("garbage")
    (broken / "config.json").write_text(json.dumps({"model": {}}))
    with pytest.raises(ModelError, match=r"model\.keras is damaged or incomplete"):
        load_model(broken)


def test_package_exposes_the_library_api_lazily():
    import textpredict
    import textpredict.export  # the submodule must not shadow a public name
    from textpredict import layers, training

    assert textpredict.LSTM is layers.LSTM
    assert textpredict.train is training.train
    assert callable(textpredict.export_model) and callable(textpredict.load)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        textpredict.nope  # noqa: B018
