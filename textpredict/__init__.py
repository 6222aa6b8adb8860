"""textpredict: next-word prediction with a hand-written Keras LSTM.

The public names are loaded lazily so that `textpredict --help` does not pay for
importing TensorFlow.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "LSTM": "textpredict.layers",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'textpredict' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS])
