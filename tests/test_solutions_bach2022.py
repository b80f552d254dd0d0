"""The solutions of the Try-it exercises of the bach2022 notebooks, recomputed at a small size.

Each test reruns, with the twolayer functions the notebook calls, the computation an exercise
changes, at a size where the behaviour its solution states already shows, and asserts that
behaviour. The notebooks' seeds are kept, so the runs are pieces of the notebooks' own runs
(shorter, or with fewer replicas).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from twolayer.data import append_bias, cluster_task
from twolayer.implicit_bias import margin_ascent, margin_network
from twolayer.max_margin import kernel_max_margin
from twolayer.model import Replica, TwoLayerReLU, replica_grid
from twolayer.online_sgd import (
    mass_at_directions,
    mean_field_student,
    online_sgd,
    sgd_step,
    teacher_network,
)
from twolayer.rng import derive_seed

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------------------------
# bach2022-figure2: teacher and students in the plane
# ---------------------------------------------------------------------------------------------

M0 = 4
STUDENT_POOL = [500 + j for j in range(32)]  # the default's 32 student seeds at seed = 0
F2_STEPS = 2000  # the smoke profile's seed_steps (default: 5000)
WINDOW = math.radians(10.0)  # align_deg of the default profile
ALIGN_TOL = 0.1
SUCCESS = 1e-3


def teacher_ranking() -> tuple[list[int], np.ndarray]:
    """The geometric criterion of the notebook at seed 0 with 100 candidates and 20 degrees."""
    pool = teacher_network(2, M0, list(range(100)))
    directions = pool.W.view(-1, M0, 2)
    lines = torch.cat([directions, -directions], dim=1)
    cosines = lines @ lines.transpose(1, 2) - 3 * torch.eye(2 * M0, dtype=lines.dtype)
    separation = np.degrees(np.arccos(cosines.amax(dim=(1, 2)).clamp(-1, 1).numpy()))
    signs = pool.a.view(-1, M0)
    mixed = ((signs > 0).any(dim=1) & (signs < 0).any(dim=1)).numpy()
    order = np.argsort(-separation, kind="stable")
    eligible = [int(i) for i in order if mixed[i] and separation[i] >= 20.0]
    return eligible, separation


def seed_run(teachers: list[int], widths: list[int], rule: str, steps: int = F2_STEPS):
    """The notebook's many-seed run: every width of every student seed, one group per teacher.

    Returns the final risks (teacher, width, seed), the largest gap between a teacher mass
    and the student mass within 10 degrees of its direction, the largest mirrored mass, and
    the median angle (degrees) through which the input weights of the first teacher's
    students turned.
    """
    teacher = teacher_network(2, M0, teachers, dtype=torch.float32)
    grid = replica_grid(widths, STUDENT_POOL)
    students = TwoLayerReLU.initialize(
        2,
        grid * len(teachers),
        scaling="mean_field",
        first_init="sphere",
        output_init="sign",
        trained="both",
        dtype=torch.float32,
    )
    run = online_sgd(
        students,
        teacher,
        steps=steps,
        lr=0.002,
        batch_size=100,
        input_gradient=rule,
        test_size=1000,
        record_every=steps,
        seed=0,
        progress=False,
    )
    shape = (len(teachers), len(widths), len(STUDENT_POOL))
    r_teacher = (teacher.a * teacher.W.norm(dim=1)).view(len(teachers), M0).double()
    r_teacher = r_teacher.repeat_interleave(len(grid), dim=0)
    directions = teacher.W.view(len(teachers), M0, 2)
    at = mass_at_directions(students, directions, WINDOW).double()
    mirror = mass_at_directions(students, -directions, WINDOW).double()
    gap = (at - r_teacher).abs().amax(dim=1).numpy().reshape(shape)
    mirrored = mirror.abs().amax(dim=1).numpy().reshape(shape)
    first = len(STUDENT_POOL) * sum(widths)  # the neurons of the first teacher's group
    W, W0 = students.W[:first].double(), students.W0[:first].double()
    cos = torch.nn.functional.cosine_similarity(W, W0, dim=1).clamp(-1, 1)
    turned = float(np.degrees(torch.arccos(cos).median().item()))
    return run.risk[-1].reshape(shape), gap, mirrored, turned


@pytest.fixture(scope="module")
def figure2_sum():
    """Teachers 70 (the default's choice) and 55, widths 5, 10, 20, 32 seeds, summed gradient."""
    return seed_run([70, 55], [5, 10, 20], "sum")


@pytest.fixture(scope="module")
def figure2_mean():
    """Teacher 70, widths 5 and 20, 32 seeds, the input gradient averaged over the batch."""
    return seed_run([70], [5, 20], "mean")


@pytest.mark.solution("bach2022-figure2-ex-mean")
def test_figure2_mean_gradient_slows_the_input_layer(figure2_sum, figure2_mean):
    """Averaging the input gradient: input steps 100 times smaller, no student succeeds.

    Checks "averaging divides the input-layer step by the batch size, 100: the output weights
    move as before", exactly, on one step, and the consequence "the particles turn much less
    within the run" and "wide-students-succeed and teacher-neurons-recovered fail" on the
    notebook's 32 student seeds against teacher 70 (the default's choice), widths 5 and 20,
    after 2000 steps (the smoke profile's seed_steps; the default runs 5000). The solution's
    default counts (0, 4 of 32 and 2 of 32 below 1e-3 after 5000 steps) are the tail of a
    slow descent: after 2000 steps none of them is below the threshold, while with the summed
    gradient every m = 20 student already is, and every m = 20 student is still more than
    align_tol away from the teacher's masses.
    """
    # one step from the same start and batch: output update equal, input update / batch size
    teacher = teacher_network(2, M0, [70])
    X = torch.randn(1, 100, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = teacher(X)
    moves = {}
    for rule in ("sum", "mean"):
        student = mean_field_student(2, [20], [500])
        sgd_step(student, X, y, 0.002, rule)
        moves[rule] = (student.a - student.a0, student.W - student.W0)
    torch.testing.assert_close(moves["mean"][0], moves["sum"][0], rtol=1e-12, atol=0)
    torch.testing.assert_close(moves["mean"][1] * 100, moves["sum"][1], rtol=1e-10, atol=0)

    risk_sum, _, _, turned_sum = figure2_sum
    risk_mean, gap_mean, _, turned_mean = figure2_mean
    assert (risk_sum[0, 2] < SUCCESS).sum() == 32  # summed rule: every m = 20 student succeeds
    assert (risk_mean < SUCCESS).sum() == 0  # averaged rule: none of m = 5 and m = 20
    assert (gap_mean[0, 1] > ALIGN_TOL).all()  # no m = 20 student recovers the teacher
    assert turned_mean < 0.75 * turned_sum  # the particles turn less (median 37 against 63 deg)


@pytest.mark.solution("bach2022-figure2-ex-width")
def test_figure2_width_ten_lies_between(figure2_sum):
    """m = 10 succeeds far more often than m = 5 and about as often as m = 20.

    Checks "its success rate falls between those of m = 5 and m = 20, close to m = 20" and
    "the other widths do not change, since every student sees the same batches". The rates
    use the notebook's 32 student seeds against teacher 70 after 2000 steps (the smoke
    profile's seed_steps; the default's 5000 give the solution's 0.53, 0.91 and 1.00; here
    13, 27 and 32 of 32): the failures of m = 5 are local minima reached early, so the
    ordering is already there. The invariance is exact and is checked on 4 seeds and 300
    steps in float64, with and without m = 10 in the batch. The search rule's first seed,
    502, is the same with and without m = 10.
    """
    risk = figure2_sum[0][0]  # teacher 70: (width 5, 10, 20; seed)
    rate = (risk < SUCCESS).mean(axis=1)
    assert rate[0] <= 0.6
    assert rate[1] >= 0.75 and rate[0] + 0.2 <= rate[1] <= rate[2]
    assert rate[2] == 1.0
    narrow_fails = risk[0] >= 10 * SUCCESS
    with_ten = np.flatnonzero(narrow_fails & (risk[1:] < SUCCESS).all(axis=0))
    without_ten = np.flatnonzero(narrow_fails & (risk[2] < SUCCESS))
    assert STUDENT_POOL[with_ten[0]] == STUDENT_POOL[without_ten[0]] == 502

    teacher = teacher_network(2, M0, [70])
    risks = {}
    for widths in ([5, 20], [5, 10, 20]):
        students = TwoLayerReLU.initialize(
            2,
            replica_grid(widths, STUDENT_POOL[:4]),
            scaling="mean_field",
            first_init="sphere",
            output_init="sign",
            trained="both",
            dtype=torch.float64,
        )
        run = online_sgd(
            students, teacher, steps=300, lr=0.002, record_every=50, seed=0, progress=False
        )
        risks[len(widths)] = run.risk.reshape(len(run.risk_steps), len(widths), 4)
    np.testing.assert_allclose(risks[3][:, [0, 2]], risks[2], rtol=1e-9)


@pytest.mark.solution("bach2022-figure2-ex-teacher")
def test_figure2_unchecked_teacher_is_recovered_more_slowly(figure2_sum):
    """Teacher 55 is the best separated, and its students get to it later than teacher 70's.

    Checks "the page takes teacher 55, the best separated (33.8 degrees against 32.6 for
    teacher 70)" exactly (the geometric criterion at seed 0 trains nothing), and "teacher 55
    is recovered less reliably and more slowly" with its numbers after 2000 steps (the smoke
    profile's seed_steps), on the notebook's 32 student seeds with m = 20: 27 of them are
    below 1e-3 against all 32 for teacher 70, and the median largest gap between a teacher
    mass and the student's is 0.51 against 0.27. The mirrored-mass counts of the solution
    (6 against 1 of 32) are those of the default's 5000 steps: at 2000 steps the mass of
    many students is still on its way, mirrored masses included, so they are not compared here.
    """
    eligible, separation = teacher_ranking()
    assert eligible[0] == 55
    assert separation[55] == pytest.approx(33.8, abs=0.05)
    assert separation[70] == pytest.approx(32.6, abs=0.05)
    assert 70 in eligible[:6]  # among the default's teacher_checks = 6, where it was chosen

    risk, gap, _, _ = figure2_sum
    wide = 2  # m = 20
    successes = (risk[:, wide] < SUCCESS).sum(axis=1)  # teacher 70, teacher 55
    assert successes[0] == 32 and 24 <= successes[1] <= 30  # 32 and 27 of 32
    median_gap = np.median(gap[:, wide], axis=1)
    assert median_gap[0] == pytest.approx(0.27, abs=0.05)
    assert median_gap[1] == pytest.approx(0.51, abs=0.05)


# ---------------------------------------------------------------------------------------------
# bach2022-figure3: success rate against the width, d = 20
# ---------------------------------------------------------------------------------------------

F3_REPS = 6  # the default's repetitions


def figure3_run(m0=10, widths=(1, 20), steps=4000, lr=0.005, rule="sum"):
    """The notebook's batched run (d = 20, batch 100, seed 0, float32).

    Returns the recorded steps (every 1000) and the risks there, (record, repetition, m).
    """
    teacher = teacher_network(
        20, m0, [derive_seed(0, "teacher", r) for r in range(F3_REPS)], dtype=torch.float32
    )
    student = mean_field_student(
        20,
        list(widths),
        [derive_seed(0, "student", r) for r in range(F3_REPS)],
        dtype=torch.float32,
    )
    run = online_sgd(
        student,
        teacher,
        steps=steps,
        lr=lr,
        batch_size=100,
        input_gradient=rule,
        test_size=1000,
        record_every=1000,
        trajectory_every=steps,
        seed=0,
        progress=False,
    )
    return list(run.risk_steps), run.risk.reshape(len(run.risk_steps), F3_REPS, len(widths))


@pytest.fixture(scope="module")
def figure3_authors():
    """The authors' rule and step, widths 1 and 20, 6 repetitions, 4000 steps (recorded every
    1000)."""
    return figure3_run()


@pytest.mark.solution("bach2022-figure3-ex-mean")
def test_figure3_mean_gradient_no_success(figure3_authors):
    """With the input gradient averaged, no run succeeds, and m = 1 ends where it did.

    Checks "no run succeeds, at any width" (the smallest final risk well above 1e-3) and
    "the risk at m = 1 does not change" on the default's six repetitions at m = 1 and
    m = 20 = 2 m0 after 3000 steps (the smoke profile's budget), against the summed rule's
    run after the same 3000 steps (same teachers, students and batches). With the summed
    gradient four of the six m = 20 runs are below 1e-3 by then; with the averaged one the
    input layer has travelled a hundred times less and every run is still above 0.05. More
    steps bring the averaged runs down only slowly: the solution's 900 runs of the full
    10^4 steps all stay above 5.6e-3.
    """
    steps, authors = figure3_authors
    summed = authors[steps.index(3000)]
    _, mean = figure3_run(rule="mean", steps=3000)
    mean = mean[-1]
    assert (summed[:, 1] < 1e-3).sum() >= 3
    assert (mean >= 1e-3).all()
    assert mean.min() >= 5e-3
    m1_sum, m1_mean = np.median(summed[:, 0]), np.median(mean[:, 0])
    assert 0.5 <= m1_sum <= 5.0  # a single unit fails at order one
    assert m1_mean == pytest.approx(m1_sum, rel=0.2)


@pytest.mark.solution("bach2022-figure3-ex-step")
def test_figure3_half_step_same_successes_higher_risks(figure3_authors):
    """Half the step: as many runs succeed, and the successes end at much higher risks.

    Checks "almost as many runs succeed" and "the median final risk of the successful runs
    is higher" (1.2e-5 against 4.3e-7 at 10^4 steps and 30 repetitions) on the default's six
    repetitions with m = 20 = 2 m0 after 4000 steps, both steps for the same number of
    steps. Which minimum a run heads for is decided in the first few thousand steps (four of
    six succeed with either step here); the half step then leaves the successful runs about
    an order of magnitude higher (here 4.2e-4 against 2.6e-5), as at 10^4 steps.
    """
    full = figure3_authors[1][-1]
    half = figure3_run(lr=0.0025)[1][-1]
    full_ok, half_ok = full[:, 1] < 1e-3, half[:, 1] < 1e-3
    assert full_ok.sum() >= 3
    assert abs(int(half_ok.sum()) - int(full_ok.sum())) <= 1
    assert np.median(half[half_ok, 1]) > 5 * np.median(full[full_ok, 1])
    assert (half[:, 0] >= 1e-3).all()  # m = 1 fails with either step


@pytest.mark.solution("bach2022-figure3-ex-teacher")
def test_figure3_smaller_teacher_moves_the_rise():
    """m0 = 5: no success below 5, and nine runs in ten or more succeed from m = 2 m0 = 10.

    Checks "no student with m < 5 succeeds" and "the rate reaches 0.9 at m = 10 = 2 m0" on
    the default's six repetitions (d = 20) at widths 1 to 5 and 10 after 3000 steps, the
    smoke profile's budget: narrower students than the teacher cannot fit it at any length,
    and at 2 m0 the successes are in place before 3000 steps (six of six here). At m = m0 = 5
    the rate is low (1 of 6 here, 9 of 30 in the solution's run).
    """
    widths = [1, 2, 3, 4, 5, 10]
    final = figure3_run(m0=5, widths=widths, steps=3000)[1][-1]
    success = final < 1e-3
    assert not success[:, :4].any()
    assert success[:, 5].mean() >= 0.9
    assert success[:, 4].mean() < success[:, 5].mean()


# ---------------------------------------------------------------------------------------------
# bach2022-figure5: both layers against the output layer, k = 4 clusters in the plane
# ---------------------------------------------------------------------------------------------

F5_SETS, F5_WIDTH = 4, 500  # the default's four training sets of 100 points and m = 500
F5_STEPS = 1000  # ascent steps of the training runs here (default: 20 000)


def figure5_data(radius: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The notebook's four training sets (k = 4, n = 100, seed 0), inputs (x1, x2, 1)."""
    tasks = [cluster_task(4, 2, seed=g, radius=radius) for g in range(F5_SETS)]
    samples = [task.sample(100, "train") for task in tasks]
    X = torch.stack([append_bias(x) for x, _ in samples])
    return X, torch.stack([labels for _, labels in samples])


def figure5_svms(radius: str):
    """Kernel max-margin classifiers of every set's frozen features, and those features."""
    X, y = figure5_data(radius)
    model = margin_network(
        3, [Replica(F5_WIDTH, g) for g in range(F5_SETS)], "output", dtype=torch.float32
    )
    W = model.W.double().reshape(F5_SETS, F5_WIDTH, 3)
    svms = []
    for g in range(F5_SETS):
        features = torch.relu(W[g] @ X[g].double().T)
        svms.append(
            kernel_max_margin(features.T @ features / F5_WIDTH, y[g], tol=1e-7, max_iter=5000)
        )
    return svms, W


def figure5_train(radius: str, variant: str, step_size: float):
    """Margin ascent of one variant on the four sets; the model and its misclassifications."""
    X, y = figure5_data(radius)
    model = margin_network(
        3, [Replica(F5_WIDTH, g) for g in range(F5_SETS)], variant, dtype=torch.float32
    )
    run = margin_ascent(
        model, X, y, steps=F5_STEPS, step_size=step_size, record_every=F5_STEPS, progress=False
    )
    with torch.no_grad():
        wrong = (y * model(X.float()).double() <= 0).sum(dim=1).numpy()
    return model, wrong, run.normalized[-1]


@pytest.fixture(scope="module")
def figure5_code_svms():
    return figure5_svms("code")


@pytest.fixture(scope="module")
def figure5_code_both():
    return figure5_train("code", "both", 2.0)


@pytest.mark.solution("bach2022-figure5-ex-disk")
def test_figure5_uniform_disks_give_smaller_margins(figure5_code_svms, figure5_code_both):
    """Points uniform on the disks: smaller kernel SVM margins and smaller trained margins.

    Checks "the kernel SVM's normalized margin drops (0.0049, 0.0032, 0.0028, 0.0042 against
    0.0055, 0.0035, 0.0032, 0.0047 with the code's law)" exactly at the default's size: the
    SVMs of the m = 500 frozen features need no training. For the trained networks, "a
    smaller normalized margin" for both layers is checked after 1000 steps of eta = 2 (the
    default runs 20 000): the network is not done then (it separates no set yet, which the
    solution says it does at the end), but on every set its normalized margin is lower with
    the disk law than with the code's, the ordering the solution reports at the end.
    """
    code = [svm.margin for svm in figure5_code_svms[0]]
    disk = [svm.margin for svm in figure5_svms("disk")[0]]
    np.testing.assert_allclose(code, [0.0055, 0.0035, 0.0032, 0.0047], atol=6e-5)
    np.testing.assert_allclose(disk, [0.0049, 0.0032, 0.0028, 0.0042], atol=6e-5)
    assert all(d < c for d, c in zip(disk, code, strict=True))
    _, _, normalized_code = figure5_code_both
    _, _, normalized_disk = figure5_train("disk", "both", 2.0)
    assert (normalized_disk < normalized_code).all()


@pytest.mark.solution("bach2022-figure5-ex-step")
def test_figure5_smaller_step_neither_finishes(figure5_code_svms, figure5_code_both):
    """eta = 0.5 in place of 2 for the same steps: both rows are further from done.

    Checks, for the same number of steps and a quarter of the flow time: "the output layer
    misclassifies more training points and agrees with its SVM on less of the grid", and
    "the both-layers network misclassifies more points, its normalized margin lower", on the
    default's four training sets and m = 500, with 1000 steps of each step size (the default
    runs 20 000): both are monotone in the flow time, so the comparison of the two schedules
    at the same number of steps shows at any length (here, as at the default, eta = 0.5
    leaves training points misclassified on every set for both layers).
    """
    svms, W = figure5_code_svms
    X = figure5_data("code")[0].double()
    axis = torch.arange(-0.8, 0.8 + 0.01, 0.02, dtype=torch.float64)  # the smoke's grid_step
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), dim=-1).reshape(-1, 2)
    grid = append_bias(grid)
    svm_signs = []
    for g in range(F5_SETS):
        K_grid = torch.relu(W[g] @ X[g].T).T @ torch.relu(W[g] @ grid.T) / F5_WIDTH
        svm_signs.append(np.sign(svms[g].decision(K_grid)))

    def agreement(model):
        with torch.no_grad():
            return np.array(
                [
                    np.mean(
                        np.sign(model.select(g)(grid.float()).double().numpy()[0]) == svm_signs[g]
                    )
                    for g in range(F5_SETS)
                ]
            )

    out_fast, wrong_out_fast, _ = figure5_train("code", "output", 2.0)
    out_slow, wrong_out_slow, _ = figure5_train("code", "output", 0.5)
    assert (wrong_out_slow >= wrong_out_fast).all() and wrong_out_slow.sum() > wrong_out_fast.sum()
    agree_fast, agree_slow = agreement(out_fast), agreement(out_slow)
    assert (agree_slow <= agree_fast + 0.01).all() and agree_slow.mean() < agree_fast.mean() - 0.03

    _, wrong_both_fast, normalized_fast = figure5_code_both
    _, wrong_both_slow, normalized_slow = figure5_train("code", "both", 0.5)
    assert (wrong_both_slow > 0).all()
    assert wrong_both_slow.sum() > wrong_both_fast.sum()
    assert (normalized_slow < normalized_fast).all()


# ---------------------------------------------------------------------------------------------
# bach2022-figure6: test errors against n and d, clusters with noise coordinates
# ---------------------------------------------------------------------------------------------

NS, DS = [32, 64, 128, 256, 512], [5, 10, 15, 20, 25]


def figure6_run(k=3, radius="code", width=40, steps=320, step_size=6.25, D=2, n_test=1000):
    """The notebook's four batched trainings (panels b and c, both variants), seed 0.

    Defaults: the smoke profile (m = 40, 2 experiments, 320 steps of 6.25: the flow time
    2 eta sqrt(K) of the default's 3125 steps of 2). Returns the mean test errors per panel
    and variant over the experiments, the per-experiment errors, and the training errors.
    """

    def task(i, d):
        return cluster_task(k, d - 1, seed=i, radius=radius)

    def inputs(X, d):
        return append_bias(torch.nn.functional.pad(X, (0, d - 1 - X.shape[-1])))

    def stack(draws, d):
        return torch.stack([inputs(X, d) for X, _ in draws]), torch.stack([y for _, y in draws])

    X_n, y_n = stack([task(i, 15).sample(max(NS), "train") for i in range(D)], 15)
    Xt_n, yt_n = stack([task(i, 15).sample(n_test, "test") for i in range(D)], 15)
    y_n, yt_n = y_n.repeat_interleave(len(NS), 0), yt_n.repeat_interleave(len(NS), 0)
    weights_n = (torch.arange(max(NS)) < torch.tensor(NS)[:, None]).double().repeat(D, 1)
    pairs = [(i, d) for i in range(D) for d in DS]
    X_d, y_d = stack([task(i, d).sample(256, "train") for i, d in pairs], max(DS))
    Xt_d, yt_d = stack([task(i, d).sample(n_test, "test") for i, d in pairs], max(DS))
    dims = torch.tensor([d for _, d in pairs])

    def train(trained, X, y, X_test, y_test, weights, dims):
        per_group = y.shape[0] // X.shape[0]
        replicas = [
            Replica(width, 1000 * g + j) for g in range(X.shape[0]) for j in range(per_group)
        ]
        model = margin_network(X.shape[-1], replicas, trained, dtype=torch.float32)
        if dims is not None:
            unused = torch.arange(X.shape[-1] - 1) >= (dims - 1)[:, None]
            model.W[:, :-1][model.per_neuron(unused)] = 0.0
            model.W0.copy_(model.W)
        margin_ascent(
            model,
            X,
            y,
            steps=steps,
            step_size=step_size,
            weights=weights,
            record_every=steps,
            progress=False,
        )
        with torch.no_grad():
            test = (y_test.float() * model(X_test.float()) < 0).double().mean(dim=1)
            wrong = (y.float() * model(X.float()) <= 0).double()
        if weights is not None:
            train_error = (wrong * weights).sum(dim=1) / weights.sum(dim=1)
        else:
            train_error = wrong.mean(dim=1)
        return test.numpy(), train_error.numpy()

    errors, train_errors = {}, {}
    for trained in ("both", "output"):
        for panel, args in (
            ("n", (X_n, y_n, Xt_n, yt_n, weights_n, None)),
            ("d", (X_d, y_d, Xt_d, yt_d, None, dims)),
        ):
            test, train_error = train(trained, *args)
            errors[panel, trained] = test.reshape(D, -1)
            train_errors[panel, trained] = train_error.reshape(D, -1)
    mean = {key: value.mean(axis=0) for key, value in errors.items()}
    return mean, errors, train_errors


@pytest.fixture(scope="module")
def figure6_smoke():
    return figure6_run()


def both_beat_output(mean) -> bool:
    return bool(
        (mean["n", "both"] < mean["n", "output"]).all()
        and (mean["d", "both"] < mean["d", "output"]).all()
    )


@pytest.mark.solution("bach2022-figure6-ex-k")
def test_figure6_more_clusters(figure6_smoke):
    """k = 4: both layers still win at every n but not by half, and the gap closes with d.

    Checks, with k = 4 and two experiments at the smoke profile's size (m = 40, 320 steps of
    6.25, the default's flow time): "both layers still win at every n, but by less than half
    at 512 points" (while with k = 3 they err less than half as often), "the gap shrinks"
    against d because both layers' error climbs to the output layer's (above 0.3 at d = 25,
    against about 0.1 with k = 3), and "the advantage comes back with more points" (the gap at
    n = 512 exceeds that at n = 32). At the smoke size the output layer is barely trained and
    its gap to both layers shrinks with d for k = 3 as well, so the reversal against k = 3,
    which the solution reports at the default size, is not compared here.
    """
    base, _, _ = figure6_smoke
    mean, _, _ = figure6_run(k=4)
    gap_n = mean["n", "output"] - mean["n", "both"]
    gap_d = mean["d", "output"] - mean["d", "both"]
    assert (gap_n > 0).all()
    assert mean["n", "both"][-1] >= 0.5 * mean["n", "output"][-1]
    assert base["n", "both"][-1] < 0.5 * base["n", "output"][-1]
    assert gap_n[-1] > gap_n[0]
    assert gap_d[-1] < gap_d[0] and gap_d[-1] < 0.1
    assert mean["d", "both"][-1] >= 0.3 and mean["d", "both"][-1] > 2 * base["d", "both"][-1]


@pytest.mark.solution("bach2022-figure6-ex-radius")
def test_figure6_uniform_disks_hardly_change(figure6_smoke):
    """Points uniform on the disks: every mean test error moves little, both layers still win.

    Checks "hardly any change" on the smoke profile's size (two experiments, m = 40, 320
    steps of 6.25): no mean test error, for either variant, any n or any d, moves by more than
    0.1 between the two radius laws, and in both laws both layers beat the output layer at
    every n and d and err less than half as often at n = 512 (the claim that must hold from
    the smoke profile on). The same data seeds give the same cluster classes under both laws.
    """
    base, _, _ = figure6_smoke
    disk, _, _ = figure6_run(radius="disk")
    for key in base:
        assert np.abs(disk[key] - base[key]).max() <= 0.1, key
    for mean in (base, disk):
        assert both_beat_output(mean)
        assert mean["n", "both"][-1] < 0.5 * mean["n", "output"][-1]


@pytest.mark.solution("bach2022-figure6-ex-width")
def test_figure6_thirty_neurons(figure6_smoke):
    """m = 30: both layers still beat the output layer; its 30 features separate few sets.

    Checks "training both layers still beats the output layer with 30 neurons" (every n and
    every d) and "the output layer's 30 random features cannot separate most training sets"
    at the smoke profile's size with m = 30 (two experiments, 320 steps of 6.25, the
    default's flow time). The comparison of the output layer with 30 and with 100 features
    is run where the solution states it, at the default's 3125 steps of 2 on the same two
    experiments, for the output layer alone at n = 512 in d = 15 (the n = 512 replica of
    panel (b)): 30 features end somewhat above 100 features, by less than 0.1.
    """
    mean, _, train_errors = figure6_run(width=30)
    assert both_beat_output(mean)
    unseparated = sum(int((train_errors[p, "output"] > 0).sum()) for p in ("n", "d"))
    assert unseparated >= 15  # of 20 replicas
    assert mean["n", "both"][-1] <= 0.05 and mean["d", "both"][0] <= 0.05

    # output layer alone, n = 512 in d = 15, widths 30 and 100 side by side, 2 experiments
    tasks = [cluster_task(3, 14, seed=i, radius="code") for i in range(2)]
    train = [t.sample(512, "train") for t in tasks]
    X = torch.stack([append_bias(x) for x, _ in train])
    y = torch.stack([labels for _, labels in train])
    tests = [t.sample(4000, "test") for t in tasks]
    X_test = torch.stack([append_bias(x) for x, _ in tests])
    y_test = torch.stack([labels for _, labels in tests])
    replicas = [Replica(m, 1000 * g + 4) for g in range(2) for m in (30, 100)]
    model = margin_network(15, replicas, "output", dtype=torch.float32)
    margin_ascent(
        model,
        X,
        y.repeat_interleave(2, 0),
        steps=3125,
        step_size=2.0,
        record_every=3125,
        progress=False,
    )
    with torch.no_grad():
        wrong = y_test.repeat_interleave(2, 0).float() * model(X_test.float()) < 0
    error = wrong.double().mean(dim=1).numpy().reshape(2, 2).mean(axis=0)  # (m = 30, m = 100)
    assert error[1] < error[0] < error[1] + 0.1
