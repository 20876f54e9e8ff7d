"""Behaviour of notebook 3's own code: network shapes, the shipped generator, resuming training."""
import itertools

import numpy as np
import pytest

import helpers
from notebook_code import notebook_namespace

SHIPPED = helpers.read_manifest().get("dcgan_generator.params")


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    return notebook_namespace("03_dcgan_anime_faces.ipynb", also=("loss_function", "device"),
                              GRID_DIR=tmp_path_factory.mktemp("grids"))


def test_generator_turns_latent_vectors_into_64x64_colour_images(notebook):
    generator = notebook["make_generator"](8)
    generator.initialize(notebook["mx"].init.Normal(0.02))
    images = generator(notebook["latent_vectors"](5, seed=0))
    assert images.shape == (5, 3, 64, 64)
    assert np.abs(images.asnumpy()).max() <= 1.0  # tanh output, like the real images' -1..1


def test_discriminator_gives_one_score_per_image(notebook):
    discriminator = notebook["make_discriminator"](8)
    discriminator.initialize(notebook["mx"].init.Normal(0.02))
    assert discriminator(notebook["nd"].zeros((3, 3, 64, 64))).shape == (3, 1, 1, 1)


def test_latent_vectors_repeat_for_a_seed(notebook):
    latent_vectors = notebook["latent_vectors"]
    assert latent_vectors(4, seed=9).shape == (4, notebook["LATENT_SIZE"], 1, 1)
    assert (latent_vectors(4, seed=9) == latent_vectors(4, seed=9)).asnumpy().all()
    assert not (latent_vectors(4, seed=9) == latent_vectors(4, seed=10)).asnumpy().all()


def test_training_resumes_from_a_checkpoint(notebook, tmp_path):
    nd, mx = notebook["nd"], notebook["mx"]
    notebook.update(BATCH_SIZE=4)
    images = nd.random.uniform(-1, 1, shape=(8, 3, 64, 64))
    fixed = notebook["latent_vectors"](4, seed=1)

    def networks():
        generator, discriminator = notebook["make_generator"](4), notebook["make_discriminator"](4)
        generator.initialize(mx.init.Normal(0.02))
        discriminator.initialize(mx.init.Normal(0.02))
        return generator, discriminator

    first = notebook["fit"](*networks(), images, 1, tmp_path, fixed)
    assert {p.name for p in tmp_path.iterdir()} >= {"generator.params", "discriminator.params",
                                                     "trainer_g.states", "trainer_d.states"}
    resumed = notebook["fit"](*networks(), images, 2, tmp_path, fixed)
    assert len(resumed["images_per_s"]) == 2 and len(resumed["loss_g"]) == 4
    assert resumed["loss_d"][:2] == first["loss_d"]


@pytest.mark.skipif(SHIPPED is None, reason="weights/dcgan_generator.params has no manifest entry")
def test_shipped_generator_is_deterministic_and_draws_eight_different_faces(notebook):
    generator, entry = notebook["load_generator"]()
    assert entry["config"]["latent_size"] == notebook["LATENT_SIZE"]
    latent = notebook["latent_vectors"](8, seed=2017)
    faces = generator(latent).asnumpy()
    assert faces.shape == (8, 3, 64, 64)
    np.testing.assert_array_equal(generator(latent).asnumpy(), faces)
    for first, second in itertools.combinations(range(8), 2):
        assert np.abs(faces[first] - faces[second]).mean() > 0.05, (first, second)
