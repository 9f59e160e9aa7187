"""Quickstart: build a lazy graph, look at the fused kernels, run it, check it with numpy."""
import numpy as np

import lazygrad as lg
from lazygrad import Tensor

lg.manual_seed(0)
x = Tensor.randn(256, 128)
y = ((x * 2 + 1).relu() * (-x).exp() + x.sigmoid()).tanh()
kernels = lg.schedule(y)
print(f"{len(kernels)} kernel(s) for a 7-op chain:")
for k in kernels:
    print(" ", k)
xn = x.numpy()
ref = np.tanh(np.maximum(xn * 2 + 1, 0) * np.exp(-xn) + 1 / (1 + np.exp(-xn)))
print("max |lazygrad - numpy| =", float(np.abs(y.numpy() - ref).max()))
print("row sums:", (y.sum(axis=1)[:4]).numpy())
print("counters:", lg.counters)
