"""lazygrad.nn: modules, layers, losses, initialisation and checkpoints, in PyTorch's shape.

    from lazygrad import nn
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    loss = model(x).cross_entropy(y)

Submodules: functional (stateless functions, also Tensor methods), init (weight
initialisation), state (safetensors checkpoints), utils (gradient clipping).
"""
from lazygrad.frontend import Tensor, install
from lazygrad.nn import functional, init, state, utils
from lazygrad.nn.activation import (CELU, ELU, GELU, SELU, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSigmoid, LogSoftmax, Mish, ReLU, ReLU6, Sigmoid, SiLU, Softmax, Softmin, Softplus, Softsign, Tanh)
from lazygrad.nn.layers import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Embedding, Flatten, LayerNorm, Linear, MaxPool2d)
from lazygrad.nn.conv_layers import (AvgPool1d, AvgPool3d, Conv1d, Conv3d, ConvTranspose1d, ConvTranspose2d, MaxPool1d, MaxPool3d, MaxUnpool2d)
from lazygrad.nn.conv_layers import AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool2d
from lazygrad.nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from lazygrad.nn.module import Identity, IncompatibleKeys, Module, ModuleDict, ModuleList, Sequential
from lazygrad.nn.transformer import (MultiheadAttention, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer, generate_square_subsequent_mask)
from lazygrad.nn.rnn import GRU, LSTM, RNN
from lazygrad.nn.state import load_checkpoint, load_state_dict, save_checkpoint, save_state_dict

__all__ = ["functional", "init", "state", "utils", "Module", "Sequential", "ModuleList", "ModuleDict", "Identity", "IncompatibleKeys",
           "Linear", "Embedding", "Conv2d", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Dropout", "Flatten", "MaxPool2d",
           "AvgPool2d", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "SiLU", "ELU", "Softplus", "Softmax",
           "LogSoftmax", "ReLU6", "Hardtanh", "Hardsigmoid", "Hardswish", "SELU", "CELU", "Mish", "Softsign",
           "LogSigmoid", "Softmin", "MSELoss", "L1Loss", "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss",
           "MultiheadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer", "TransformerEncoder",
           "TransformerDecoder", "generate_square_subsequent_mask", "RNN", "LSTM", "GRU",
           "save_state_dict", "load_state_dict", "save_checkpoint", "load_checkpoint",
           "Conv1d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "MaxPool1d", "MaxPool3d", "AvgPool1d", "AvgPool3d",
           "MaxUnpool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "AdaptiveMaxPool2d"]

install(Tensor, (functional,))  # x.cross_entropy(y), x.dropout(p), ...: nn.functional as Tensor methods
