"""Named training recipes: Zaremba et al.'s Penn Treebank configurations, and ours.

Zaremba, Sutskever & Vinyals (2014), "Recurrent neural network regularization",
Table 1, as TensorFlow's reference ``ptb_word_lm.py`` writes them:

=============  =====  =======  ====  =====  ======  ========  ===========  ====
preset         units  dropout  T     clip   epochs  lr decay  after epoch  init
=============  =====  =======  ====  =====  ======  ========  ===========  ====
zaremba-small  200    0        20    5      13      0.5       4            0.1
zaremba-medium 650    0.5      35    5      39      0.8       6            0.05
zaremba-large  1500   0.65     35    10     55      1/1.15    14           0.04
=============  =====  =======  ====  =====  ======  ========  ===========  ====

All three: 2 LSTM layers, word vectors as wide as the state, batches of 20, truncated
BPTT over T steps with the state carried across batches, plain SGD from learning rate
1, gradients clipped by their global norm, 10,000-word vocabulary. Test perplexities
in the paper: 114.5, 82.7, 78.4 (the TensorFlow reference: 115.9, 82.1, 78.3).

One conversion: the papers minimise the cross-entropy *summed* over the T steps of a
window (averaged over the batch); Keras minimises its mean over all tokens, which is
``1/T`` of that. The same updates therefore need the learning rate times T and the
clipping norm divided by T: ``lr·clip(T·g, c) = (lr·T)·clip(g, c/T)``.

Ours, ``tied-500``, is a wider model for about the same CPU time (43 minutes on 2
cores, 1.5 times zaremba-small's 29): 2 × 500 units with the output layer sharing the
embedding matrix (Press & Wolf 2017; Inan et al. 2017), dropout 0.4, T = 35, and 7
epochs, the learning rate halved after each from the fifth. A token costs it about
2.7 times what it costs zaremba-small, so it reads the corpus 7 times instead of 13.
Test perplexity 88.88, against zaremba-small's 112.32 (benchmarks/results/
ptb_tied_500.txt and ptb_zaremba_small.txt). Its first five epochs take zaremba-small's
time (30 minutes); stopped there (``--epochs 5``) it reaches test perplexity 96.26
(benchmarks/results/ptb_tied_500_5_epochs.txt).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from textpredict.errors import TextpredictError
from textpredict.model import ModelConfig
from textpredict.training import TrainingConfig

#: Penn Treebank's 10,000 words (``<unk>`` and ``<eos>`` among them) plus padding and [UNK].
PTB_VOCABULARY = 10_002
BATCH = 20


@dataclass(frozen=True)
class Preset:
    """A model and a training configuration."""

    model: ModelConfig
    training: TrainingConfig


def zaremba(units, dropout, steps, clip, epochs, decay, constant_epochs, init) -> Preset:
    """One row of Zaremba et al.'s Table 1 (see the module docstring)."""
    return Preset(
        ModelConfig(
            cell="lstm",
            vocabulary_size=PTB_VOCABULARY,
            embedding_dim=units,
            units=units,
            num_layers=2,
            dropout=dropout,
            init_scale=init,
            tokenization="pretokenized",
        ),
        TrainingConfig(
            epochs=epochs,
            batch_size=BATCH,
            seq_len=steps,
            sequences="stream",
            optimizer="sgd",
            learning_rate=1.0 * steps,  # lr 1 on the loss summed over the window
            lr_decay=decay,
            constant_epochs=constant_epochs,
            clipnorm=None,
            global_clipnorm=clip / steps,
        ),
    )


def tied(preset: Preset) -> Preset:
    """`preset` with the output layer sharing the embedding matrix (Press & Wolf 2017)."""
    return replace(preset, model=replace(preset.model, tie_embeddings=True))


PRESETS: dict[str, Preset] = {
    "zaremba-small": zaremba(200, 0.0, 20, 5.0, 13, 0.5, 4, 0.1),
    "zaremba-medium": zaremba(650, 0.5, 35, 5.0, 39, 0.8, 6, 0.05),
    "zaremba-large": zaremba(1500, 0.65, 35, 10.0, 55, 1 / 1.15, 14, 0.04),
    # Ours: a wider model in about zaremba-small's CPU time (see the module docstring).
    "tied-500": tied(zaremba(500, 0.4, 35, 5.0, 7, 0.5, 4, 0.05)),
}


def preset_configs(
    name: str | None, model_overrides: dict, training_overrides: dict
) -> tuple[ModelConfig, TrainingConfig]:
    """A preset's configurations (or the defaults) with the given fields replaced."""
    if name is None:
        return ModelConfig(**model_overrides), TrainingConfig(**training_overrides)
    if name not in PRESETS:
        raise TextpredictError(f"preset must be one of {', '.join(PRESETS)}; got {name!r}")
    preset = PRESETS[name]
    return replace(preset.model, **model_overrides), replace(preset.training, **training_overrides)
