"""nn.TransformerEncoderLayer, TransformerDecoderLayer, TransformerEncoder and
TransformerDecoder against torch's own modules with copied weights (dropout 0 or eval mode):
values and gradients of inputs and every parameter, norm_first both ways, relu and gelu,
batch_first both ways, causal and padding masks; torch's parameter names; dropout active in
training mode only."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lazygrad import Tensor, nn

TOL = dict(rtol=1e-4, atol=1e-4)
D, H, FF = 8, 2, 16


def arrays(*shapes, seed=0):
    r = np.random.default_rng(seed)
    return [r.standard_normal(s).astype(np.float32) for s in shapes]


def load(lmod, tmod):
    result = lmod.load_state_dict(tmod.state_dict())
    assert result == ([], [])
    assert sorted(n for n, _ in lmod.named_parameters()) == sorted(n for n, _ in tmod.named_parameters())


def compare(lout, tout, linputs, tinputs, lmod, tmod):
    np.testing.assert_allclose(lout.numpy(), tout.detach().numpy(), **TOL)
    g, = arrays(lout.shape, seed=99)
    (lout * Tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    for i, (a, b) in enumerate(zip(linputs, tinputs)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), err_msg=f"grad of input {i}", **TOL)
    tparams = dict(tmod.named_parameters())
    for n, p in lmod.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[n].grad.numpy(), err_msg=f"grad of {n}", **TOL)


@pytest.mark.parametrize("norm_first,activation,batch_first", [(False, "relu", False), (True, "gelu", True)])
def test_encoder_layer_matches_torch(norm_first, activation, batch_first):
    torch.manual_seed(0)
    kw = dict(dim_feedforward=FF, dropout=0.0, activation=activation, batch_first=batch_first, norm_first=norm_first)
    tl, ll = torch.nn.TransformerEncoderLayer(D, H, **kw), nn.TransformerEncoderLayer(D, H, **kw)
    load(ll, tl)
    n, s = 2, 5
    x, = arrays((n, s, D) if batch_first else (s, n, D), seed=1)
    pad = np.zeros((n, s), bool)
    pad[0, 4] = True
    lx, tx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    causal = np.triu(np.ones((s, s), bool), 1)   # bool like the padding mask (torch warns on mixed types)
    lo = ll(lx, src_mask=Tensor(causal), src_key_padding_mask=Tensor(pad), is_causal=True)
    to = tl(tx, src_mask=torch.tensor(causal), src_key_padding_mask=torch.tensor(pad), is_causal=True)
    compare(lo, to, [lx], [tx], ll, tl)


def test_square_subsequent_mask_matches_torch():
    np.testing.assert_array_equal(nn.generate_square_subsequent_mask(6).numpy(),
                                  torch.nn.Transformer.generate_square_subsequent_mask(6).numpy())


@pytest.mark.parametrize("norm_first,batch_first", [(False, True), (True, False)])
def test_decoder_layer_matches_torch(norm_first, batch_first):
    torch.manual_seed(1)
    kw = dict(dim_feedforward=FF, dropout=0.0, batch_first=batch_first, norm_first=norm_first)
    tl, ll = torch.nn.TransformerDecoderLayer(D, H, **kw), nn.TransformerDecoderLayer(D, H, **kw)
    load(ll, tl)
    n, t, s = 2, 4, 6
    tgt, mem = arrays((n, t, D) if batch_first else (t, n, D), (n, s, D) if batch_first else (s, n, D), seed=2)
    mpad = np.zeros((n, s), bool)
    mpad[1, 4:] = True
    (lt, tt), (lm, tm) = [(Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)) for a in (tgt, mem)]
    causal = np.triu(np.ones((t, t), bool), 1)
    lo = ll(lt, lm, tgt_mask=Tensor(causal), memory_key_padding_mask=Tensor(mpad))
    to = tl(tt, tm, tgt_mask=torch.tensor(causal), memory_key_padding_mask=torch.tensor(mpad))
    compare(lo, to, [lt, lm], [tt, tm], ll, tl)


def test_stacked_encoder_and_decoder_match_torch():
    torch.manual_seed(2)
    kw = dict(dim_feedforward=FF, dropout=0.0, batch_first=True)
    tenc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(D, H, **kw), 2, norm=torch.nn.LayerNorm(D),
                                       enable_nested_tensor=False)
    lenc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, **kw), 2, norm=nn.LayerNorm(D))
    load(lenc, tenc)
    assert "layers.1.self_attn.in_proj_weight" in dict(lenc.named_parameters())
    tdec = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(D, H, **kw), 2)
    ldec = nn.TransformerDecoder(nn.TransformerDecoderLayer(D, H, **kw), 2)
    load(ldec, tdec)
    src, tgt = arrays((2, 5, D), (2, 3, D), seed=3)
    (ls, ts), (lt, tt) = [(Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)) for a in (src, tgt)]
    lo = ldec(lt, lenc(ls), tgt_mask=nn.generate_square_subsequent_mask(3), tgt_is_causal=True)
    to = tdec(tt, tenc(ts), tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(3), tgt_is_causal=True)
    np.testing.assert_allclose(lo.numpy(), to.detach().numpy(), **TOL)
    g, = arrays(lo.shape, seed=4)
    (lo * Tensor(g)).sum().backward()
    (to * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ls.grad.numpy(), ts.grad.numpy(), **TOL)
    np.testing.assert_allclose(lt.grad.numpy(), tt.grad.numpy(), **TOL)
    tp = dict(tenc.named_parameters())
    for n, p in lenc.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tp[n].grad.numpy(), err_msg=n, **TOL)


def test_is_causal_alone_means_the_causal_mask():
    torch.manual_seed(3)
    ll = nn.TransformerEncoderLayer(D, H, dim_feedforward=FF, dropout=0.0)
    x = Tensor(arrays((5, 2, D), seed=5)[0])
    a = ll(x, is_causal=True).numpy()
    b = ll(x, src_mask=nn.generate_square_subsequent_mask(5)).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not np.allclose(a, ll(x).numpy(), atol=1e-3)


def test_dropout_only_in_training_mode():
    ll = nn.TransformerEncoderLayer(D, H, dim_feedforward=FF, dropout=0.5)
    x = Tensor(arrays((5, 2, D), seed=6)[0])
    ll.eval()
    a, b = ll(x).numpy(), ll(x).numpy()
    np.testing.assert_array_equal(a, b)
    ll.train()
    assert not np.allclose(ll(x).numpy(), a, atol=1e-3)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="activation"):
        nn.TransformerEncoderLayer(D, H, activation="swish")
    with pytest.raises(ValueError, match="dropout"):
        nn.TransformerDecoderLayer(D, H, dropout=2.0)
    with pytest.raises(ValueError, match="num_layers"):
        nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H), 0)
