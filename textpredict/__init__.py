"""textpredict: next-word prediction with a hand-written Keras LSTM.

The library behind the command line, for notebooks and programs::

    import textpredict

    model = textpredict.train(["my_text/"], model="mine")   # or textpredict.load("mine")
    textpredict.Predictor(model).rank("the clouds are in the", k=3)
    textpredict.export_model(model)                           # TF Serving SavedModel

The public names are loaded lazily so that `textpredict --help` does not pay for
importing TensorFlow.
"""

import os
from importlib import import_module

# TensorFlow's oneDNN kernels, before TensorFlow is imported (it reads this once). They
# are on by default only on CPUs with AVX-512 VNNI or newer; on an AVX2 CPU they make
# a training step faster (README, "Speed": benchmarks/lstm_step.py).
# TF_ENABLE_ONEDNN_OPTS=0 in the environment keeps TensorFlow's Eigen kernels.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

__version__ = "0.1.0"

_EXPORTS = {
    "LSTM": ("textpredict.layers", "LSTM"),
    "PeepholeLSTM": ("textpredict.layers", "PeepholeLSTM"),
    "CIFG": ("textpredict.layers", "CIFG"),
    "GRU": ("textpredict.layers", "GRU"),
    "SimpleRNN": ("textpredict.layers", "SimpleRNN"),
    "ModelConfig": ("textpredict.model", "ModelConfig"),
    "TrainingConfig": ("textpredict.training", "TrainingConfig"),
    "train": ("textpredict.training", "train"),
    "load": ("textpredict.model", "load_model"),
    "evaluate": ("textpredict.evaluation", "evaluate"),
    "Predictor": ("textpredict.predictor", "Predictor"),
    "export_model": ("textpredict.export", "export_model"),
}


def __getattr__(name: str):
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        return getattr(import_module(module), attribute)
    raise AttributeError(f"module 'textpredict' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS])
