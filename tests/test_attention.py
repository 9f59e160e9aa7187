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


# --- the fused attention kernel (issue 18) ------------------------------------------------------
# ir/attention.py recognises softmax(q kᵀ · scale + mask) v in the graph; the forward is one
# ATTENTION kernel, the backward a row reduction and two ATTENTION kernels (dQ; dK and dV).
import gc  # noqa: E402

import lazygrad as lg  # noqa: E402
from lazygrad import config  # noqa: E402
from lazygrad.runtime import device as rt  # noqa: E402


def kinds(*ts):
    return [k.kind for k in lg.schedule(*ts)]


def sdpa_both(q, k, v, mask=None, mask_grad=False, dtype=np.float32, **kw):
    """lazygrad's and torch's SDPA of the same arrays, values and every gradient (q, k, v and
    a float mask when mask_grad), the gradient of sum(out * g) for a fixed random g."""
    q, k, v = (a.astype(dtype) for a in (q, k, v))
    lt = [Tensor(a, requires_grad=True) for a in (q, k, v)]
    tt = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    if mask is not None:
        grad = mask_grad and mask.dtype != np.bool_
        mask = mask.astype(dtype) if mask.dtype != np.bool_ else mask
        lt.append(Tensor(mask, requires_grad=grad))
        tt.append(torch.tensor(mask, requires_grad=grad))
    lo = F.scaled_dot_product_attention(*lt[:3], attn_mask=lt[3] if mask is not None else None, **kw)
    to = TF.scaled_dot_product_attention(*tt[:3], attn_mask=tt[3] if mask is not None else None, **kw)
    g = np.random.default_rng(99).standard_normal(lo.shape).astype(dtype)
    wrt = [t for t in lt if t.requires_grad]
    lgr = lg.grad(lo, wrt, Tensor(g))
    (to * torch.tensor(g)).sum().backward()
    return lo, lgr, to, [t.grad for t in tt if t.requires_grad]


FUSED_CASES = {
    "plain": (((2, 3, 9, 8), (2, 3, 9, 8), (2, 3, 9, 8)), {}),
    "L!=S, Ev!=E": (((2, 2, 7, 8), (2, 2, 40, 8), (2, 2, 40, 5)), {}),
    "causal": (((1, 2, 37, 4), (1, 2, 37, 4), (1, 2, 37, 4)), dict(is_causal=True)),
    "causal L>S": (((1, 2, 9, 4), (1, 2, 5, 4), (1, 2, 5, 6)), dict(is_causal=True)),
    "broadcast batch": (((3, 2, 6, 4), (1, 2, 33, 4), (3, 1, 33, 4)), dict(scale=0.37)),
    "3-d": (((3, 5, 4), (3, 6, 4), (3, 6, 2)), {}),
}


@pytest.mark.parametrize("case", sorted(FUSED_CASES))
def test_fused_attention_values_and_gradients_match_torch(case):
    shapes, kw = FUSED_CASES[case]
    lo, lgr, to, tgr = sdpa_both(*arrays(*shapes, seed=len(case)), **kw)
    assert kinds(lo) == ["attention"]
    np.testing.assert_allclose(lo.numpy(), to.detach().numpy(), **TOL)
    for name, a, b in zip("qkv", lgr, tgr):
        np.testing.assert_allclose(a.numpy(), b.numpy(), err_msg=f"grad of {name}", **TOL)


