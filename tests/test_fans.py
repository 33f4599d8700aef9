"""Layer-aware fans, checked against connection counts read off autograd.

Oracle: for a layer that is linear in its input, the weights that one interior output depends on are the
nonzeros of d out[o] / dW with an all-ones input (that count is fan_in), and the weights that one interior
input unit multiplies are the nonzeros of d sum(out) / dW with a one-hot input (fan_out).
"""

import pytest
import torch
from torch import nn

from signalprop.init import Fans, fans


def _count_fan_in(layer, x, out_index, weight):
    weight.grad = None
    out = layer(x)
    out[out_index].backward()
    return int((weight.grad != 0).sum())


def _count_fan_out(layer, x_shape, in_index, weight, make_input=None):
    weight.grad = None
    x = torch.zeros(x_shape)
    x[in_index] = 1.0
    layer(x).sum().backward()
    return int((weight.grad != 0).sum())


def _conv_case(layer, x_shape, out_index, in_index):
    with torch.no_grad():  # no exact zeros in the weight
        layer.weight.uniform_(0.5, 1.5)
    fan_in = _count_fan_in(layer, torch.ones(x_shape), out_index, layer.weight)
    fan_out = _count_fan_out(layer, x_shape, in_index, layer.weight)
    return fan_in, fan_out


CONV_CASES = [
    ("linear", lambda: nn.Linear(6, 10), (6,), (3,), (2,)),
    ("conv1d", lambda: nn.Conv1d(4, 6, 3), (4, 20), (1, 8), (2, 10)),
    ("conv2d", lambda: nn.Conv2d(3, 5, (3, 2)), (3, 12, 12), (2, 5, 5), (1, 6, 6)),
    ("conv3d", lambda: nn.Conv3d(2, 4, 3), (2, 9, 9, 9), (1, 4, 4, 4), (0, 4, 4, 4)),
    ("grouped", lambda: nn.Conv2d(8, 12, 3, groups=4), (8, 12, 12), (5, 5, 5), (3, 6, 6)),
    ("depthwise", lambda: nn.Conv1d(6, 12, 5, groups=6), (6, 30), (4, 12), (2, 15)),
    ("transpose1d", lambda: nn.ConvTranspose1d(6, 4, 3), (6, 20), (1, 10), (2, 10)),
    ("transpose2d", lambda: nn.ConvTranspose2d(3, 5, (2, 3)), (3, 10, 10), (4, 5, 5), (1, 5, 5)),
    ("transpose_grouped", lambda: nn.ConvTranspose2d(8, 6, 3, groups=2), (8, 10, 10), (4, 5, 5), (3, 5, 5)),
    ("transpose3d", lambda: nn.ConvTranspose3d(2, 3, 2), (2, 6, 6, 6), (1, 3, 3, 3), (1, 3, 3, 3)),
]


@pytest.mark.parametrize("name, make, x_shape, out_index, in_index", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_fans_equal_connection_counts(name, make, x_shape, out_index, in_index):
    layer = make()
    fan_in, fan_out = _conv_case(layer, x_shape, out_index, in_index)
    f = fans(layer)
    assert (f.fan_in, f.fan_out) == (fan_in, fan_out)


def test_where_torch_differs():
    calc = nn.init._calculate_fan_in_and_fan_out
    grouped = nn.Conv2d(8, 16, 3, groups=4)
    assert fans(grouped) == Fans(18, 36, 9, 1, "conv (groups=4)")
    assert calc(grouped.weight) == (18, 144)  # fan_out too large by groups
    transpose = nn.ConvTranspose2d(6, 10, 3)
    assert (fans(transpose).fan_in, fans(transpose).fan_out) == (54, 90)
    assert calc(transpose.weight) == (90, 54)  # swapped
    lstm = nn.LSTM(10, 20)
    assert (fans(lstm, "weight_ih_l0").fan_out, fans(lstm, "weight_ih_l0").blocks) == (20, 4)
    assert calc(lstm.weight_ih_l0) == (10, 80)  # 4 gates taken as one matrix
    emb = nn.Embedding(100, 16)
    assert (fans(emb).fan_in, fans(emb).fan_out) == (1, 16)
    assert calc(emb.weight) == (16, 100)


def test_bilinear_fans_equal_connection_counts():
    layer = nn.Bilinear(3, 5, 4)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5)
    layer.weight.grad = None
    layer(torch.ones(1, 3), torch.ones(1, 5))[0, 2].backward()
    fan_in = int((layer.weight.grad != 0).sum())
    layer.weight.grad = None
    layer(torch.eye(3)[1:2], torch.ones(1, 5)).sum().backward()
    fan_out = int((layer.weight.grad != 0).sum())
    assert (fans(layer).fan_in, fans(layer).fan_out) == (fan_in, fan_out) == (15, 20)


