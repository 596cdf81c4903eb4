import pytest

from envs.dnn.mincut import DelayModel, optimal_cut
from envs.dnn.profile_io import load_profile
from envs.training.jobs import SplitLearningJob
from envs.training.split_learning import run_split_learning, split_learning_cut


class ConstantLink:
    """Transfers at a fixed rate, no queueing."""

    def __init__(self, mbps):
        self.mbps = mbps

    def send(self, sender, receiver, ready_s, transfer_bytes):
        return ready_s + transfer_bytes * 8 / (self.mbps * 1e6)


JOB = SplitLearningJob(model="mobilenet_v2", samples=100, epochs=2, batch_size=16)


def test_the_cut_is_mincuts_training_optimum():
    cut = split_learning_cut(JOB, device_speed_factor=0.3, server_speed_factor=200.0, bandwidth_mbps=20.0)
    delay = DelayModel(0.3, 200.0, 20.0, objective="training", batch_size=16)
    assert cut.device_vertices == optimal_cut(load_profile("mobilenet_v2"), delay).device_vertices


def test_iterations_send_activations_up_and_gradients_down():
    result = run_split_learning(JOB, ConstantLink(20.0), device=0, server=1, device_speed_factor=0.3,
                                server_speed_factor=200.0, bandwidth_mbps=20.0)
    assert result.iterations == JOB.iterations == 2 * 7
    assert result.bytes_sent == 2 * JOB.epochs * JOB.samples * result.cut.cut_bytes
    device_s = sum(end - start for start, end in result.device_busy_intervals_s)
    assert result.duration_s >= device_s


def test_faster_links_never_slow_split_learning():
    times = [run_split_learning(JOB, ConstantLink(mbps), 0, 1, 0.3, 200.0, mbps).duration_s
             for mbps in (1.0, 10.0, 100.0, 1000.0)]
    assert times == sorted(times, reverse=True)
    assert times[0] > times[-1]


def test_split_learning_job_validation():
    with pytest.raises(ValueError, match="batch_size"):
        SplitLearningJob(model="resnet18", samples=10, epochs=1, batch_size=0)
