"""Hand-written recurrent layers."""

from textpredict.layers.lstm import LSTM
from textpredict.layers.recurrent import Recurrent

__all__ = ["LSTM", "Recurrent"]
