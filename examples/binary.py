"""Binary classification of breast tumours (scikit-learn's bundled Wisconsin breast-cancer
data, 569 samples, 30 features): a sigmoid output unit trained with binary cross-entropy by
plain full-batch gradient descent.

Features are standardised with the training set's mean and deviation; the model is logistic
regression, p = sigmoid(x w + b), and every step uses all training samples. Figure: the cost
curve of training and test sets.

    python examples/binary.py [--quick] [--epochs N] [--out DIR]
"""
from __future__ import annotations

import time

from _common import parse_args, plt, save

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import lazygrad as lg
from lazygrad import Tensor, nn, optim
from lazygrad.data import progress


def main(argv: list[str] | None = None) -> dict:
    args = parse_args("binary", argv, epochs=500, quick_epochs=100, doc=__doc__, lr=0.5)
    lg.manual_seed(args.seed)
    data = load_breast_cancer()
    x_tr, x_te, y_tr, y_te = train_test_split(data.data, data.target, test_size=0.25, random_state=args.seed,
                                              stratify=data.target)
    mean, std = x_tr.mean(0), x_tr.std(0)
    x_tr, x_te = ((x_tr - mean) / std).astype(np.float32), ((x_te - mean) / std).astype(np.float32)
    y_tr, y_te = y_tr.astype(np.float32).reshape(-1, 1), y_te.astype(np.float32).reshape(-1, 1)

    model = nn.Sequential(nn.Linear(30, 1), nn.Sigmoid())
    opt = optim.SGD(model.parameters(), lr=args.lr)         # plain gradient descent
    xtr, ytr, xte, yte = Tensor(x_tr), Tensor(y_tr), Tensor(x_te), Tensor(y_te)
    costs, test_costs = [], []
    t0 = time.perf_counter()
    bar = progress(range(args.epochs), desc="binary", disable=args.no_progress)
    for _ in bar:
        p = model(xtr)
        cost = p.binary_cross_entropy(ytr)
        acc = ((p > 0.5).float() == ytr).float().mean()
        with lg.no_grad():
            test_cost = model(xte).binary_cross_entropy(yte)
        opt.zero_grad()
        cost.backward()
        opt.step(cost, acc, test_cost)     # one realize: update, training cost and accuracy, test cost
        costs.append(cost)
        test_costs.append(test_cost)
        bar.log(cost=cost, acc=acc)
    bar.close()
    train_time = time.perf_counter() - t0
    costs, test_costs = [c.item() for c in costs], [c.item() for c in test_costs]
    train_acc = float(((model(xtr).numpy() > 0.5) == y_tr).mean())
    test_acc = float(((model(xte).numpy() > 0.5) == y_te).mean())
    print(f"binary: cost {costs[0]:.3f} -> {costs[-1]:.4f} in {args.epochs} steps ({train_time:.2f} s); "
          f"accuracy train {train_acc:.1%}, test {test_acc:.1%}")

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(costs, label="training set")
    ax.plot(test_costs, label="test set")
    ax.set(xlabel="gradient descent step", ylabel="binary cross-entropy", yscale="log",
           title=f"cost (test accuracy {test_acc:.1%})")
    ax.legend()
    figures = {"binary_cost.png": save(fig, args.out / "binary_cost.png")}
    return {"first_cost": costs[0], "final_cost": costs[-1], "train_acc": train_acc, "test_acc": test_acc,
            "train_time": train_time, "figures": figures}


if __name__ == "__main__":
    main()
