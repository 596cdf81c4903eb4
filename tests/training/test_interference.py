import numpy as np
import pytest

from envs.training.interference import BackgroundTask, count_misses, misses_when_shared, training_share


def test_releases_are_counted_in_half_open_intervals():
    task = BackgroundTask(period_s=1.0, execution_s=0.1, deadline_s=0.5, phase_s=0.25)
    assert task.releases_in(0.0, 1.0) == 1  # at 0.25
    assert task.releases_in(0.25, 2.25) == 2  # 0.25 and 1.25; 2.25 excluded
    assert task.releases_in(3.0, 3.0) == 0


def test_a_task_misses_only_when_its_shared_response_exceeds_its_deadline():
    tight = BackgroundTask(period_s=1.0, execution_s=0.1, deadline_s=0.15)
    loose = BackgroundTask(period_s=1.0, execution_s=0.1, deadline_s=0.3)
    assert misses_when_shared([tight, loose]).tolist() == [True, False]
    counts = count_misses([tight, loose], [(0.0, 10.0), (20.0, 25.0)])
    assert counts.tolist() == [15, 0]


def test_overloaded_device_misses_every_task_and_training_keeps_its_share():
    heavy = [BackgroundTask(period_s=1.0, execution_s=0.3, deadline_s=1.0)] * 2  # u = 0.6 > 1/2
    assert misses_when_shared(heavy).all()
    assert training_share(heavy) == pytest.approx(0.5)
    light = [BackgroundTask(period_s=1.0, execution_s=0.2, deadline_s=1.0)]
    assert training_share(light) == pytest.approx(0.8)
    assert training_share([]) == 1.0


def test_task_validation_names_the_problem():
    with pytest.raises(ValueError, match="execution_s <= deadline_s <= period_s"):
        BackgroundTask(period_s=1.0, execution_s=0.5, deadline_s=0.4)
    with pytest.raises(ValueError, match="period_s"):
        BackgroundTask(period_s=np.nan, execution_s=0.5, deadline_s=0.4)
