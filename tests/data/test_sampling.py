"""Frame sampling: gaps within the max skip, a first frame with objects, curriculum, reversal rate."""

from __future__ import annotations

import numpy as np
import pytest

from components.config import config_from_dict
from components.data.config import SamplerConfig
from components.data.sampling import frame_jump, max_skip_at, plan_clip
from components.errors import ConfigError


@pytest.mark.parametrize("rule, count", [("stcn", 3), ("xmem", 8), ("stcn", 8)])
def test_gaps_stay_within_the_jump_and_frames_are_distinct(rule: str, count: int) -> None:
    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(count, 60))
        jump = int(rng.integers(1, 16))
        has = list(rng.random(n) < 0.6) or [True]
        if not any(has):
            has[int(rng.integers(n))] = True
        plan = plan_clip(has, count, jump, rule, bool(trial % 2), rng)
        forward = plan.positions[::-1] if plan.reversed else plan.positions
        gaps = np.diff(forward)
        # distinct frames are possible when an object frame has count-1 frames after or before it
        possible = any(h and (n - 1 - p >= count - 1 or p >= count - 1) for p, h in enumerate(has))
        assert len(forward) == count and (gaps >= (1 if possible else 0)).all() and (gaps <= jump).all(), (forward, jump)
        assert all(0 <= p < n for p in forward)
        assert has[plan.positions[0]]  # the reference frame holds an object


def test_gaps_reach_the_jump() -> None:
    """The rule uses its whole range: gaps equal to the jump do occur (not only small steps)."""
    rng = np.random.default_rng(1)
    gaps = [g for _ in range(400) for g in np.diff(plan_clip([True] * 80, 3, 10, "stcn", False, rng).positions)]
    assert max(gaps) == 10 and min(gaps) == 1


def test_first_frame_is_an_object_frame_even_when_objects_appear_late() -> None:
    rng = np.random.default_rng(2)
    has = [False] * 10 + [True] * 10  # like a YouTube-VOS object entering half-way
    firsts = {plan_clip(has, 3, 5, rule, rev, rng).positions[0] for rule in ("stcn", "xmem") for rev in (False, True) for _ in range(50)}
    assert min(firsts) >= 10


def test_reversal_rate_is_half_and_reversed_clips_run_backwards() -> None:
    rng = np.random.default_rng(3)
    plans = [plan_clip([True] * 30, 3, 5, "stcn", bool(rng.random() < 0.5), rng) for _ in range(2000)]
    rate = np.mean([p.reversed for p in plans])
    assert abs(rate - 0.5) < 0.04  # 4 standard deviations of a fair coin over 2000 draws is ~0.045
    for p in plans:
        assert (np.diff(p.positions) < 0).all() if p.reversed else (np.diff(p.positions) > 0).all()


def test_short_videos_repeat_frames_instead_of_failing() -> None:
    rng = np.random.default_rng(4)
    assert sorted(plan_clip([True, True], 3, 5, "stcn", False, rng).positions) in ([0, 1, 1], [0, 0, 1])
    assert len(plan_clip([True], 8, 5, "xmem", False, rng).positions) == 8
    with pytest.raises(ValueError):
        plan_clip([False, False], 3, 5, "stcn", False, rng)


def test_curriculum_switch_points_and_annotation_interval() -> None:
    stcn = SamplerConfig()
    assert [max_skip_at(p, stcn) for p in (0.0, 0.099, 0.1, 0.29, 0.3, 0.79, 0.8, 1.0)] == [5, 5, 10, 10, 15, 15, 5, 5]
    xmem = config_from_dict(SamplerConfig, {"preset": "xmem"})
    assert (xmem.num_frames, xmem.max_objects, xmem.rule) == (8, 3, "xmem")
    assert max_skip_at(0.85, xmem) == 15 and max_skip_at(0.9, xmem) == 5
    assert frame_jump(15, 5) == 3 and frame_jump(5, 5) == 1 and frame_jump(10, 1) == 10 and frame_jump(3, 5) == 1


def test_sampler_config_is_strict() -> None:
    with pytest.raises(ConfigError, match="unknown config key 'max_jump'"):
        config_from_dict(SamplerConfig, {"max_jump": 3})
    with pytest.raises(ConfigError, match="one fraction fewer"):
        config_from_dict(SamplerConfig, {"max_skip": [5, 10]})
    with pytest.raises(ConfigError, match="ascending"):
        config_from_dict(SamplerConfig, {"skip_switch_at": [0.5, 0.2, 0.9]})
