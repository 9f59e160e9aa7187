"""The perceptron learning rule (Rosenblatt, 1958) on linearly separable 2-D points.

One sample at a time: predict y_hat = [w.x + b > 0]; if it is wrong, move the boundary
towards the sample: w += lr (y - y_hat) x, b += lr (y - y_hat). On separable data the rule
stops making mistakes after finitely many updates (Novikoff's theorem); training stops after
the first epoch without a mistake. Each update is a tiny lazy graph realized with the mistake
count; all updates share one cached plan. Figure: the data with the boundary after each epoch
and the mistakes per epoch.

    python examples/perceptron.py [--quick] [--epochs N] [--out DIR]
"""
from __future__ import annotations

import time

from _common import parse_args, plt, save, scatter_classes

import numpy as np
from matplotlib.ticker import MaxNLocator

import lazygrad as lg
from lazygrad import Tensor


def separable_blobs(n: int, margin: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian clouds on either side of a random line, points within `margin` dropped."""
    normal = rng.normal(size=2)
    normal /= np.linalg.norm(normal)
    x = rng.uniform(-3, 3, (4 * n, 2)) + np.array([1.0, 0.5])
    dist = (x - np.array([1.0, 0.5])) @ normal
    keep = np.abs(dist) > margin
    x, dist = x[keep][:n], dist[keep][:n]
    return x.astype(np.float32), (dist > 0).astype(np.float32)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args("perceptron", argv, epochs=50, quick_epochs=20, doc=__doc__, lr=0.1, margin=0.3)
    lg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    x_np, y_np = separable_blobs(200, args.margin, rng)
    samples = [(Tensor(x_np[i]), Tensor(y_np[i])) for i in range(len(x_np))]
    w, b = Tensor(np.zeros(2, np.float32)), Tensor(np.zeros((), np.float32))
    boundaries, mistakes = [], []
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        errors = []
        for i in rng.permutation(len(samples)):
            xi, yi = samples[i]
            y_hat = ((w * xi).sum() + b > 0).float()
            err = yi - y_hat                       # -1, 0 or +1
            w, b = w + err * args.lr * xi, b + err * args.lr
            lg.realize(w, b, err)
            errors.append(err)
        mistakes.append(int(sum(abs(e.item()) for e in errors)))
        boundaries.append((w.numpy().copy(), float(b.item())))
        if mistakes[-1] == 0:
            break
    train_time = time.perf_counter() - t0
    acc = float((((x_np @ w.numpy() + b.item()) > 0) == y_np).mean())
    print(f"perceptron: mistakes per epoch {mistakes}; accuracy {acc:.1%} after {len(mistakes)} epochs "
          f"({train_time:.2f} s, {train_time / (len(mistakes) * len(samples)) * 1e6:.0f} us per update)")

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    scatter_classes(a1, x_np, y_np, s=16)
    xs = np.linspace(x_np[:, 0].min(), x_np[:, 0].max(), 2)
    for k, (wk, bk) in enumerate(boundaries):
        if abs(wk[1]) > 1e-9:
            last = k == len(boundaries) - 1
            a1.plot(xs, -(wk[0] * xs + bk) / wk[1], color="k" if last else plt.cm.viridis(k / len(boundaries)),
                    lw=2 if last else 0.8, alpha=1 if last else 0.6,
                    label="final boundary" if last else "after epoch 1" if k == 0 else None)
    a1.set(ylim=(x_np[:, 1].min() - 0.5, x_np[:, 1].max() + 0.5), xlabel="feature 1", ylabel="feature 2",
           title=f"decision boundary per epoch (accuracy {acc:.0%})")
    a1.legend(loc="lower right", fontsize=8, framealpha=0.9)
    a2.bar(range(1, len(mistakes) + 1), mistakes)
    a2.xaxis.set_major_locator(MaxNLocator(integer=True))   # epochs are whole numbers
    a2.set(xlabel="epoch", ylabel="mistakes (= updates)", title="perceptron learning rule")
    figures = {"perceptron.png": save(fig, args.out / "perceptron.png")}
    return {"accuracy": acc, "epochs": len(mistakes), "first_mistakes": mistakes[0], "last_mistakes": mistakes[-1],
            "figures": figures}


if __name__ == "__main__":
    main()
