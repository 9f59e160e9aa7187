"""Fuzzy XOR: a 2-8-1 tanh network learns XOR from noisy inputs.

Each input is a corner of the unit square, (0,0) (0,1) (1,0) (1,1), blurred with Gaussian
noise; the label is the XOR of the corner's coordinates. No straight line separates the
classes, so the hidden layer has to bend the plane. Full-batch Adam on the logits with
binary cross-entropy; figures: loss curve and decision boundary.

    python examples/xor.py [--quick] [--epochs N] [--out DIR]
"""
from __future__ import annotations

import time

from _common import parse_args, plot_decision_boundary, plt, save

import numpy as np

import lazygrad as lg
from lazygrad import Tensor, nn, optim
from lazygrad.data import progress


def fuzzy_xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    corners = rng.integers(0, 2, (n, 2))
    x = corners + rng.normal(0.0, noise, (n, 2))
    return x.astype(np.float32), (corners[:, 0] ^ corners[:, 1]).astype(np.float32)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args("xor", argv, epochs=400, quick_epochs=150, doc=__doc__, lr=0.05, noise=0.15)
    lg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    x_train, y_train = fuzzy_xor(512, args.noise, rng)
    x_test, y_test = fuzzy_xor(512, args.noise, rng)

    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    opt = optim.Adam(model.parameters(), lr=args.lr)
    x, y = Tensor(x_train), Tensor(y_train.reshape(-1, 1))
    losses = []
    t0 = time.perf_counter()
    bar = progress(range(args.epochs), desc="xor", disable=args.no_progress)
    for _ in bar:
        loss = model(x).binary_cross_entropy_with_logits(y)
        opt.zero_grad()
        loss.backward()
        opt.step(loss)            # the loss is realized with the update: the forward runs once
        losses.append(loss)
        bar.log(loss=loss)
    bar.close()
    train_time = time.perf_counter() - t0
    losses = [l.item() for l in losses]

    model.eval()
    test_acc = float(((model(Tensor(x_test)).numpy()[:, 0] > 0) == y_test).mean())
    print(f"xor: loss {losses[0]:.3f} -> {losses[-1]:.4f} in {args.epochs} steps ({train_time:.2f} s), "
          f"test accuracy {test_acc:.1%}")

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(losses)
    a1.set(xlabel="step", ylabel="binary cross-entropy", yscale="log", title="training loss")
    plot_decision_boundary(a2, lambda g: model(Tensor(g)).sigmoid().numpy()[:, 0], x_test, y_test,
                           title=f"decision boundary (test accuracy {test_acc:.1%})", xlabel="input 1", ylabel="input 2")
    figures = {"xor.png": save(fig, args.out / "xor.png")}
    return {"first_loss": losses[0], "final_loss": losses[-1], "test_acc": test_acc, "train_time": train_time,
            "figures": figures}


if __name__ == "__main__":
    main()
