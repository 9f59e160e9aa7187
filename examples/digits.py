"""Handwritten digits: an MLP and a small CNN on scikit-learn's bundled 8x8 digits (1797
images, nothing downloaded), each to at least 97% test accuracy.

Per epoch it prints the wall time, the training loss and the test accuracy. After training
each model is saved as a safetensors checkpoint (weights and Adam state), loaded into a
freshly built model, and evaluated again: the reloaded model gives the same accuracy.
Figures: test accuracy and loss per epoch for both models, and test digits with their
predicted labels.

    python examples/digits.py [--quick] [--epochs N] [--out DIR] [--model mlp|cnn|both]
    mpirun -n 2 python examples/digits.py --distributed

With --distributed (under mpirun) each rank trains on its share of every epoch
(DistributedSampler) with batch_size / world size rows per step, so the global batch, the steps
per epoch and the learning rate stay those of one process; DistributedDataParallel averages
the gradients, rank 0 prints, writes the checkpoint and draws the figures.
"""
from __future__ import annotations

import math
import sys
import time

from _common import parse_args, plt, save

import numpy as np
from matplotlib.ticker import MaxNLocator
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import lazygrad as lg
from lazygrad import Tensor, nn, optim
from lazygrad.data import DataLoader, progress
from lazygrad.nn.state import load_checkpoint, save_checkpoint

import lazygrad.distributed as dist


def build_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def build_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),          # 16 x 4 x 4
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),         # 32 x 2 x 2
        nn.Flatten(), nn.Linear(128, 10))


BUILDERS = {"mlp": build_mlp, "cnn": build_cnn}


def accuracy(model: nn.Module, x: Tensor, y: np.ndarray) -> float:
    model.eval()
    acc = float((model(x).argmax(1).numpy() == y).mean())
    model.train()
    return acc


