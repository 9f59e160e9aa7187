"""scaled_dot_product_attention and nn.MultiheadAttention against torch 2.13: values and
gradients of query, key, value (and the projection weights) with bool and float masks,
causal attention, broadcast batch and mask dims, rows that mask every key, dropout, batch_first
both ways, key_padding_mask, need_weights with and without head averaging, unbatched input,
kdim/vdim, and a torch state_dict loading unchanged."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from lazygrad import Tensor, nn
from lazygrad.nn import functional as F

TOL = dict(rtol=2e-5, atol=2e-5)


def arrays(*shapes, seed=0):
    r = np.random.default_rng(seed)
    return [r.standard_normal(s).astype(np.float32) for s in shapes]


def both(a):
    return Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def mask_pair(m):
    if m is None:
        return None, None
    return Tensor(m), torch.tensor(m)


def check_sdpa(q, k, v, mask=None, grad=True, **kw):
    (lq, tq), (lk, tk), (lv, tv) = both(q), both(k), both(v)
    lm, tm = mask_pair(mask)
    lo = F.scaled_dot_product_attention(lq, lk, lv, attn_mask=lm, **kw)
    to = TF.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm, **kw)
    assert lo.shape == tuple(to.shape)
    np.testing.assert_allclose(lo.numpy(), to.detach().numpy(), **TOL)
    if not grad:
        return lo
    g = np.random.default_rng(9).standard_normal(lo.shape).astype(np.float32)
    (lo * Tensor(g)).sum().backward()
    (to * torch.tensor(g)).sum().backward()
    for name, a, b in (("q", lq, tq), ("k", lk, tk), ("v", lv, tv)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), err_msg=f"grad of {name}", **TOL)
    return lo


def test_plain_attention_values_and_gradients():
    check_sdpa(*arrays((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 7)))


def test_causal_square_and_rectangular():
    check_sdpa(*arrays((2, 2, 6, 4), (2, 2, 6, 4), (2, 2, 6, 4)), is_causal=True)
    # L > S and L < S: torch's top-left aligned triangle
    check_sdpa(*arrays((1, 2, 7, 4), (1, 2, 3, 4), (1, 2, 3, 5), seed=1), is_causal=True)
    check_sdpa(*arrays((1, 2, 3, 4), (1, 2, 7, 4), (1, 2, 7, 5), seed=2), is_causal=True)


def test_bool_mask_keeps_true_positions_and_broadcasts():
    q, k, v = arrays((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 4), seed=3)
    r = np.random.default_rng(4)
    for shape in [(5, 6), (1, 1, 5, 6), (2, 1, 5, 6), (2, 3, 5, 6), (1, 6)]:
        m = r.random(shape) > 0.4
        m[..., 0] = True            # no row entirely masked here
        check_sdpa(q, k, v, m)


def test_float_mask_is_added():
    q, k, v = arrays((2, 2, 5, 4), (2, 2, 6, 4), (2, 2, 6, 3), seed=5)
    m = np.random.default_rng(6).standard_normal((2, 1, 5, 6)).astype(np.float32)
    check_sdpa(q, k, v, m)
    mi = np.where(np.random.default_rng(7).random((5, 6)) > 0.5, 0.0, -np.inf).astype(np.float32)
    mi[:, 2] = 0.0
    check_sdpa(q, k, v, mi)


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_row_gives_zeros_like_torch(kind):
    q, k, v = arrays((1, 2, 4, 4), (1, 2, 5, 4), (1, 2, 5, 4), seed=8)
    m = np.ones((4, 5), bool)
    m[1] = False
    if kind == "float":
        m = np.where(m, 0.0, -np.inf).astype(np.float32)
    out = check_sdpa(q, k, v, m)
    assert not np.isnan(out.numpy()).any()
    np.testing.assert_array_equal(out.numpy()[:, :, 1], 0.0)


def test_scale_and_batch_dims_broadcast():
    # key/value shared across the batch (batch dim 1) and 3-D inputs without a head dim
    check_sdpa(*arrays((3, 2, 5, 4), (1, 2, 6, 4), (1, 2, 6, 4), seed=10), scale=0.37)
    check_sdpa(*arrays((3, 5, 4), (3, 6, 4), (3, 6, 2), seed=11))


def test_causal_and_mask_together_are_anded():
    q, k, v = arrays((1, 2, 5, 4), (1, 2, 5, 4), (1, 2, 5, 4), seed=12)
    m = np.random.default_rng(13).random((5, 5)) > 0.3
    m[:, 0] = True
    lo = F.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), attn_mask=Tensor(m), is_causal=True)
    # torch combines the two when no input requires grad (and refuses when one does)
    to = TF.scaled_dot_product_attention(torch.tensor(q), torch.tensor(k), torch.tensor(v),
                                         attn_mask=torch.tensor(m), is_causal=True)
    np.testing.assert_allclose(lo.numpy(), to.numpy(), **TOL)
    ref = TF.scaled_dot_product_attention(torch.tensor(q), torch.tensor(k), torch.tensor(v),
                                          attn_mask=torch.tensor(m & np.tril(np.ones((5, 5), bool))))
    np.testing.assert_allclose(lo.numpy(), ref.numpy(), **TOL)


def test_dropout_drops_weights_with_inverted_scaling():
    # v = identity: the output rows are the (dropped, rescaled) attention weights themselves
    q, k = arrays((1, 1, 64, 8), (1, 1, 64, 8), seed=14)
    v = np.eye(64, dtype=np.float32)[None, None]
    w = F.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v)).numpy()
    wd = F.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), dropout_p=0.5).numpy()
    dropped = wd == 0
    assert 0.4 < dropped.mean() < 0.6
    np.testing.assert_allclose(wd[~dropped], 2 * w[~dropped], rtol=1e-5)
    off = F.scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), dropout_p=0.5, training=False)
    np.testing.assert_allclose(off.numpy(), w, rtol=1e-6)


def test_bad_input_raises_clearly():
    q, k, v = (Tensor(a) for a in arrays((2, 5, 4), (2, 6, 4), (2, 6, 4)))
    with pytest.raises(ValueError, match="query features 3"):
        F.scaled_dot_product_attention(Tensor(np.zeros((2, 5, 3), np.float32)), k, v)
    with pytest.raises(ValueError, match="value length 7"):
        F.scaled_dot_product_attention(q, k, Tensor(np.zeros((2, 7, 4), np.float32)))
    with pytest.raises(ValueError, match="attn_mask shape"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=Tensor(np.ones((5, 5), bool)))
    with pytest.raises(TypeError, match="bool .* or float"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=Tensor(np.ones((5, 6), np.int32)))
    with pytest.raises(ValueError, match="dropout_p"):
        F.scaled_dot_product_attention(q, k, v, dropout_p=1.5)
    with pytest.raises(TypeError, match="floating point"):
        F.scaled_dot_product_attention(Tensor(np.ones((2, 5, 4), np.int32)), k, v)


# --- MultiheadAttention ----------------------------------------------------------------------------
def mha_pair(e=8, h=2, seed=0, **kw):
    torch.manual_seed(seed)
    tm = torch.nn.MultiheadAttention(e, h, **kw)
    lm = nn.MultiheadAttention(e, h, **kw)
    assert lm.load_state_dict(tm.state_dict()) == ([], [])
    return lm, tm


def test_mha_parameter_names_and_shapes_match_torch():
    lm, tm = mha_pair(12, 3)
    assert [(n, tuple(p.shape)) for n, p in lm.named_parameters()] == \
           [(n, tuple(p.shape)) for n, p in tm.named_parameters()]
    lk, tk = mha_pair(8, 2, kdim=5, vdim=3)
    assert {n: tuple(p.shape) for n, p in lk.named_parameters()} == {n: tuple(p.shape) for n, p in tk.named_parameters()}
    ln, tn = mha_pair(8, 2, bias=False)
    assert sorted(n for n, _ in ln.named_parameters()) == sorted(n for n, _ in tn.named_parameters())


def test_mha_fresh_init_follows_torch():
    lm = nn.MultiheadAttention(16, 4)
    np.testing.assert_array_equal(lm.in_proj_bias.numpy(), 0.0)
    np.testing.assert_array_equal(lm.out_proj.bias.numpy(), 0.0)
    bound = np.sqrt(6.0 / (16 + 48))    # xavier_uniform_ on the (3E, E) in_proj_weight
    w = lm.in_proj_weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound


def run_mha(lm, tm, q, k, v, kpm=None, am=None, **kw):
    (lq, tq), (lk, tk), (lv, tv) = both(q), both(k), both(v)
    lkp, tkp = mask_pair(kpm)
    lam, tam = mask_pair(am)
    lo, lw = lm(lq, lk, lv, key_padding_mask=lkp, attn_mask=lam, **kw)
    to, tw = tm(tq, tk, tv, key_padding_mask=tkp, attn_mask=tam, **kw)
    np.testing.assert_allclose(lo.numpy(), to.detach().numpy(), **TOL)
    if tw is None:
        assert lw is None
        loss_l, loss_t = (lo * lo).sum(), (to * to).sum()
    else:
        assert lw.shape == tuple(tw.shape)
        np.testing.assert_allclose(lw.numpy(), tw.detach().numpy(), **TOL)
        loss_l, loss_t = (lo * lo).sum() + (lw * lw).sum() * 10, (to * to).sum() + (tw * tw).sum() * 10
    loss_l.backward()
    loss_t.backward()
    for name, a, b in (("query", lq, tq), ("key", lk, tk), ("value", lv, tv)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), err_msg=f"grad of {name}", rtol=1e-4, atol=1e-4)
    tparams = dict(tm.named_parameters())
    for n, p in lm.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[n].grad.numpy(), err_msg=f"grad of {n}", rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_self_attention_with_masks_matches_torch(batch_first):
    lm, tm = mha_pair(8, 2, batch_first=batch_first)
    n, s = 3, 5
    x, = arrays((n, s, 8) if batch_first else (s, n, 8), seed=20)
    kpm = np.zeros((n, s), bool)
    kpm[1, 3:] = True
    causal = np.triu(np.ones((s, s), bool), 1)
    run_mha(lm, tm, x, x, x, kpm, causal)


def test_mha_cross_attention_float_masks_and_per_head_weights():
    lm, tm = mha_pair(8, 4, seed=1)
    q, kv = arrays((4, 2, 8), (6, 2, 8), seed=21)
    r = np.random.default_rng(22)
    am = r.standard_normal((2 * 4, 4, 6)).astype(np.float32)     # (N * H, L, S)
    kpm = np.where(r.random((2, 6)) > 0.7, -np.inf, 0.0).astype(np.float32)
    kpm[:, 0] = 0.0
    run_mha(lm, tm, q, kv, kv, kpm, am, average_attn_weights=False)
    lm2, tm2 = mha_pair(8, 4, seed=2)
    run_mha(lm2, tm2, q, kv, kv, None, None, need_weights=False)


def test_mha_unbatched_and_kdim_vdim():
    lm, tm = mha_pair(8, 2, seed=3)
    x, = arrays((5, 8), seed=23)
    run_mha(lm, tm, x, x, x, np.array([False, False, True, False, True]))
    lk, tk = mha_pair(8, 2, seed=4, kdim=5, vdim=3, batch_first=True)
    q, k, v = arrays((2, 4, 8), (2, 6, 5), (2, 6, 3), seed=24)
    run_mha(lk, tk, q, k, v)


def test_mha_eval_mode_disables_dropout_and_train_mode_drops():
    lm, tm = mha_pair(8, 2, dropout=0.5, seed=5)
    x, = arrays((6, 2, 8), seed=25)
    lm.eval()
    tm.eval()
    run_mha(lm, tm, x, x, x)
    lm.train()
    _, w = lm(Tensor(x), Tensor(x), Tensor(x), average_attn_weights=False)
    assert 0.3 < (w.numpy() == 0).mean() < 0.7


def test_mha_bad_input_raises():
    lm = nn.MultiheadAttention(8, 2)
    x = Tensor(np.zeros((5, 3, 8), np.float32))
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(8, 3)
    with pytest.raises(ValueError, match="key_padding_mask shape"):
        lm(x, x, x, key_padding_mask=Tensor(np.zeros((5, 3), bool)))
    with pytest.raises(ValueError, match="attn_mask shape"):
        lm(x, x, x, attn_mask=Tensor(np.zeros((3, 5), bool)))
    with pytest.raises(ValueError, match="is_causal"):
        lm(x, x, x, is_causal=True)
    with pytest.raises(ValueError, match="feature sizes"):
        lm(Tensor(np.zeros((5, 3, 4), np.float32)), x, x)