def test_embedding_fans_equal_connection_counts():
    emb = nn.Embedding(7, 5)
    emb(torch.tensor([3]))[0, 2].backward()
    assert int((emb.weight.grad != 0).sum()) == fans(emb).fan_in == 1
    emb.weight.grad = None
    emb(torch.tensor([3])).sum().backward()
    assert int((emb.weight.grad != 0).sum()) == fans(emb).fan_out == 5
    assert fans(nn.EmbeddingBag(7, 5)).fan_in == 1


@pytest.mark.parametrize(
    "make, gates",
    [(lambda **k: nn.RNN(6, 8, **k), 1), (lambda **k: nn.LSTM(6, 8, **k), 4), (lambda **k: nn.GRU(6, 8, **k), 3)],
)
def test_recurrent_gate_blocks(make, gates):
    rnn = make(num_layers=2, bidirectional=True)
    assert fans(rnn, "weight_ih_l0") == Fans(6, 8, 1, gates, fans(rnn, "weight_ih_l0").rule)
    assert (fans(rnn, "weight_hh_l0_reverse").fan_in, fans(rnn, "weight_hh_l0_reverse").blocks) == (8, gates)
    assert fans(rnn, "weight_ih_l1").fan_in == 16  # both directions of layer 0 feed layer 1


def test_lstm_projection_and_cells():
    lstm = nn.LSTM(6, 8, proj_size=3)
    assert (fans(lstm, "weight_hh_l0").fan_in, fans(lstm, "weight_hh_l0").fan_out) == (3, 8)
    assert (fans(lstm, "weight_hr_l0").fan_in, fans(lstm, "weight_hr_l0").blocks) == (8, 1)
    for cell, gates in [(nn.RNNCell(5, 7), 1), (nn.LSTMCell(5, 7), 4), (nn.GRUCell(5, 7), 3)]:
        f = fans(cell, "weight_ih")
        assert (f.fan_in, f.fan_out, f.blocks) == (5, 7, gates)
        assert fans(cell, "weight_hh").fan_in == 7


def test_attention_in_proj_blocks():
    mha = nn.MultiheadAttention(12, 3)
    assert (fans(mha, "in_proj_weight").fan_in, fans(mha, "in_proj_weight").fan_out,
            fans(mha, "in_proj_weight").blocks) == (12, 12, 3)
    separate = nn.MultiheadAttention(12, 3, kdim=5, vdim=7)
    assert fans(separate, "k_proj_weight").fan_in == 5
    assert fans(separate.out_proj).fan_in == 12


def test_tensor_rule_matches_torch():
    calc = nn.init._calculate_fan_in_and_fan_out
    for shape in [(3, 5), (4, 2, 3), (6, 3, 2, 5), (2, 2, 2, 2, 2)]:
        t = torch.empty(shape)
        assert (fans(t).fan_in, fans(t).fan_out) == calc(t)


def test_fans_errors():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fans(torch.empty(4))
    with pytest.raises(ValueError, match="has no parameter 'kernel'; it has: weight, bias"):
        fans(nn.Linear(2, 3), "kernel")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fans(nn.Linear(2, 3), "bias")
    with pytest.raises(TypeError):
        fans("conv")
    assert fans(nn.Linear(2, 3)).fan_avg == 2.5