def train(name: str, args, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
          y_test: np.ndarray) -> dict:
    lg.manual_seed(args.seed)
    model = BUILDERS[name]()
    if args.distributed:
        w = dist.init()
        model = dist.DistributedDataParallel(model)      # rank 0's initial parameters everywhere
        sampler = dist.DistributedSampler(len(x_train), seed=args.seed)
        loader = DataLoader(x_train, y_train, batch_size=max(1, args.batch_size // w.size), sampler=sampler,
                            drop_last=True)
        say = print if w.is_main else (lambda *a, **k: None)
        args.no_progress = args.no_progress or not w.is_main
    else:
        sampler, say = None, print
        loader = DataLoader(x_train, y_train, batch_size=args.batch_size, shuffle=True, seed=args.seed, drop_last=True)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    xt = Tensor(x_test)
    hist = {"loss": [], "acc": [], "time": []}
    say(f"{name}: {model.num_parameters()} parameters, {len(loader)} steps per epoch"
        + (f" on each of {dist.world().size} ranks (batch {loader.batch_size} per rank)" if args.distributed else ""))
    for epoch in range(args.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        # cosine learning-rate decay: the rate is a device scalar, so changing it compiles nothing
        for group in opt.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * epoch / args.epochs))
        bar = progress(loader, desc=f"{name} epoch {epoch + 1}/{args.epochs}", leave=False, disable=args.no_progress)
        for xb, yb in bar:
            logits = model(xb)
            loss = logits.cross_entropy(yb, label_smoothing=args.label_smoothing)
            acc = (logits.argmax(1) == yb).float().mean()
            opt.zero_grad()
            loss.backward()
            opt.step(loss, acc)
            bar.log(loss=loss, acc=acc)
        avg = bar.averages()
        bar.close()
        if args.distributed:   # the ranks' running averages, averaged (every rank has as many steps)
            every = dist.all_gather_object(avg)
            avg = {k: float(np.mean([a[k] for a in every])) for k in avg}
        test_acc = accuracy(model, xt, y_test)
        hist["time"].append(time.perf_counter() - t0)
        hist["loss"].append(avg["loss"])
        hist["acc"].append(test_acc)
        say(f"{name} epoch {epoch + 1:3d}: {hist['time'][-1]:6.2f} s  loss {avg['loss']:.4f}  "
              f"train acc {avg['acc']:.3f}  test acc {test_acc:.4f}")

    path = args.out / f"digits_{name}.safetensors"
    meta = {"model": name, "epochs": args.epochs, "test_acc": hist["acc"][-1]}
    if args.distributed:  # rank 0 writes; every rank waits for the whole file
        dist.save_checkpoint(path, model, opt, metadata=meta)
    else:
        save_checkpoint(path, model, opt, metadata=meta)
    fresh = BUILDERS[name]()
    fresh_opt = optim.Adam(fresh.parameters(), lr=args.lr)
    meta = load_checkpoint(path, fresh, fresh_opt)
    reloaded = accuracy(fresh, xt, y_test)
    say(f"{name}: saved {path.name}, reloaded into a new model: test accuracy {reloaded:.4f} "
          f"(saved {meta['test_acc']:.4f})")
    fresh.eval()
    preds = fresh(xt).argmax(1).numpy()
    return {"hist": hist, "reloaded_acc": reloaded, "preds": preds}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args("digits", argv, epochs=20, quick_epochs=4, doc=__doc__, lr=2e-3, label_smoothing=0.1, batch_size=32,
                      model="both", flags={"distributed": "data-parallel over the ranks of mpirun (lazygrad.distributed)"})
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(digits.images, digits.target, test_size=0.2,
                                                        random_state=0, stratify=digits.target)
    images_test = x_test  # the raw 0..16 grey levels, for the figure
    # standardise each pixel with the training set's statistics
    mean, std = x_train.mean(0), x_train.std(0) + 1.0
    x_train, x_test = [((a - mean) / std).astype(np.float32).reshape(-1, 1, 8, 8) for a in (x_train, x_test)]
    names = ["mlp", "cnn"] if args.model == "both" else [args.model]
    if "cnn" in names and not hasattr(Tensor, "conv2d"):
        print("cnn: skipped, this lazygrad has no Tensor.conv2d", file=sys.stderr)
        names.remove("cnn")
    results = {n: train(n, args, x_train, y_train, x_test, y_test) for n in names}
    if args.distributed and not dist.world().is_main:
        return {f"{n}_test_acc": r["hist"]["acc"][-1] for n, r in results.items()}  # rank 0 draws the figures

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for n, r in results.items():
        ep = np.arange(1, len(r["hist"]["acc"]) + 1)
        a1.plot(ep, r["hist"]["acc"], marker="o", label=f"{n} ({np.mean(r['hist']['time'][1:] or r['hist']['time']):.2f} s/epoch)")
        a2.plot(ep, r["hist"]["loss"], marker="o", label=n)
    a1.axhline(0.97, color="gray", ls="--", lw=0.8)
    a1.set(xlabel="epoch", ylabel="test accuracy", title="8x8 digits: test accuracy")
    a2.set(xlabel="epoch", ylabel=f"cross-entropy (label smoothing {args.label_smoothing})", yscale="log",
           title="training loss")
    for ax in (a1, a2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # epochs are whole numbers
        ax.legend()
    figures = {"digits_training.png": save(fig, args.out / "digits_training.png")}

    last = results[names[-1]]["preds"]
    # the first test digits, with every wrong prediction among the test set shown too
    wrong = np.flatnonzero(last != y_test)
    picked_wrong = [int(i) for i in wrong[:8]]
    shown = [i for i in range(len(y_test)) if i not in picked_wrong][:32 - len(picked_wrong)] + picked_wrong
    fig, axes = plt.subplots(4, 8, figsize=(9, 5.6))
    for i, ax in zip(shown, axes.flat):
        # the image as the model's input came from: 8x8 grey levels 0 (white) .. 16 (black)
        ax.imshow(images_test[i], cmap="gray_r", vmin=0, vmax=16, interpolation="nearest")
        ok = last[i] == y_test[i]
        ax.set_title(f"pred {last[i]} / true {y_test[i]}", color="k" if ok else "r", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        if not ok:
            for spine in ax.spines.values():
                spine.set(color="r", linewidth=2)
    fig.suptitle(f"{names[-1]}: predicted / true label of test digits (red: wrong; "
                 f"{len(wrong)} of {len(y_test)} wrong)")
    figures["digits_predictions.png"] = save(fig, args.out / "digits_predictions.png")
    out: dict[str, float] = {}
    for n, r in results.items():
        out[f"{n}_test_acc"] = r["hist"]["acc"][-1]
        out[f"{n}_reloaded_acc"] = r["reloaded_acc"]
        out[f"{n}_first_loss"] = r["hist"]["loss"][0]
        out[f"{n}_final_loss"] = r["hist"]["loss"][-1]
        out[f"{n}_epoch_time"] = float(np.median(r["hist"]["time"]))
    out["figures"] = figures
    out["shown_digits"] = [(int(i), int(last[i]), int(y_test[i])) for i in shown]
    return out


if __name__ == "__main__":
    main()
