"""common.ema: exponential moving average of weights, buffers copied."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from common.ema import EMA


def make_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def perturb(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g))


def test_one_update_is_decay_weighted_average():
    model = make_model()
    d = 0.9
    ema = EMA(model, decay=d)
    old = [p.detach().clone() for p in ema.module.parameters()]
    perturb(model, 1)
    live = [p.detach().clone() for p in model.parameters()]
    assert not torch.equal(old[0], live[0])
    ema.update(model)
    for e, o, l in zip(ema.module.parameters(), old, live):
        assert_close(e, d * o + (1 - d) * l)
    # the live model is untouched and still separate from the EMA copy
    for p, l in zip(model.parameters(), live):
        assert torch.equal(p, l)


def test_k_updates_shrink_distance_by_decay_power():
    model = make_model()
    d, k = 0.8, 6
    ema = EMA(model, decay=d)
    perturb(model, 2)  # live weights now fixed
    live = torch.cat([p.detach().flatten() for p in model.parameters()]).double()
    start = torch.cat([p.detach().flatten() for p in ema.module.parameters()]).double()
    dist0 = (start - live).norm().item()
    for _ in range(k):
        ema.update(model)
    now = torch.cat([p.detach().flatten() for p in ema.module.parameters()]).double()
    dist_k = (now - live).norm().item()
    assert dist0 > 1.0
    assert dist_k / dist0 == pytest.approx(d ** k, rel=1e-4)


def test_buffers_are_copied_not_averaged():
    model = make_model()
    ema = EMA(model, decay=0.99)
    model.train()
    model(torch.randn(16, 3) * 5 + 3)  # moves BatchNorm running statistics
    bn_live, bn_ema = model[1], ema.module[1]
    assert not torch.equal(bn_live.running_mean, bn_ema.running_mean)
    ema.update(model)
    assert torch.equal(bn_ema.running_mean, bn_live.running_mean)
    assert torch.equal(bn_ema.running_var, bn_live.running_var)
    assert bn_ema.num_batches_tracked.item() == bn_live.num_batches_tracked.item() == 1


def test_ema_copy_is_frozen_eval_and_independent():
    model = make_model()
    ema = EMA(model, decay=0.5)
    assert not ema.module.training
    assert all(not p.requires_grad for p in ema.module.parameters())
    assert all(p.requires_grad for p in model.parameters())
    before = copy.deepcopy(ema.module.state_dict())
    perturb(model, 3)
    for k, v in ema.module.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_state_dict_round_trip():
    model = make_model()
    ema = EMA(model, decay=0.9)
    perturb(model, 4)
    ema.update(model)
    other = EMA(make_model(seed=5), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert other.decay == 0.9
    for (k, a), (k2, b) in zip(ema.module.state_dict().items(), other.module.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k


def test_zero_decay_copies_live_weights():
    model = make_model()
    ema = EMA(model, decay=0.0)
    perturb(model, 6)
    ema.update(model)
    for e, p in zip(ema.module.parameters(), model.parameters()):
        assert torch.equal(e, p.detach())


@pytest.mark.parametrize("decay", [1.0, 1.5, -0.1])
def test_decay_outside_range_raises(decay):
    with pytest.raises(ValueError, match="decay"):
        EMA(nn.Linear(2, 2), decay=decay)
