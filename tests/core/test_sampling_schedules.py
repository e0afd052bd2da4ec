"""Flow-matching sigma schedule and the shift helper (Wan `get_sampling_sigmas` conventions)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harmony_core.sampling import DEFAULT_SHIFT, DEFAULT_STEPS, flow_sigmas, shift_sigma


def test_defaults_are_the_papers():
    assert (DEFAULT_STEPS, DEFAULT_SHIFT) == (40, 5.0)


def test_endpoints_length_and_order():
    sig = flow_sigmas()
    assert sig.shape == (41,) and sig.dtype == torch.float32
    assert sig[0].item() == 1.0 and sig[-1].item() == 0.0
    assert bool((sig[1:] < sig[:-1]).all())


def test_shifted_middle_value_matches_closed_form():
    sig = flow_sigmas(40, 5.0)
    # base sigma 0.5 at index 20: 5 * 0.5 / (1 + 4 * 0.5) = 5 / 6
    assert sig[20].item() == pytest.approx(5.0 / 6.0, abs=1e-7)
    # any index: base 1 - k / n
    for k in (1, 7, 39):
        base = 1 - k / 40
        assert sig[k].item() == pytest.approx(5 * base / (1 + 4 * base), abs=1e-7)


@pytest.mark.parametrize("steps,shift", [(40, 5.0), (50, 5.0), (7, 3.0), (1, 5.0)])
def test_equals_wan_get_sampling_sigmas_plus_final_zero(steps, shift):
    # Wan: sigma = np.linspace(1, 0, steps + 1)[:steps]; shift; scheduler appends 0; float32
    base = np.linspace(1, 0, steps + 1)[:steps]
    wan = np.concatenate([shift * base / (1 + (shift - 1) * base), [0.0]]).astype(np.float32)
    assert torch.equal(flow_sigmas(steps, shift), torch.from_numpy(wan))


def test_shift_one_is_plain_linspace():
    assert torch.allclose(flow_sigmas(10, 1.0), torch.linspace(1, 0, 11), atol=1e-7)


def test_shift_sigma_tensor_and_float():
    s = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    out = shift_sigma(s, 5.0)
    assert torch.allclose(out, 5 * s / (1 + 4 * s))
    assert out[0].item() == 0.0 and out[-1].item() == 1.0
    assert shift_sigma(0.5, 3.0) == pytest.approx(0.75)


@pytest.mark.parametrize("shift", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_shift_is_rejected(shift):
    with pytest.raises(ValueError, match="shift"):
        flow_sigmas(10, shift)


@pytest.mark.parametrize("steps", [0, -3, 2.5])
def test_bad_steps_are_rejected(steps):
    with pytest.raises(ValueError, match="steps"):
        flow_sigmas(steps)
