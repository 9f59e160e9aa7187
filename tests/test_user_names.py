"""User-level op names: every node remembers the Tensor-level op that made it (`Node.label`),
and kernel names, `Kernel.user_ops()`, LAZYGRAD_DEBUG=3 and the dump use them instead of the
primitives the op is made of (a fused relu is `relu`, not `cmplt_cmpeq_not_or`)."""
from __future__ import annotations

import re

import numpy as np

import lazygrad as lg
from lazygrad import Tensor, nn, optim


def _x(*shape: int, grad: bool = False) -> Tensor:
    rng = np.random.default_rng(0)
    return Tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=grad)


def _names(*ts: Tensor) -> list[str]:
    return [k.name for k in lg.schedule(*ts)]


def test_a_node_remembers_the_outermost_api_op_and_the_users_line():
    x = _x(4, 8)
    y = x.softmax(-1)            # softmax calls exp, sum, max, ...: the node says softmax
    assert y.node.label == "softmax"
    assert re.fullmatch(r"test_user_names\.py:\d+", y.node.origin)
    z = (x.relu() + 1).exp()     # operators are named like their methods
    assert (z.node.label, z.node.srcs[0].label, z.node.srcs[0].srcs[0].label) == ("exp", "add", "relu")
    assert (x @ x.T).node.label == "matmul" and (-x).node.label == "neg" and (2 / x).node.label == "div"


def test_modules_name_their_own_ops_and_optimizers_their_update():
    x = _x(4, 8, grad=True)
    model = nn.Sequential(nn.Linear(8, 3), nn.ReLU())
    out = model(x)
    assert out.node.label == "relu"
    assert "linear" in {s.label for s in out.node.srcs}       # Linear.forward builds its nodes itself
    loss = out.cross_entropy(Tensor(np.array([0, 1, 2, 0])))
    assert loss.node.label == "cross_entropy"
    opt = optim.Adam(model.parameters(), lr=1e-2)
    loss.backward()
    # .grad is a detached view of the gradient: the view has no op of its own
    assert {p.grad.node.srcs[0].label for p in model.parameters()} == {"linear_grad"}
    opt.step(loss)  # realized: the kernels are named after the optimizer
    x2 = _x(4, 8)
    w = Tensor(np.ones((8,), np.float32), requires_grad=True)
    (x2 * w).sum().backward()
    sgd = optim.SGD([w], lr=0.1, momentum=0.9)
    names = []
    from lazygrad.debug import events as debug

    class Names(debug.Observer):
        def kernel_built(self, kernel, rendered, program):
            names.append(kernel.name)
    obs = Names()
    debug.add_observer(obs)
    try:
        sgd.step()
    finally:
        debug.remove_observer(obs)
    # the step realizes the update (named after the optimizer) with the gradient and the loss
    assert any(n.startswith("E_sgd_8_") for n in names), names
    assert any("mul_grad" in n for n in names) and any(n.startswith("R_mul_sum_1_") for n in names), names


def test_kernel_names_use_user_level_ops_not_primitives():
    x = _x(256, 64)
    (name,) = _names((x.relu() * 2).exp())
    assert re.fullmatch(r"E_relu_mul_exp_256x64_[0-9a-f]{6}", name), name
    (name,) = _names(x.softmax(-1))
    assert name.startswith("W_softmax_256x64_"), name
    names = _names(x.layernorm() if hasattr(x, "layernorm") else x.layer_norm((64,)))
    assert names and all("cmplt" not in n and "rmax" not in n for n in names), names
    # primitive detail stays one level deeper
    (k,) = lg.schedule(x.relu())
    assert {"cmplt", "where"} <= set(k.op_names) and k.user_ops()[0][0] == "relu"
    assert k.user_summary().startswith("relu @ test_user_names.py:")


def test_gradient_kernels_say_which_ops_gradient_they_are():
    x = _x(32, 16, grad=True)
    loss = x.relu().sum()
    (g,) = lg.grad(loss, [x])
    assert g.node.label == "relu_grad"
    assert all(n.endswith(("_grad", "sum")) or "_grad_" in n for n in _names(g)), _names(g)
    assert any("relu_grad" in n for n in _names(g))
    # gradient nodes' origin still leads back to the user's line
    assert re.search(r"@ test_user_names\.py:\d+$", g.node.origin)


def test_kernel_names_are_c_identifiers_whatever_the_labels():
    x = _x(8, 8)
    for t in (x[1:3], x.T.contiguous(), x.sum(), x.max(), x > 0, x.clamp(-1, 1) ** 2):
        for name in _names(t):
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), name


def test_family_methods_installed_on_tensor_name_their_kernels():
    # x.round() and x.pow(2) are methods an op family installs (frontend/mathops.py
    # TENSOR_METHODS, functions named _method_round/_method_pow): their kernels keep the op's name
    x = lg.Tensor(np.linspace(-2, 2, 16, dtype=np.float32).reshape(4, 4))
    for name, t in (("round", x.round()), ("pow", x.pow(2)), ("cumsum", x.cumsum(1)), ("sort", x.sort(1)[0])):
        assert t.node.label == name
        assert name in lg.schedule(t)[-1].name
