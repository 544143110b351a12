import os
import signal

import pytest
import torch

from tutorlib.progress import progress
from tutorlib.training import History, fit, train_loop

TRUE_WEIGHT = torch.tensor([[2.0, -1.0]])


def regression_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = torch.randn(16, 2, generator=torch.Generator().manual_seed(step))
    return inputs, inputs @ TRUE_WEIGHT.T + 0.5


def make_problem(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)

    def step_fn(batch, step):
        inputs, targets = batch
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    return model, optimizer, step_fn


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("TUTORLIB_PROGRESS", "0")


def test_history_round_trip_and_last():
    history = History()
    history.log(0, loss=1.0, acc=0.1)
    history.log(10, loss=0.5)
    assert history.last("loss") == 0.5
    assert history.series("loss") == ([0, 10], [1.0, 0.5])
    assert History.from_dict(history.to_dict()) == history
    with pytest.raises(KeyError, match=r"nothing logged under 'lr'.*\['acc', 'loss'\]"):
        history.last("lr")


def test_linear_regression_converges():
    model, _, step_fn = make_problem()
    history = train_loop(step_fn, regression_batch, 150, device="cpu", log_every=10)
    steps, losses = history.series("loss")
    assert steps[:3] == [0, 10, 20] and steps[-1] == 149
    assert losses[-1] < 0.01 * losses[0]
    assert torch.allclose(model.weight, TRUE_WEIGHT, atol=0.05)


def test_iterable_batches_are_cycled():
    seen = []
    batches = [regression_batch(0), regression_batch(1), regression_batch(2)]
    _, _, step_fn = make_problem()

    def recording_step(batch, step):
        seen.append(next(i for i, b in enumerate(batches) if b is batch))
        return step_fn(batch, step)

    train_loop(recording_step, batches, 7, device="cpu")
    assert seen == [0, 1, 2, 0, 1, 2, 0]


def test_exhausted_generator_is_refused():
    _, _, step_fn = make_problem()
    with pytest.raises(ValueError, match="batches yielded nothing"):
        train_loop(step_fn, (regression_batch(i) for i in range(2)), 5, device="cpu")


def test_ctrl_c_mid_step_finishes_the_step_then_saves_and_resumes_identically(tmp_path):
    """SIGINT arrives between the backward pass and the optimizer step: the step still completes, the loop saves
    at the boundary, and the resumed run ends with the weights of an uninterrupted one."""
    reference, _, step_fn = make_problem(seed=1)
    train_loop(step_fn, regression_batch, 20, device="cpu")

    checkpoint = tmp_path / "run.pt"
    model, optimizer, _ = make_problem(seed=1)

    def interrupted_step(batch, step):
        inputs, targets = batch
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        if step == 10:
            os.kill(os.getpid(), signal.SIGINT)  # as a Ctrl-C in the terminal or the notebook would
        optimizer.step()
        return {"loss": loss.item()}

    state = {"model": model, "optimizer": optimizer}
    with pytest.raises(KeyboardInterrupt):
        train_loop(interrupted_step, regression_batch, 20, device="cpu", checkpoint=checkpoint, state=state)
    assert torch.load(checkpoint, weights_only=True)["step"] == 11

    resumed_model, resumed_optimizer, step_fn = make_problem(seed=2)
    steps_run = []

    def recording_step(batch, step):
        steps_run.append(step)
        return step_fn(batch, step)

    history = train_loop(recording_step, regression_batch, 20, device="cpu", checkpoint=checkpoint,
                         state={"model": resumed_model, "optimizer": resumed_optimizer}, log_every=5)
    assert steps_run == list(range(11, 20))
    assert history.series("loss")[0] == [0, 10, 15, 19]  # logged every 10 steps, then every 5 after the resume
    assert history.seconds > 0
    assert torch.equal(resumed_model.weight, reference.weight)
    assert torch.equal(resumed_model.bias, reference.bias)


def test_an_exception_inside_a_step_saves_nothing_of_that_step(tmp_path):
    checkpoint = tmp_path / "run.pt"
    model, optimizer, step_fn = make_problem(seed=1)

    def failing_step(batch, step):
        if step == 6:
            step_fn(batch, step)  # the weights change, then the step fails
            raise KeyboardInterrupt
        return step_fn(batch, step)

    with pytest.raises(KeyboardInterrupt):
        train_loop(failing_step, regression_batch, 20, device="cpu", checkpoint=checkpoint,
                   state={"model": model, "optimizer": optimizer}, checkpoint_every=4)
    assert torch.load(checkpoint, weights_only=True)["step"] == 4


