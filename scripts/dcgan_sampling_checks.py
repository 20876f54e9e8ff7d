"""Should the averaged generator re-estimate its BatchNorm statistics? Notebook 3's score, before and after.

    GENMODELS_DATA_DIR=/folder/with/anime-faces .venv/bin/python scripts/dcgan_batchnorm_check.py

The generator that notebook 3 ships is an average of G's weights (G_AVERAGE), and its BatchNorm
running means and variances are averages of G's too, not the statistics its own averaged weights
produce. Averaged networks often re-estimate them from batches of their own (as stochastic weight
averaging does). This script scores the shipped generator as notebook 3 does after training (the
8x8 Frechet distance of 512 faces from latent vectors seeded SEED + 1 against 512 real faces chosen
with SEED), then re-estimates the statistics from fresh batches in training mode and scores again.

MXNet's CPU BatchNorm updates its running statistics in the backward pass, not the forward one, so
each batch here runs forward and backward (the weights themselves are never changed).
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "notebooks")]
import helpers  # noqa: E402  (sets the thread count and engine before mxnet is imported)
from notebook_code import notebook_namespace  # noqa: E402
import numpy as np  # noqa: E402
from mxnet import autograd, nd  # noqa: E402


def reestimate_batchnorm(generator, batches, batch_size, latent_size, seed, device):
    """Run `batches` batches of random latent vectors through `generator` in training mode, forward
    and backward, so that each BatchNorm's running statistics follow its batches (momentum 0.9)."""
    random = np.random.RandomState(seed)
    for _ in range(batches):
        latent = nd.array(random.normal(size=(batch_size, latent_size, 1, 1)), ctx=device)
        with autograd.record(train_mode=True):
            images = generator(latent)
        images.backward()  # the update of the running statistics happens here on the CPU
    nd.waitall()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[50, 200],
                        help="re-estimate from this many batches (default: 50 and 200, each from the shipped weights)")
    parser.add_argument("--batch-size", type=int, default=256, help="latent vectors per batch (default 256)")
    args = parser.parse_args()
    notebook = notebook_namespace("03_dcgan_anime_faces.ipynb", also=("device",))
    device, seed = notebook["device"], notebook["SEED"]
    path, entry = helpers.verified_weights("dcgan_generator.params")
    latent_size = entry["config"]["latent_size"]

    real_images, _ = helpers.load_images(helpers.faces_folder(), size=64)
    count = min(512, real_images.shape[0])
    real_sample = real_images.take(nd.array(np.random.RandomState(seed).permutation(real_images.shape[0])[:count]))
    scoring_latent = notebook["latent_vectors"](count, seed + 1, size=latent_size)
    score = notebook["thumbnail_frechet_distance"]
    print(f"{real_images.shape[0]:,} real faces; the shipped generator's entry says {entry['metric']:.2f}")
    shipped = notebook["load_generator"](path, entry)
    print(f"shipped statistics (averaged with the weights): {score(shipped(scoring_latent), real_sample):.2f}")
    for batches in args.batches:
        generator = notebook["load_generator"](path, entry)  # a fresh copy of the shipped weights
        reestimate_batchnorm(generator, batches, args.batch_size, latent_size, seed=123, device=device)
        print(f"re-estimated from {batches} batches of {args.batch_size}: "
              f"{score(generator(scoring_latent), real_sample):.2f}")


if __name__ == "__main__":
    main()