MASKS = {
    "bool (L, S)": lambda r: r.random((9, 40)) > 0.4,
    "bool per batch (B, 1, L, S)": lambda r: r.random((2, 1, 9, 40)) > 0.4,
    "bool key padding (B, 1, 1, S)": lambda r: r.random((2, 1, 1, 40)) > 0.3,
    "float (L, S)": lambda r: r.standard_normal((9, 40)),
    "float with -inf": lambda r: np.where(r.random((2, 3, 9, 40)) > 0.5, 0.0, -np.inf),
}


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mask", sorted(MASKS))
def test_fused_attention_with_masks_matches_torch(mask, causal):
    r = np.random.default_rng(31)
    m = MASKS[mask](r)
    m[..., 0] = True if m.dtype == np.bool_ else 0.0  # no fully masked row (torch's causal + mask differs there)
    q, k, v = arrays((2, 3, 9, 8), (2, 3, 40, 8), (2, 3, 40, 6), seed=32)
    lo, lgr, _, _ = sdpa_both(q, k, v, m, is_causal=causal) if not causal else (None, None, None, None)
    if causal:
        # torch refuses is_causal with a mask when an input requires grad: its reference is the
        # mask and-ed with the triangle by hand, lazygrad's the two arguments
        tri = np.tril(np.ones((9, 40), bool))
        _, _, to, tgr = sdpa_both(q, k, v, (m & tri) if m.dtype == np.bool_ else np.where(tri, m, -np.inf))
        leaves = [Tensor(a, requires_grad=True) for a in (q, k, v)]
        lo = F.scaled_dot_product_attention(*leaves, attn_mask=Tensor(m if m.dtype == np.bool_ else m.astype(np.float32)),
                                            is_causal=True)
        lgr = lg.grad(lo, leaves, Tensor(np.random.default_rng(99).standard_normal(lo.shape).astype(np.float32)))
    else:
        _, _, to, tgr = sdpa_both(q, k, v, m)
    assert "matmul" not in kinds(lo) and kinds(lo)[-1] == "attention"
    np.testing.assert_allclose(lo.numpy(), to.detach().numpy(), **TOL)
    for name, a, b in zip("qkv", lgr, tgr):
        np.testing.assert_allclose(a.numpy(), b.numpy(), err_msg=f"grad of {name}", **TOL)


def test_fused_attention_float_mask_gradient_matches_torch():
    r = np.random.default_rng(41)
    q, k, v = arrays((2, 2, 9, 8), (2, 2, 11, 8), (2, 2, 11, 8), seed=42)
    lo, lgr, to, tgr = sdpa_both(q, k, v, r.standard_normal((2, 1, 9, 11)), mask_grad=True)
    for name, a, b in zip(("q", "k", "v", "mask"), lgr, tgr):
        np.testing.assert_allclose(a.numpy(), b.numpy(), err_msg=f"grad of {name}", **TOL)


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fused_attention_fully_masked_rows_give_zeros_and_zero_gradients(kind):
    q, k, v = arrays((2, 2, 6, 4), (2, 2, 35, 4), (2, 2, 35, 4), seed=43)
    m = np.random.default_rng(44).random((2, 2, 6, 35)) > 0.5
    m[..., 0] = True
    m[0, 1, 2] = False
    m[1, 0, 5] = False
    if kind == "float":
        m = np.where(m, 0.0, -np.inf).astype(np.float32)
    lo, lgr, to, tgr = sdpa_both(q, k, v, m)
    assert kinds(lo)[-1] == "attention"
    out = lo.numpy()
    np.testing.assert_array_equal(out[0, 1, 2], 0.0)
    np.testing.assert_array_equal(lgr[0].numpy()[0, 1, 2], 0.0)
    np.testing.assert_allclose(out, to.detach().numpy(), **TOL)
    for name, a, b in zip("qkv", lgr, tgr):
        np.testing.assert_allclose(a.numpy(), b.numpy(), err_msg=f"grad of {name}", **TOL)


def test_fused_attention_float64():
    if not lg.device().supports(lg.float64):
        pytest.skip("the device has no fp64")
    q, k, v = arrays((2, 2, 9, 8), (2, 2, 40, 8), (2, 2, 40, 6), seed=45)
    m = np.random.default_rng(46).random((9, 40)) > 0.3
    lo, lgr, to, tgr = sdpa_both(q, k, v, m, dtype=np.float64, is_causal=False)
    assert lo.dtype is lg.float64 and kinds(lo) == ["attention"]
    np.testing.assert_allclose(lo.numpy(), to.detach().numpy(), rtol=1e-12, atol=1e-12)
    for name, a, b in zip("qkv", lgr, tgr):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-11, atol=1e-11, err_msg=f"grad of {name}")


def user_attention(q, k, v):
    """The pattern written by hand, not through scaled_dot_product_attention."""
    return (q @ k.transpose(-2, -1) * (1 / np.sqrt(q.shape[-1]))).softmax(-1) @ v


