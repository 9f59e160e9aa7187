"""Two concentric circles: an MLP (2-32-32-2, ReLU) trained with Adam and cross-entropy on
mini-batches.

The data is scikit-learn's make_circles (generated, nothing downloaded). Figures: the
training loss per step, the decision boundary on test points, and a heatmap of each layer's
weight gradients (mean |dL/dW| over the first and the last epoch, one colour scale for all).
They do not all shrink as the loss flattens: the output layer's gradients fall by about 3-4x,
the middle layer's stay about the same, and the first layer's grow by 2-7x (seeds 0-2): by
then the later layers' weights have grown, and the few points still near the boundary send
their error back through them into the first layer. The run prints the per-layer means.

    python examples/circles.py [--quick] [--epochs N] [--out DIR]
"""
from __future__ import annotations

import time

from _common import parse_args, plot_decision_boundary, plt, save

import numpy as np
from matplotlib.ticker import MaxNLocator
from sklearn.datasets import make_circles

import lazygrad as lg
from lazygrad import Tensor, nn, optim
from lazygrad.data import DataLoader, progress


def main(argv: list[str] | None = None) -> dict:
    args = parse_args("circles", argv, epochs=40, quick_epochs=10, doc=__doc__, lr=0.01, batch_size=64, noise=0.1)
    lg.manual_seed(args.seed)
    x, y = make_circles(n_samples=1200, noise=args.noise, factor=0.5, random_state=args.seed)
    x = x.astype(np.float32)
    x_train, y_train, x_test, y_test = x[:1024], y[:1024], x[1024:], y[1024:]

    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
    linears = [m for m in model if isinstance(m, nn.Linear)]
    opt = optim.Adam(model.parameters(), lr=args.lr)
    loader = DataLoader(x_train, y_train, batch_size=args.batch_size, shuffle=True, seed=args.seed, drop_last=True)

    losses: list[Tensor] = []
    grad_maps: dict[str, list[np.ndarray]] = {}
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        bar = progress(loader, desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, disable=args.no_progress)
        track = epoch in (0, args.epochs - 1)
        sums = [None] * len(linears)
        for xb, yb in bar:
            logits = model(xb)
            loss = logits.cross_entropy(yb)
            acc = (logits.argmax(1) == yb).float().mean()
            opt.zero_grad()
            loss.backward()
            grads = [m.weight.grad for m in linears] if track else []
            # loss, accuracy and (when tracked) the weight gradients come out of the update's realize
            opt.step(loss, acc, *grads)
            if track:
                sums = [g.abs() if s is None else s + g.abs() for s, g in zip(sums, grads)]
            losses.append(loss)
            bar.log(loss=loss, acc=acc)
        bar.close()
        if track:
            grad_maps["first" if epoch == 0 else "last"] = [(s / len(loader)).numpy() for s in sums]
    train_time = time.perf_counter() - t0
    loss_curve = np.array([l.item() for l in losses])

    model.eval()
    test_acc = float((model(Tensor(x_test)).argmax(1).numpy() == y_test).mean())
    print(f"circles: loss {loss_curve[:10].mean():.3f} -> {loss_curve[-10:].mean():.4f} over {len(losses)} steps "
          f"({train_time:.2f} s, {train_time / len(losses) * 1e3:.1f} ms/step), test accuracy {test_acc:.1%}")

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(loss_curve, lw=0.6, alpha=0.5, label="per step")
    k = max(1, len(loader))
    a1.plot(np.arange(k - 1, len(loss_curve)), np.convolve(loss_curve, np.ones(k) / k, "valid"), label="epoch mean")
    a1.set(xlabel="step", ylabel="cross-entropy", yscale="log", title="training loss")
    a1.legend()
    plot_decision_boundary(a2, lambda g: model(Tensor(g)).softmax(1).numpy()[:, 1], x_test, y_test,
                           title=f"decision boundary (test accuracy {test_acc:.1%})", xlabel="x", ylabel="y")
    figures = {"circles.png": save(fig, args.out / "circles.png")}

    # one colour scale for every panel, so first and last epoch (and the layers) compare by eye
    vmax = max(float(g.max()) for maps in grad_maps.values() for g in maps)
    fig, axes = plt.subplots(len(grad_maps), len(linears), figsize=(12, 3.2 * len(grad_maps)), squeeze=False,
                             layout="constrained")
    for r, (when, maps) in enumerate(grad_maps.items()):
        for c, g in enumerate(maps):
            im = axes[r, c].imshow(g, aspect="auto", cmap="magma", vmin=0.0, vmax=vmax)
            axes[r, c].set(title=f"layer {c + 1} |dL/dW|, {when} epoch", xlabel="input unit", ylabel="output unit")
            axes[r, c].xaxis.set_major_locator(MaxNLocator(integer=True))
            axes[r, c].yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.colorbar(im, ax=axes, label="mean |dL/dW| over the epoch's steps")
    figures["circles_gradients.png"] = save(fig, args.out / "circles_gradients.png")
    layer_grads = {when: [float(g.mean()) for g in maps] for when, maps in grad_maps.items()}
    print("circles: mean |dL/dW| per layer, " + "; ".join(
        f"{when} epoch " + " ".join(f"{v:.2e}" for v in vals) for when, vals in layer_grads.items()))
    return {"first_loss": float(loss_curve[:10].mean()), "final_loss": float(loss_curve[-10:].mean()),
            "test_acc": test_acc, "first_grad": float(np.mean(layer_grads["first"])),
            "last_grad": float(np.mean(layer_grads["last"])), "layer_grads": layer_grads, "train_time": train_time,
            "figures": figures}


if __name__ == "__main__":
    main()
