"""Step timing with stand-in clocks: the stages add up, durations are read once per batch of steps (a
GPU is synchronised once per epoch), and the options run interleaved in A-B-B-A order."""

import pytest
import torch

from slcbench.isbe.config import IsbeConfig, LossKind, LossOption, Network, Reduction, Variant
from slcbench.isbe.experiment import DeviceData, train_variant
from slcbench.isbe.timing import StepRecorder, StepTimes, clock_for
from slcbench.speed.timing import CudaEventClock, HostClock
from slcbench.train.data import load_dataset


class ScriptedClock:
    """A host-clock stand-in: work advances ``now`` by scripted amounts; marks read it. Counts reads of
    durations, as a CUDA clock synchronises on each."""

    def __init__(self):
        self.now = 0.0
        self.duration_reads = 0

    def work(self, seconds):
        def run():
            self.now += seconds

        return run

    def mark(self):
        return self.now

    def durations_ms(self, marks):
        self.duration_reads += 1
        return HostClock().durations_ms(marks)


def test_forward_backward_and_optimizer_times_are_the_scripted_stages_and_add_up_to_the_step():
    clock = ScriptedClock()
    recorder = StepRecorder[str](clock)
    stages = [(0.003, 0.002, 0.0005), (0.010, 0.030, 0.001)]
    for key, (forward_s, backward_s, optimizer_s) in zip("ab", stages, strict=True):
        start = clock.now

        def forward(f=forward_s, b=backward_s):
            clock.work(f)()
            return clock.work(b)

        recorder.step(key, forward, clock.work(optimizer_s))
        assert clock.now - start == pytest.approx(forward_s + backward_s + optimizer_s)
    assert clock.duration_reads == 0  # nothing read (no GPU sync) while stepping
    (key_a, a), (key_b, b) = recorder.collect()
    assert (key_a, key_b) == ("a", "b")
    assert (a.forward_ms, a.backward_ms, a.optimizer_ms) == pytest.approx((3.0, 2.0, 0.5))
    assert (b.forward_ms, b.backward_ms, b.optimizer_ms) == pytest.approx((10.0, 30.0, 1.0))
    assert b.forward_backward_ms == pytest.approx(40.0) and b.backward_share == pytest.approx(0.75)
    assert recorder.collect() == []


def test_step_times_formula_3():
    times = StepTimes(forward_ms=3.0, backward_ms=1.0, optimizer_ms=100.0)  # the optimizer is outside formula 3
    assert times.backward_share == 0.25 and times.forward_backward_ms == 4.0


def test_cuda_events_on_a_gpu_and_the_host_clock_elsewhere():
    assert isinstance(clock_for(torch.device("cpu")), HostClock)
    cuda = clock_for(torch.device("cuda", 0))  # built without touching a GPU
    assert isinstance(cuda, CudaEventClock) and cuda.device == torch.device("cuda", 0)


class CountingClock(ScriptedClock):
    """Every mark advances time by 1 ms, so each stage lasts exactly 1 ms and a step 3 ms."""

    def mark(self):
        self.now += 0.001
        return self.now


class SpyRecorder(StepRecorder[int]):
    def __init__(self, clock):
        super().__init__(clock)
        self.order: list[int] = []

    def step(self, key, forward, optimizer_step):
        self.order.append(key)
        super().step(key, forward, optimizer_step)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture
def one_thread():
    # tiny networks: one thread is fastest, and immune to a machine busy with other work
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_lockstep_training_interleaves_options_abba_and_times_every_step(digits, tmp_path, one_thread):
    config = IsbeConfig(output=tmp_path, epochs=2, steps_per_epoch=3, curve_examples=50, plot=False)
    options = (
        LossOption(LossKind.ce, Reduction.sum),
        LossOption(LossKind.isbe, Reduction.none, "softmax"),
        LossOption(LossKind.isbe, Reduction.mean, "tanh"),
    )
    clock = CountingClock()
    recorder = SpyRecorder(clock)
    device_data = DeviceData.load(digits, torch.device("cpu"), config.curve_examples)
    group = train_variant(device_data, Variant(Network.net1, False), 0, options, config, recorder)
    # forward order on even steps, reversed on odd ones: any two options run A-B-B-A across two steps
    assert recorder.order == [0, 1, 2, 2, 1, 0] * 3
    assert clock.duration_reads == 6 * 3  # read per epoch, after its steps
    for option in options:
        result = group.results[option.name]
        assert len(result.steps) == 6
        stages = [ms for s in result.steps for ms in (s.forward_ms, s.backward_ms, s.optimizer_ms)]
        assert stages == pytest.approx([1.0] * 18)
        assert len(result.curves.test_accuracy) == 2 and 0.0 <= result.test_accuracy <= 1.0
    # the same initial weights and batches: CE sum and ISBE softmax (none) have the same gradient
    # (softmax(z) − onehot), so after six Adam steps they classify alike
    ce, isbe = group.results["ce-sum"].curves, group.results["isbe-softmax-none"].curves
    for key in ("train_accuracy", "validation_accuracy", "test_accuracy"):
        assert getattr(ce, key) == pytest.approx(getattr(isbe, key), abs=0.005)
