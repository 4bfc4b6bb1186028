"""Sliced Wasserstein distance (ProGAN App. D): the pieces by hand, and sanity orderings."""
from __future__ import annotations

import pytest
import torch

from common.data import Digits
from common.swd import (laplacian_pyramid, normalise_descriptors, patch_descriptors, pyr_down, pyr_up,
                        sliced_wasserstein, swd)


FAST = {"patches_per_image": 32, "n_directions": 128}  # the paper's 128 / 512 are the defaults; smaller here for speed


@pytest.fixture(scope="module")
def digit_sets():
    images = Digits(32).images[:512]
    return images[:256], images[256:]


def test_default_settings_are_the_papers():
    import inspect

    defaults = {k: v.default for k, v in inspect.signature(swd).parameters.items() if v.default is not v.empty}
    assert (defaults["patches_per_image"], defaults["patch"], defaults["n_directions"], defaults["min_size"]) == \
        (128, 7, 512, 16)


def test_pyramid_levels_and_exact_reconstruction():
    x = torch.rand(2, 3, 64, 64)
    levels = laplacian_pyramid(x, min_size=16)
    assert [lv.shape[-1] for lv in levels] == [64, 32, 16]
    rebuilt = levels[-1]
    for band in reversed(levels[:-1]):  # collapse: each band adds back what the blur removed
        rebuilt = band + pyr_up(rebuilt)
    torch.testing.assert_close(rebuilt, x)


def test_pyr_up_keeps_the_mean_of_a_constant_image():
    const = torch.full((1, 1, 8, 8), 0.7)
    torch.testing.assert_close(pyr_up(const), torch.full((1, 1, 16, 16), 0.7))
    torch.testing.assert_close(pyr_down(torch.full((1, 1, 16, 16), 0.7)), torch.full((1, 1, 8, 8), 0.7))


def test_patch_descriptors_are_the_pixels_at_the_positions():
    level = torch.arange(2 * 1 * 10 * 10, dtype=torch.float32).view(2, 1, 10, 10)
    ys, xs = torch.tensor([0, 3]), torch.tensor([2, 5])
    desc = patch_descriptors(level, ys, xs, patch=3)
    assert desc.shape == (4, 1, 3, 3)
    torch.testing.assert_close(desc[1, 0], level[0, 0, 3:6, 5:8])  # image 0, second patch
    torch.testing.assert_close(desc[2, 0], level[1, 0, 0:3, 2:5])  # image 1, first patch


def test_descriptors_are_normalised_per_channel():
    desc = torch.randn(500, 3, 7, 7) * torch.tensor([1.0, 5.0, 0.1]).view(1, 3, 1, 1) + 4.0
    flat = normalise_descriptors(desc).view(500, 3, 7, 7)
    torch.testing.assert_close(flat.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(flat.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)


def test_sliced_wasserstein_in_one_dimension_is_w1():
    a = torch.tensor([[0.0], [1.0], [2.0]])
    b = torch.tensor([[3.0], [1.0], [2.0]])  # shifted by one after sorting
    value = sliced_wasserstein(a, b, n_directions=16, generator=torch.Generator().manual_seed(0))
    assert float(value) == pytest.approx(1.0)  # accumulated in float64 since the NumPy sort


def test_identical_sets_give_zero_and_order_does_not_matter(digit_sets):
    a, b = digit_sets
    assert swd(a, a, **FAST)["mean"] == 0.0
    shuffled = b[torch.randperm(len(b), generator=torch.Generator().manual_seed(1))]
    ref, perm = swd(a, b, **FAST), swd(a, shuffled, **FAST)
    for level, value in ref["levels"].items():
        assert perm["levels"][level] == pytest.approx(value, rel=1e-4, abs=1e-3)


def test_worse_sets_score_worse(digit_sets):
    a, b = digit_sets
    real = swd(a, b, **FAST)  # two disjoint halves of the real digits
    blurred = swd(a, pyr_up(pyr_down(b)), **FAST)
    noise_field = torch.randn(b.shape, generator=torch.Generator().manual_seed(0))
    noisy = swd(a, (b + 0.5 * noise_field).clamp(-1, 1), **FAST)
    noise = swd(a, torch.rand(b.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1, **FAST)
    assert real["levels"][32] < blurred["levels"][32]  # blur removes the finest band
    assert real["mean"] < noisy["mean"] < noise["mean"]
    assert set(real["levels"]) == {32, 16}


def test_shape_mismatch_is_refused(digit_sets):
    with pytest.raises(ValueError, match="same shape"):
        swd(digit_sets[0], digit_sets[1][:10])
