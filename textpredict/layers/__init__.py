"""Hand-written recurrent layers."""

from textpredict.layers.cifg import CIFG
from textpredict.layers.gru import GRU
from textpredict.layers.lstm import LSTM
from textpredict.layers.peephole import PeepholeLSTM
from textpredict.layers.recurrent import Recurrent
from textpredict.layers.simple_rnn import SimpleRNN

__all__ = ["CIFG", "GRU", "LSTM", "PeepholeLSTM", "Recurrent", "SimpleRNN"]