def test_a_checkpoint_past_the_asked_steps_is_refused(tmp_path):
    checkpoint = tmp_path / "run.pt"
    model, optimizer, step_fn = make_problem()
    state = {"model": model, "optimizer": optimizer}
    train_loop(step_fn, regression_batch, 8, device="cpu", checkpoint=checkpoint, state=state)
    with pytest.raises(ValueError, match=r"at step 8, past the 5 steps asked for"):
        train_loop(step_fn, regression_batch, 5, device="cpu", checkpoint=checkpoint, state=state)
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"run.pt cannot be read.*delete it"):
        train_loop(step_fn, regression_batch, 5, device="cpu", checkpoint=checkpoint, state=state)


def test_dry_profile_caps_the_steps_and_records_their_cost(tmp_path, monkeypatch):
    import json

    import tutorlib.profiles as profiles

    monkeypatch.setattr(profiles, "_active", "dry")
    monkeypatch.setenv("TUTORLIB_STAGES", str(tmp_path / "stages.jsonl"))
    model, _, step_fn = make_problem()
    steps_run = []
    train_loop(lambda batch, step: steps_run.append(step) or step_fn(batch, step), regression_batch, 500,
               device="cpu", desc="regression")
    assert steps_run == [0, 1]
    [line] = (tmp_path / "stages.jsonl").read_text().splitlines()
    record = json.loads(line)
    # a 2 -> 1 linear layer on 16 samples: forward 16 * 2 * 1 multiply-adds, backward the same again for the weight
    # gradient (the inputs need no gradient); 2 FLOPs per multiply-add
    assert record["stage"] == "regression" and record["planned_steps"] == 500 and record["profile"] == "dry"
    assert record["parameters"] == record["trainable_parameters"] == 3
    assert record["samples"] == 16
    assert record["flops"] == 2 * (16 * 2 * 1) * 2
    assert record["activation_bytes"] > 0 and record["operations"] > 3


def test_step_cap_variable_is_checked(monkeypatch):
    monkeypatch.setenv("TUTORLIB_STEP_CAP", "three")
    _, _, step_fn = make_problem()
    with pytest.raises(ValueError, match="TUTORLIB_STEP_CAP must be a positive whole number, got 'three'"):
        train_loop(step_fn, regression_batch, 5, device="cpu")


def test_fit_runs_the_single_optimizer_recipe_and_resumes(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 50)

    def loss_and_logs(batch, step):
        inputs, targets = batch
        return torch.nn.functional.mse_loss(model(inputs), targets), {"lr": scheduler.get_last_lr()[0]}

    history = fit(model, loss_and_logs, regression_batch, 150, optimizer, device="cpu", scheduler=scheduler)
    assert not model.training
    assert history.last("loss") < 0.01 and history.series("lr")[1][-1] == pytest.approx(0.1 * 0.1 ** 2)
    assert torch.allclose(model.weight, TRUE_WEIGHT, atol=0.05)


def test_periodic_checkpoint_records_progress(tmp_path):
    model, optimizer, step_fn = make_problem()
    checkpoint = tmp_path / "run.pt"
    saved_steps = []

    def watching_step(batch, step):
        if checkpoint.exists():
            saved_steps.append(torch.load(checkpoint, weights_only=True)["step"])
        return step_fn(batch, step)

    train_loop(
        watching_step, regression_batch, 9, device="cpu",
        checkpoint=checkpoint, state={"model": model}, checkpoint_every=4,
    )
    assert sorted(set(saved_steps)) == [4, 8]
    assert torch.load(checkpoint, weights_only=True)["step"] == 9


def test_bad_arguments_are_refused(tmp_path):
    _, _, step_fn = make_problem()
    with pytest.raises(ValueError, match="n_steps must be a positive integer, got 0"):
        train_loop(step_fn, regression_batch, 0, device="cpu")
    with pytest.raises(ValueError, match="checkpoint needs state"):
        train_loop(step_fn, regression_batch, 3, device="cpu", checkpoint=tmp_path / "c.pt")


def test_progress_is_silenced_by_environment(monkeypatch):
    assert progress(range(3)).disable
    monkeypatch.setenv("TUTORLIB_PROGRESS", "1")
    assert not progress(range(3)).disable


def test_a_step_that_takes_input_gradients_is_measured():
    """An R1-style penalty (torch.autograd.grad with create_graph) inside a measured step: 2 x 3 x 4 multiply-adds
    forward, FLOPs counted, no error from per-module tracking."""
    from tutorlib.stages import measuring

    layer = torch.nn.Linear(4, 3, bias=False)
    inputs = torch.randn(2, 4, requires_grad=True)
    with measuring(inputs) as cost:
        out = layer(inputs).sum()
        (grad,) = torch.autograd.grad(out, inputs, create_graph=True)
        grad.pow(2).sum().backward()
    assert cost.flops >= 2 * 2 * 3 * 4 and cost.samples == 2
