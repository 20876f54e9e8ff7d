"""Behaviour of notebook 3's own code: network shapes, the shipped generator, the parameter
checks, resuming training, and the messages a reader sees when something is wrong."""
import contextlib
import io
import itertools
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import helpers

import storage
from notebook_code import NOTEBOOKS, notebook_namespace

NOTEBOOK = "03_dcgan_anime_faces.ipynb"
SHIPPED = storage.read_manifest().get("dcgan_generator.params")
needs_shipped = pytest.mark.skipif(SHIPPED is None, reason="weights/dcgan_generator.params has no manifest entry")


def tagged_sources(tag):
    cells = json.loads((NOTEBOOKS / NOTEBOOK).read_text())["cells"]
    sources = ["".join(cell["source"]) for cell in cells if tag in cell.get("metadata", {}).get("tags", [])]
    assert sources, f"no cell tagged {tag!r} in {NOTEBOOK}"
    return sources


def run_tagged(tag, **parameters):
    """Run the notebook's definitions, then its cells tagged `tag`, with `parameters` set, as a
    reader's run (not the smoke test). Returns (namespace, printed text)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(helpers.SMOKE_ENV_VAR, "0")
        return _run_tagged(tag, **parameters)


def _run_tagged(tag, **parameters):
    namespace = notebook_namespace(NOTEBOOK, also=("loss_function", "device"), **parameters)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for source in tagged_sources(tag):
            exec(compile(source, NOTEBOOK, "exec"), namespace)
    return namespace, printed.getvalue()


def check_message(tag="parameter-checks", **parameters):
    with pytest.raises(helpers.ParameterError) as raised:
        run_tagged(tag, **parameters)
    message = str(raised.value)
    assert "\n" not in message
    return message


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    return notebook_namespace(NOTEBOOK, also=("loss_function", "device"),
                              GRID_DIR=tmp_path_factory.mktemp("grids"))


def tiny_networks(notebook, width=4):
    mx = notebook["mx"]
    notebook["helpers"].seed_everything(0)
    generator, discriminator = notebook["make_generator"](width), notebook["make_discriminator"](width)
    generator.initialize(mx.init.Normal(0.02))
    discriminator.initialize(mx.init.Normal(0.02))
    return generator, discriminator


# ---------------------------------------------------------------- the networks

def test_generator_turns_latent_vectors_into_64x64_colour_images(notebook):
    generator = notebook["make_generator"](8)
    generator.initialize(notebook["mx"].init.Normal(0.02))
    images = generator(notebook["latent_vectors"](5, seed=0))
    assert images.shape == (5, 3, 64, 64)
    assert np.abs(images.asnumpy()).max() <= 1.0  # tanh output, like the real images' -1..1


def test_transposed_convolution_output_size_formula_matches_the_layers(notebook):
    size = notebook["transposed_output_size"]
    assert size(1, 4, 1, 0) == 4
    assert [size(n, 4, 2, 1) for n in (4, 8, 16, 32)] == [8, 16, 32, 64]


def test_discriminator_gives_one_score_per_image(notebook):
    discriminator = notebook["make_discriminator"](8)
    discriminator.initialize(notebook["mx"].init.Normal(0.02))
    assert discriminator(notebook["nd"].zeros((3, 3, 64, 64))).shape == (3, 1, 1, 1)


def test_latent_vectors_repeat_for_a_seed_and_take_the_size_asked_for(notebook):
    latent_vectors = notebook["latent_vectors"]
    assert latent_vectors(4, seed=9).shape == (4, notebook["LATENT_SIZE"], 1, 1)
    assert latent_vectors(4, seed=9, size=16).shape == (4, 16, 1, 1)
    assert (latent_vectors(4, seed=9) == latent_vectors(4, seed=9)).asnumpy().all()
    assert not (latent_vectors(4, seed=9) == latent_vectors(4, seed=9 + 1)).asnumpy().all()


# ---------------------------------------------------------------- the parameter checks

@pytest.mark.parametrize("name, value", [("BATCH_SIZE", 0), ("BATCH_SIZE", 2.5), ("EPOCHS", -3), ("LATENT_SIZE", 0),
                                         ("NDF", True), ("LEARNING_RATE", 5.0), ("LEARNING_RATE", "2e-4"),
                                         ("BETA1", 1.0), ("SEED", -1), ("REAL_LABEL", 0.5), ("INPUT_NOISE", -0.1),
                                         ("G_STEPS", 9), ("G_AVERAGE", 1.0), ("G_AVERAGE", True), ("TRAIN", "yes")])
def test_a_bad_parameter_is_refused_by_name_with_the_shipped_value_to_try(name, value):
    message = check_message(**{name: value})
    assert message.startswith(f"{name} = {value!r}")
    shipped = storage.shipped_config("dcgan_generator.params").get(name.lower())
    assert (f"try {shipped!r}" in message) if shipped is not None else "True or False" in message


def test_fewer_images_than_one_batch_is_refused_before_training():
    message = check_message(TRAIN=True, IMAGE_COUNT=10, BATCH_SIZE=64)
    assert "IMAGE_COUNT = 10" in message and "BATCH_SIZE = 64" in message


def test_an_image_folder_missing_a_file_or_empty_stops_training_in_one_sentence_and_drawing_goes_on(tmp_path):
    missing, a_file, empty = tmp_path / "nowhere", tmp_path / "faces.zip", tmp_path / "empty"
    a_file.write_bytes(b"")
    empty.mkdir()
    for folder in (missing, a_file, empty):
        named = f"IMAGE_FOLDER = {str(folder)!r}"
        assert check_message(IMAGE_FOLDER=str(folder), TRAIN=True).startswith(named)
        run_tagged("parameter-checks", IMAGE_FOLDER=str(folder), TRAIN=False)  # drawing needs no images
        namespace, printed = run_tagged("load-faces", IMAGE_FOLDER=str(folder), TRAIN=False)
        assert namespace["have_faces"] is False and printed.count("\n") == 1 and named in printed


def test_a_folder_with_fewer_images_than_one_batch_is_refused_early_and_after_loading(tmp_path):
    import matplotlib.pyplot as plt

    for index in range(3):
        plt.imsave(tmp_path / f"face_{index}.png", np.random.RandomState(index).rand(64, 64, 3))
    early = check_message(IMAGE_FOLDER=str(tmp_path), TRAIN=True, BATCH_SIZE=64)  # the parameter checks
    assert early.startswith(f"IMAGE_FOLDER = {str(tmp_path)!r} holds 3 images") and "BATCH_SIZE = 64" in early
    message = check_message("load-faces", IMAGE_FOLDER=str(tmp_path), TRAIN=True, BATCH_SIZE=64)
    assert "gave 3 images, fewer than BATCH_SIZE = 64" in message  # counted again after decoding


def test_without_the_faces_default_mode_goes_on_and_training_stops_with_how_to_get_them(monkeypatch):
    def unavailable():
        raise helpers.DataUnavailable("the anime faces are not on disk; data/README.md says how to get them")
    monkeypatch.setattr(storage, "faces_folder", unavailable)
    namespace, printed = run_tagged("load-faces", TRAIN=False, SMOKE=False)
    assert namespace["have_faces"] is False
    assert printed.count("\n") == 1 and "skipped loading the real faces" in printed and "data/README.md" in printed
    message = check_message("load-faces", TRAIN=True, SMOKE=False)
    assert message.startswith("TRAIN = True needs the face images") and "data/README.md" in message


@needs_shipped
def test_default_mode_says_in_one_line_which_generator_it_uses_and_a_latent_size_it_cannot_apply():
    namespace, printed = run_tagged("parameter-checks", TRAIN=False, LATENT_SIZE=100)
    assert printed.count("\n") == 1
    assert "using the shipped weights/dcgan_generator.params" in printed
    assert "LATENT_SIZE = 100" in printed and "TRAIN = True" in printed
    path, entry, source = namespace["generator_choice"]
    assert source == "shipped"
    generator = namespace["load_generator"](path, entry)  # draws at the size it was trained with
    faces = generator(namespace["latent_vectors"](2, seed=0, size=entry["config"]["latent_size"]))
    assert faces.shape == (2, 3, 64, 64)


# ---------------------------------------------------------------- the objective

def test_non_saturating_loss_keeps_its_gradient_where_the_minimax_loss_loses_it(notebook):
    nd, autograd = notebook["nd"], notebook["autograd"]
    logit = nd.array([-7.0])  # D is sure the fake is fake: D(G(z)) is about 0.001
    gradients = []
    for loss_of in (lambda x: nd.log(1 - nd.sigmoid(x)), lambda x: notebook["loss_function"](x, nd.ones_like(x))):
        logit.attach_grad()
        with autograd.record():
            loss = loss_of(logit)
        loss.backward()
        gradients.append(float(logit.grad.asscalar()))
    minimax, non_saturating = gradients
    assert abs(minimax) < 0.001 and non_saturating < -0.99


# ---------------------------------------------------------------- one training step and its stabilisers

def one_step(notebook, noise=0.0, **levers):
    """One train_step from the same tiny networks and batch; returns (D loss, G loss, trainers)."""
    mx, nd, gluon = notebook["mx"], notebook["nd"], notebook["gluon"]
    saved = {name: notebook[name] for name in levers}
    notebook.update(levers)
    try:
        generator, discriminator = tiny_networks(notebook)
        trainers = [gluon.Trainer(list(network.collect_params().values()), "adam", {"learning_rate": 2e-4})
                    for network in (generator, discriminator)]
        mx.random.seed(3)
        real = nd.random.uniform(-1, 1, shape=(4, 3, 64, 64))
        latent = nd.random.normal(shape=(4, notebook["LATENT_SIZE"], 1, 1))
        loss_d, loss_g = notebook["train_step"](generator, discriminator, *trainers, real, latent, noise)
    finally:
        notebook.update(saved)
    return float(loss_d.asscalar()), float(loss_g.asscalar()), trainers


def test_the_original_step_is_one_turn_each_and_repeats_under_a_seed(notebook):
    first, second = one_step(notebook), one_step(notebook)
    assert first[:2] == second[:2]
    trainer_g, trainer_d = first[2]
    assert (trainer_g._optimizer.num_update, trainer_d._optimizer.num_update) == (1, 1)


def test_g_steps_gives_g_more_turns_per_turn_of_d(notebook):
    trainer_g, trainer_d = one_step(notebook, G_STEPS=2)[2]
    assert (trainer_g._optimizer.num_update, trainer_d._optimizer.num_update) == (2, 1)


def test_label_smoothing_and_instance_noise_change_what_d_learns_from(notebook):
    original = one_step(notebook)
    assert one_step(notebook, REAL_LABEL=0.9)[0] != original[0]
    assert one_step(notebook, noise=0.5)[0] != original[0]


def test_the_generator_turn_computes_no_gradient_for_d_weights(notebook):
    generator, discriminator = tiny_networks(notebook)
    gluon, nd = notebook["gluon"], notebook["nd"]
    trainers = [gluon.Trainer(list(network.collect_params().values()), "adam", {"learning_rate": 2e-4})
                for network in (generator, discriminator)]
    notebook["train_step"](generator, discriminator, *trainers, nd.random.uniform(-1, 1, shape=(4, 3, 64, 64)),
                           nd.random.normal(shape=(4, notebook["LATENT_SIZE"], 1, 1)))
    # BatchNorm's running statistics are never trained (grad_req "null" throughout); every other
    # parameter of D trains again, and had G's turn computed D's weight gradients, they would be
    # left in D's gradient arrays
    trained = [parameter for parameter in discriminator.collect_params().values() if "running" not in parameter.name]
    assert trained and {parameter.grad_req for parameter in trained} == {"write"}
    assert all((parameter.grad() == 0).asnumpy().all() for parameter in trained)
    assert any((parameter.grad() != 0).asnumpy().any() for parameter in generator.collect_params().values()
               if parameter.grad_req == "write")


# ---------------------------------------------------------------- training, checkpoints, resuming

def train(notebook, folder, epochs, images, fixed):
    return notebook["fit"](*tiny_networks(notebook), images, epochs, folder, fixed)


@pytest.fixture
def small_run(notebook):
    nd = notebook["nd"]
    # no instance noise: its strength fades over EPOCHS, so a run resumed with more epochs than
    # it started with (as these tests do) would follow another schedule from the first step
    notebook.update(BATCH_SIZE=4, LEARNING_RATE=2e-4, INPUT_NOISE=0.0)
    return nd.random.uniform(-1, 1, shape=(8, 3, 64, 64), ctx=notebook["device"]), notebook["latent_vectors"](4, seed=1)


def test_the_average_starts_as_a_copy_of_g_and_moves_one_minus_decay_towards_it(notebook):
    nd = notebook["nd"]
    generator, _ = tiny_networks(notebook)
    latent = notebook["latent_vectors"](2, seed=1)
    average = notebook["make_average"](generator, latent)
    pairs = list(zip(average.collect_params().values(), generator.collect_params().values()))
    assert len(pairs) == len(list(generator.collect_params().values())) and any("running" in mean.name for mean, _ in pairs)
    assert all((mean.data() == current.data()).asnumpy().all() for mean, current in pairs)
    assert (average(latent) == generator(latent)).asnumpy().all()
    before = [mean.data().copy() for mean, _ in pairs]
    for _, current in pairs:  # G takes a step: every weight and statistic moves by 1
        current.set_data(current.data() + 1)
    notebook["update_average"](average, generator, 0.9)
    for (mean, _), old in zip(pairs, before):  # a tenth of the way: old + 0.1
        np.testing.assert_allclose(mean.data().asnumpy(), old.asnumpy() + 0.1, rtol=0, atol=1e-6)
    assert not (average(latent) == generator(latent)).asnumpy().all()


def test_batchnorm_reestimation_moves_the_running_statistics_and_no_weight(notebook):
    from dcgan_sampling_checks import reestimate_batchnorm
    generator, _ = tiny_networks(notebook)
    generator(notebook["latent_vectors"](2, seed=1))  # fixes the deferred shapes
    before = {name: parameter.data().copy() for name, parameter in generator.collect_params().items()}
    reestimate_batchnorm(generator, batches=3, batch_size=8, latent_size=notebook["LATENT_SIZE"], seed=0,
                         device=notebook["device"])
    for name, parameter in generator.collect_params().items():
        unchanged = (parameter.data() == before[name]).asnumpy().all()
        assert unchanged == ("running" not in name), name  # the statistics move (in backward, on the CPU)


def test_truncation_redraws_only_the_values_beyond_the_threshold_reproducibly(notebook):
    from dcgan_sampling_checks import truncate
    latent = notebook["latent_vectors"](64, seed=1)
    truncated = truncate(latent, 1.5, seed=3)
    before, after = latent.asnumpy(), truncated.asnumpy()
    assert after.shape == before.shape and np.abs(after).max() <= 1.5
    inside = np.abs(before) <= 1.5
    assert 0 < (~inside).sum() < inside.sum()  # about 13% of standard normal values lie beyond 1.5
    np.testing.assert_array_equal(after[inside], before[inside])
    assert (after[~inside] != before[~inside]).all()
    np.testing.assert_array_equal(truncate(latent, 1.5, seed=3).asnumpy(), after)


def test_each_sampling_check_keeps_its_results_in_the_log_beside_the_other(tmp_path, monkeypatch):
    import dcgan_sampling_checks
    monkeypatch.setattr(dcgan_sampling_checks, "LOG", tmp_path / "checks.json")
    entry = {"sha256": "ab" * 32}
    dcgan_sampling_checks.record("batchnorm", entry, {"as shipped": {"frechet_8x8": 3.0}}, 512)
    dcgan_sampling_checks.record("truncation", entry, {"variants": {}, "largest_pixel_change_in_training_mode": 1e-6}, 512)
    dcgan_sampling_checks.record("batchnorm", entry, {"as shipped": {"frechet_8x8": 3.5}}, 600)  # a re-run replaces its own
    log = json.loads((tmp_path / "checks.json").read_text())
    assert sorted(log) == ["batchnorm", "truncation"]
    assert log["batchnorm"]["results"] == {"as shipped": {"frechet_8x8": 3.5}} and log["batchnorm"]["real_faces"] == 600
    assert log["truncation"]["generator_sha256"] == "ab" * 32 and "finished" in log["truncation"]


def test_a_resumed_run_with_an_average_equals_an_uninterrupted_one(notebook, small_run, tmp_path):
    images, fixed = small_run
    averages = {}
    for name, epochs in (("straight", (2,)), ("resumed", (1, 2))):
        for total in epochs:  # new networks each call: a resumed call gets all three from the checkpoint
            generator, discriminator = tiny_networks(notebook)
            average = notebook["make_average"](generator, fixed)
            notebook["fit"](generator, discriminator, images, total, tmp_path / name, fixed, average=average)
        averages[name] = average
        assert "average.params" in {path.name for path in storage.latest_epoch(tmp_path / name)[0].iterdir()}
    straight, resumed = (storage.latest_epoch(tmp_path / name)[0] / "average.params" for name in averages)
    assert storage.sha256_of(straight) == storage.sha256_of(resumed)
    assert (averages["straight"](fixed) == averages["resumed"](fixed)).asnumpy().all()
    generator = storage.latest_epoch(tmp_path / "straight")[0] / "generator.params"  # the average is not G
    assert storage.sha256_of(generator) != storage.sha256_of(straight)


def test_resuming_with_other_parameters_is_refused_and_names_fresh_start(notebook, small_run, tmp_path):
    images, fixed = small_run
    train(notebook, tmp_path, 1, images, fixed)
    original = notebook["RUN_CONFIG"]
    notebook["RUN_CONFIG"] = dict(original, ngf=32)
    try:
        with pytest.raises(helpers.ParameterError, match="NGF = .* FRESH_START = True"):
            train(notebook, tmp_path, 2, images, fixed)
    finally:
        notebook["RUN_CONFIG"] = original


def test_fewer_epochs_than_the_checkpoint_holds_is_refused(notebook, small_run, tmp_path):
    images, fixed = small_run
    train(notebook, tmp_path, 2, images, fixed)
    with pytest.raises(helpers.ParameterError, match="holds 2 epochs, more than EPOCHS = 1"):
        train(notebook, tmp_path, 1, images, fixed)


def test_a_fresh_run_starts_with_an_empty_grid_folder(notebook, small_run, tmp_path):
    images, fixed = small_run
    stale = notebook["GRID_DIR"] / "epoch_07.png"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"a grid from an earlier run")
    train(notebook, tmp_path, 1, images, fixed)
    assert sorted(path.name for path in notebook["GRID_DIR"].glob("epoch_*.png")) == ["epoch_01.png"]


def test_a_diverging_run_stops_with_a_message_naming_learning_rate(notebook, small_run, tmp_path):
    images, fixed = small_run
    notebook.update(LEARNING_RATE=1e6)
    try:
        with pytest.raises(helpers.TrainingDiverged) as raised:
            train(notebook, tmp_path, 3, images, fixed)
    finally:
        notebook.update(LEARNING_RATE=2e-4)
    assert "LEARNING_RATE" in str(raised.value) and "\n" not in str(raised.value)


# ---------------------------------------------------------------- loading trained generators

@needs_shipped
def test_shipped_generator_is_deterministic_and_draws_eight_different_faces(notebook):
    path, entry = storage.verified_weights("dcgan_generator.params")
    generator = notebook["load_generator"](path, entry)
    latent = notebook["latent_vectors"](8, seed=2017, size=entry["config"]["latent_size"])
    faces = generator(latent).asnumpy()
    assert faces.shape == (8, 3, 64, 64)
    np.testing.assert_array_equal(generator(latent).asnumpy(), faces)
    for first, second in itertools.combinations(range(8), 2):
        assert np.abs(faces[first] - faces[second]).mean() > 0.05, (first, second)


@pytest.mark.parametrize("saved_width, saved_latent", [(16, 150), (8, 16)])
def test_weights_of_another_architecture_give_one_clear_error(notebook, tmp_path, saved_width, saved_latent):
    other = notebook["make_generator"](saved_width)
    other.initialize(notebook["mx"].init.Normal(0.02))
    other(notebook["latent_vectors"](1, seed=0, size=saved_latent))
    path = tmp_path / "dcgan_generator.params"
    other.save_parameters(str(path))
    entry = {"config": {"ngf": 8, "latent_size": 150}}
    with pytest.raises(storage.WeightsDamaged) as raised:
        notebook["load_generator"](path, entry)
    message = str(raised.value)
    assert "is not a generator with NGF = 8 and LATENT_SIZE = 150" in message and "TRAIN = True" in message


def test_the_spread_needs_two_images_and_one_gives_none_without_a_warning(notebook):
    nd, spread = notebook["nd"], notebook["mean_pairwise_distance"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Mean of empty slice", which made the share print as nan%
        assert spread(nd.ones((1, 3, 64, 64))) is None
    assert spread(nd.stack(nd.zeros((3, 64, 64)), nd.ones((3, 64, 64)))) == pytest.approx((3 * 64 * 64) ** 0.5)


def test_thumbnail_frechet_distance_is_zero_for_the_same_images_and_grows_with_a_shift(notebook):
    nd = notebook["nd"]
    distance = notebook["thumbnail_frechet_distance"]
    images = nd.random.uniform(-1, 1, shape=(100, 3, 64, 64))
    assert abs(distance(images, images)) < 1e-6
    assert distance(images + 0.5, images) == pytest.approx(192 * 0.25, rel=1e-3)  # 8 x 8 x 3 means, each off by 0.5
