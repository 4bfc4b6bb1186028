"""The offline feature extractor: a deterministic digit classifier, cached."""
from __future__ import annotations

import pytest
import torch

from common import features
from common.features import DigitClassifier, digits_split, load_classifier, train_classifier


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cache")
    model, acc = load_classifier(seed=0, directory=directory, verbose=False)
    return directory, model, acc


def test_split_is_a_fixed_disjoint_80_20_partition():
    x_tr, y_tr, x_te, y_te = digits_split(0)
    assert len(x_tr) + len(x_te) == 1797 and len(x_te) == 1797 // 5
    assert x_tr.shape[1:] == (1, 28, 28)
    assert set(y_te.tolist()) == set(range(10))
    # no test image appears in the training split
    flat_tr = {tuple(v) for v in x_tr.flatten(1).mul(1000).round().int().tolist()}
    duplicates = sum(tuple(v) in flat_tr for v in x_te.flatten(1).mul(1000).round().int().tolist())
    assert duplicates <= 2  # scikit-learn's digits hold a handful of identical images, not more
    torch.testing.assert_close(digits_split(0)[2], x_te)


def test_classifier_generalises_to_the_held_out_split(cached):
    _, model, acc = cached
    assert acc >= 0.95
    _, _, x_te, y_te = digits_split(0)
    assert features.accuracy(model, x_te, y_te) == pytest.approx(acc)
    # a random network is near chance on the same split
    torch.manual_seed(1)
    assert features.accuracy(DigitClassifier(), x_te, y_te) < 0.3


def test_cache_is_reused_without_training(cached, monkeypatch):
    directory, model, acc = cached
    monkeypatch.setattr(features, "train_classifier", lambda *a, **k: pytest.fail("trained again"))
    again, acc2 = load_classifier(seed=0, directory=directory)
    assert acc2 == acc
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_training_is_deterministic_and_leaves_the_callers_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a, acc_a = train_classifier(seed=0, epochs=1)
    assert torch.equal(torch.rand(3), expected_next)
    b, acc_b = train_classifier(seed=0, epochs=1)
    assert acc_a == acc_b
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    c, _ = train_classifier(seed=1, epochs=1)
    assert not torch.equal(a.head.weight, c.head.weight)


def test_features_accept_any_size_and_colour(cached):
    model = cached[1]
    with torch.no_grad():
        assert model.features(torch.zeros(4, 1, 28, 28)).shape == (4, 128)
        assert model.features(torch.zeros(2, 3, 64, 64)).shape == (2, 128)
        assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
    grey = torch.rand(1, 1, 28, 28)
    torch.testing.assert_close(DigitClassifier.prepare(grey.repeat(1, 3, 1, 1)), grey)
