"""nn.Embedding, nn.ModuleList and nn.ModuleDict against torch: the same forward for index
tensors of any shape, the same scatter-added gradient (repeated indices accumulate, the
padding row gets none), torch's initialisation and state_dict names, and training that
follows torch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lazygrad import Tensor, nn, optim


def pair(num: int = 11, dim: int = 4, padding_idx: int | None = None, seed: int = 0):
    torch.manual_seed(seed)
    te = torch.nn.Embedding(num, dim, padding_idx=padding_idx)
    le = nn.Embedding(num, dim, padding_idx=padding_idx)
    le.load_state_dict(te.state_dict())
    return le, te


@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 4), (2, 3, 2)])
def test_forward_and_gradient_match_torch_for_any_index_shape(shape):
    le, te = pair()
    r = np.random.default_rng(len(shape))
    idx = r.integers(0, 11, shape)
    if idx.size > 2:
        idx.reshape(-1)[:3] = 5   # repeated indices: their gradients accumulate
    lout, tout = le(Tensor(idx)), te(torch.tensor(idx))
    assert lout.shape == tuple(tout.shape) == shape + (4,)
    np.testing.assert_array_equal(lout.numpy(), tout.detach().numpy())
    w = r.standard_normal(shape + (4,)).astype(np.float32)
    (lout * Tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(le.weight.grad.numpy(), te.weight.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_repeated_indices_accumulate_their_gradient():
    le, _ = pair()
    le(Tensor(np.array([3, 3, 3, 1]))).sum().backward()
    g = le.weight.grad.numpy()
    np.testing.assert_array_equal(g[3], np.full(4, 3.0))
    np.testing.assert_array_equal(g[1], np.ones(4))
    assert np.count_nonzero(g.sum(1)) == 2


@pytest.mark.parametrize("padding_idx", [0, 4, -1])
def test_padding_row_is_returned_but_gets_no_gradient(padding_idx):
    le, te = pair(padding_idx=padding_idx)
    assert le.padding_idx == te.padding_idx
    np.testing.assert_array_equal(le.weight.numpy()[padding_idx], np.zeros(4))
    # a checkpoint with a non-zero padding row: forward returns it, like torch
    with torch.no_grad():
        te.weight[padding_idx] = 7.0
    le.load_state_dict(te.state_dict())
    pad = te.padding_idx
    idx = np.array([[pad, 2, pad], [1, pad, 2]])
    lout, tout = le(Tensor(idx)), te(torch.tensor(idx))
    np.testing.assert_array_equal(lout.numpy(), tout.detach().numpy())
    assert (lout.numpy()[0, 0] == 7.0).all()
    (lout * lout).sum().backward()
    (tout * tout).sum().backward()
    np.testing.assert_allclose(le.weight.grad.numpy(), te.weight.grad.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(le.weight.grad.numpy()[pad], np.zeros(4))


def test_initialisation_is_torchs():
    emb = nn.Embedding(2000, 16, padding_idx=3)
    w = emb.weight.numpy()
    assert w.shape == (2000, 16) and w.dtype == np.float32 and emb.weight.requires_grad
    assert (w[3] == 0).all()
    # N(0, 1) like torch.nn.init.normal_ (32000 samples: mean and std within a few sigma)
    assert abs(w.mean()) < 0.03 and abs(w.std() - 1.0) < 0.03
    assert [n for n, _ in emb.named_parameters()] == [n for n, _ in torch.nn.Embedding(5, 2).named_parameters()]
    assert repr(emb) == repr(torch.nn.Embedding(2000, 16, padding_idx=3))


def test_from_pretrained_is_frozen_by_default_like_torch():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    le = nn.Embedding.from_pretrained(Tensor(table))
    te = torch.nn.Embedding.from_pretrained(torch.tensor(table))
    assert le.weight.requires_grad == te.weight.requires_grad == False  # noqa: E712
    np.testing.assert_array_equal(le(Tensor(np.array([2, 0]))).numpy(), te(torch.tensor([2, 0])).numpy())
    assert nn.Embedding.from_pretrained(Tensor(table), freeze=False).weight.requires_grad


def test_embedding_errors_are_clear():
    le, _ = pair()
    with pytest.raises(IndexError, match="index 11 is out of range for 11 embeddings"):
        le(Tensor(np.array([1, 11])))
    with pytest.raises(IndexError, match="index -1"):
        le(Tensor(np.array([-1])))
    with pytest.raises(TypeError, match="indices must be integers"):
        le(Tensor(np.array([1.0])))
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(5, 2, padding_idx=5)


# --- containers: a model with an embedding, a ModuleList and a ModuleDict ---------------------------
class LgModel(nn.Module):
    def __init__(self):
        self.emb = nn.Embedding(20, 8, padding_idx=0)
        self.layers = nn.ModuleList([nn.Linear(8, 8) for _ in range(2)])
        self.heads = nn.ModuleDict({"cls": nn.Linear(8, 3), "aux": nn.Linear(8, 1)})

    def forward(self, idx):
        h = self.emb(idx).mean(1)
        for layer in self.layers:
            h = layer(h).tanh()
        return self.heads["cls"](h), self.heads["aux"](h)


class TorchModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(20, 8, padding_idx=0)
        self.layers = torch.nn.ModuleList([torch.nn.Linear(8, 8) for _ in range(2)])
        self.heads = torch.nn.ModuleDict({"cls": torch.nn.Linear(8, 3), "aux": torch.nn.Linear(8, 1)})

    def forward(self, idx):
        h = self.emb(idx).mean(1)
        for layer in self.layers:
            h = layer(h).tanh()
        return self.heads["cls"](h), self.heads["aux"](h)


def test_containers_register_parameters_with_torchs_names_and_train_like_torch():
    torch.manual_seed(1)
    tm, lm = TorchModel(), LgModel()
    assert list(lm.state_dict()) == list(tm.state_dict())   # "layers.0.weight", "heads.cls.bias", ...
    assert [n for n, _ in lm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    lm.load_state_dict(tm.state_dict())
    lopt, topt = optim.Adam(lm.parameters(), lr=0.05), torch.optim.Adam(tm.parameters(), lr=0.05)
    r = np.random.default_rng(0)
    for step in range(5):
        idx = r.integers(0, 20, (6, 5))
        idx[:, -1] = 0   # padding tokens
        y, z = r.integers(0, 3, 6), r.standard_normal((6, 1)).astype(np.float32)
        lc, la = lm(Tensor(idx))
        tc, ta = tm(torch.tensor(idx))
        lloss = lc.cross_entropy(Tensor(y)) + ((la - Tensor(z)) ** 2).mean()
        tloss = torch.nn.functional.cross_entropy(tc, torch.tensor(y)) + ((ta - torch.tensor(z)) ** 2).mean()
        lopt.zero_grad(); topt.zero_grad()
        lloss.backward(); tloss.backward()
        lopt.step(lloss); topt.step()
        np.testing.assert_allclose(lloss.item(), tloss.item(), rtol=1e-5)
        for (name, lp), tp in zip(lm.named_parameters(), tm.parameters()):
            np.testing.assert_allclose(lp.numpy(), tp.detach().numpy(), rtol=5e-5, atol=5e-6, err_msg=f"{name} step {step}")
    # the padding row never moved
    np.testing.assert_array_equal(lm.emb.weight.numpy()[0], tm.emb.weight.detach().numpy()[0])


def test_module_list_and_dict_behave_like_torchs():
    ml = nn.ModuleList([nn.Linear(2, 2)])
    ml.append(nn.ReLU()).extend([nn.Linear(2, 3)])
    ml.insert(0, nn.Tanh())
    ml += [nn.Identity()]
    assert [type(m).__name__ for m in ml] == ["Tanh", "Linear", "ReLU", "Linear", "Identity"]
    assert len(ml[1:3]) == 2 and isinstance(ml[1:3], nn.ModuleList) and ml[-1] is ml.items[-1]
    assert [n for n, _ in ml.named_parameters()] == ["1.weight", "1.bias", "3.weight", "3.bias"]
    with pytest.raises(TypeError, match="not a Module"):
        ml.append(3)
    md = nn.ModuleDict([("a", nn.Linear(2, 2))])
    md["b"] = nn.Linear(2, 1)
    assert list(md) == list(md.keys()) == ["a", "b"] and "a" in md and len(md) == 2
    assert [n for n, _ in md.named_parameters()] == ["a.weight", "a.bias", "b.weight", "b.bias"]
    assert md.pop("a") is not None and list(md) == ["b"]
    with pytest.raises(KeyError, match="without '.'"):
        md["x.y"] = nn.Identity()
    with pytest.raises(TypeError, match="not a Module"):
        md["c"] = "layer"
    assert "(b): Linear" in repr(md)