@pytest.mark.parametrize("T", [128, 1024])
@pytest.mark.parametrize("how", ["sdpa", "user", "user causal"])
def test_attention_kernel_counts(T, how):
    """SDPA and the user's own pattern: forward 1 kernel, backward 3 (Δ = rowsum(dO·O), dQ,
    dK with dV) at (B=2, H=4, T, D=32); scheduled, not run."""
    leaves = [Tensor(a, requires_grad=True) for a in arrays(*[(2, 4, T, 32)] * 3, seed=T)]
    if how == "sdpa":
        o = F.scaled_dot_product_attention(*leaves)
    elif how == "user":
        o = user_attention(*leaves)
    else:
        q, k, v = leaves
        keep = nn.attention.causal_mask(T)
        o = keep.where(q @ k.transpose(-2, -1) * 0.125, float("-inf")).softmax(-1) @ v
    assert kinds(o) == ["attention"]
    dO = Tensor(arrays((2, 4, T, 32), seed=1)[0])
    grads = lg.grad(o, leaves, dO)
    ks = lg.schedule(o, *grads)
    parts = [k.kernel.core.arg.part.value if k.kind == "attention" else k.kind for k in ks]
    assert len(ks) == 4, parts                           # forward 1 + backward 3
    assert sorted(parts) == ["dk", "dq", "out", "reduce"], parts
    # through .backward() too (the .grad detaches are written by the kernels themselves)
    o.sum().backward()
    assert len(lg.schedule(o, *(t.grad for t in leaves))) == 4


def test_attention_declined_shapes_keep_the_plain_graph_and_say_why():
    q, k, v = (Tensor(a) for a in arrays((1, 1, 4, 300), (1, 1, 5, 300), (1, 1, 5, 3)))
    o = F.scaled_dot_product_attention(q, k, v)
    ks = lg.schedule(o)
    assert "attention" not in [k.kind for k in ks]
    assert any("attention not fused: head dim 300 > 256" in k.reason for k in ks), [k.reason for k in ks]
    ref = TF.scaled_dot_product_attention(*(torch.tensor(t.numpy()) for t in (q, k, v)))
    np.testing.assert_allclose(o.numpy(), ref.numpy(), **TOL)
    # dropout puts a random mask between the softmax and the matmul: not the pattern
    d = F.scaled_dot_product_attention(q, k, Tensor(arrays((1, 1, 5, 3))[0]), dropout_p=0.5)
    assert "attention" not in kinds(d)


def test_attention_setting_off_gives_the_plain_graph():
    q, k, v = (Tensor(a) for a in arrays((2, 2, 9, 8), (2, 2, 9, 8), (2, 2, 9, 8)))
    fused = F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy()
    with config.override(attention=False):
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        assert "attention" not in kinds(o) and "matmul" in kinds(o)
        np.testing.assert_allclose(o.numpy(), fused, **TOL)


def forward_peak_bytes(T, attention=True):
    """Device bytes a fresh pool holds after the SDPA forward at (B=2, H=4, T, D=32): every
    buffer it allocated, live or back in the pool (memory_stats)."""
    gc.collect()                 # buffers of earlier tests still waiting for the collector
    rt.get_device().pool.clear()
    before = rt.memory_stats()["live_bytes"]
    q, k, v = (Tensor(a) for a in arrays(*[(2, 4, T, 32)] * 3, seed=T))
    with config.override(attention=attention):
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True).realize()
    st = rt.memory_stats()
    del o
    return st["live_bytes"] + st["pooled_bytes"] - before


def test_attention_forward_memory_grows_linearly_in_T():
    Ts = [256, 512, 1024, 2048]
    peaks = [forward_peak_bytes(T) for T in Ts]
    io = [4 * 2 * 4 * T * 32 * 4 for T in Ts]    # q, k, v and the output, float32
    for T, p, b in zip(Ts, peaks, io):
        assert p <= 1.2 * b, (T, p, b)             # nothing of size T² (that would be 2 MiB at T=256)
    for a, b in zip(peaks, peaks[1:]):
        assert b <= 2.2 * a, peaks                 # doubling T doubles the bytes, not x4
