"""Two ways to change how the shipped generator draws, without retraining it, scored as notebook 3 scores.

    GENMODELS_DATA_DIR=/folder/with/anime-faces .venv/bin/python experiments/dcgan_sampling_checks.py batchnorm
    GENMODELS_DATA_DIR=/folder/with/anime-faces .venv/bin/python experiments/dcgan_sampling_checks.py truncation

Every score is the notebook's after training: the 8x8 Frechet distance of 512 faces from latent
vectors seeded SEED + 1 against 512 real faces chosen with SEED (lower is closer).

`batchnorm`: the generator that notebook 3 ships is an average of G's weights (G_AVERAGE), and its
BatchNorm running means and variances are averages of G's too, not the statistics its own averaged
weights produce. Averaged networks often re-estimate them from batches of their own (as stochastic
weight averaging does); this re-estimates them from fresh batches in training mode and scores again.
MXNet's CPU BatchNorm updates its running statistics in the backward pass, not the forward one, so
each batch runs forward and backward (the weights themselves are never changed).

`truncation`: the "truncation trick" of large GANs draws from a narrower distribution than the
standard normal the generator was trained on, trading variety for typical faces. Two forms: every
latent vector scaled by a factor below 1, or every value beyond a threshold drawn again until it
falls inside. Besides the score, for the 64 faces of the notebook's fixed grid (SEED): their spread as
a share of 64 real faces' (notebook 3's mean pairwise distance), and their contrast (the standard
deviation of each face's pixels, averaged) as a share of the untruncated grid's; `--grids FOLDER`
saves each grid.

Each check writes what it printed to experiments/logs/dcgan_sampling_checks.json (under its name, with the
command and the date), which is where notebook 3's figures for both come from.
"""
import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "notebooks")]
import helpers  # noqa: E402  (sets the thread count and engine before mxnet is imported)
import storage
from notebook_code import notebook_namespace  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from mxnet import autograd, nd  # noqa: E402

LOG = ROOT / "experiments" / "logs" / "dcgan_sampling_checks.json"


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


def truncate(latent, threshold, seed):
    """`latent` with every value whose magnitude exceeds `threshold` drawn again from the standard
    normal until none does (the form of truncation BigGAN uses)."""
    values, random = latent.asnumpy().copy(), np.random.RandomState(seed)
    outside = np.abs(values) > threshold
    while outside.any():
        values[outside] = random.normal(size=int(outside.sum()))
        outside = np.abs(values) > threshold
    return nd.array(values, ctx=latent.context)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    checks = parser.add_subparsers(dest="check", required=True)
    batchnorm = checks.add_parser("batchnorm", help="re-estimate the BatchNorm statistics, then score")
    batchnorm.add_argument("--batches", type=int, nargs="+", default=[50, 200],
                           help="re-estimate from this many batches (default: 50 and 200, each from the shipped weights)")
    batchnorm.add_argument("--batch-size", type=int, default=256, help="latent vectors per batch (default 256)")
    truncation = checks.add_parser("truncation", help="draw from a narrower latent distribution, then score")
    truncation.add_argument("--scales", type=float, nargs="+", default=[0.9, 0.8, 0.7],
                            help="factors every latent vector is multiplied by (default 0.9 0.8 0.7)")
    truncation.add_argument("--thresholds", type=float, nargs="+", default=[2.0, 1.5],
                            help="largest magnitude a latent value may keep (default 2.0 1.5)")
    truncation.add_argument("--grids", type=Path, help="save each variant's 8x8 grid as a PNG in this folder")
    args = parser.parse_args()

    notebook = notebook_namespace("03_dcgan_anime_faces.ipynb", also=("device",))
    device, seed = notebook["device"], notebook["SEED"]
    path, entry = storage.verified_weights("dcgan_generator.params")
    latent_size = entry["config"]["latent_size"]
    real_images, _ = helpers.load_images(storage.faces_folder(), size=64)
    count = min(512, real_images.shape[0])
    real_sample = real_images.take(nd.array(np.random.RandomState(seed).permutation(real_images.shape[0])[:count]))
    scoring_latent = notebook["latent_vectors"](count, seed + 1, size=latent_size)
    score = notebook["thumbnail_frechet_distance"]
    print(f"{real_images.shape[0]:,} real faces; the shipped generator's entry says {entry['metric']:.2f}")
    shipped = notebook["load_generator"](path, entry)
    results = {"as shipped": {"frechet_8x8": score(shipped(scoring_latent), real_sample)}}
    print(f"as shipped: {results['as shipped']['frechet_8x8']:.2f}")

    if args.check == "batchnorm":
        for batches in args.batches:
            generator = notebook["load_generator"](path, entry)  # a fresh copy of the shipped weights
            reestimate_batchnorm(generator, batches, args.batch_size, latent_size, seed=123, device=device)
            name = f"BatchNorm statistics re-estimated from {batches} batches of {args.batch_size}"
            results[name] = {"frechet_8x8": score(generator(scoring_latent), real_sample)}
            print(f"{name}: {results[name]['frechet_8x8']:.2f}")
        record(args.check, entry, results, real_images.shape[0])
        return

    spread = notebook["mean_pairwise_distance"]
    chosen = np.random.RandomState(seed).choice(real_images.shape[0], 64, replace=False)
    real_spread = spread(real_images.take(nd.array(chosen)))
    grid_latent = notebook["latent_vectors"](64, seed, size=latent_size)
    variants = [("as shipped", lambda latent: latent)]
    variants += [(f"scaled by {scale}", lambda latent, scale=scale: latent * scale) for scale in args.scales]
    variants += [(f"values beyond {threshold} drawn again",
                  lambda latent, threshold=threshold: truncate(latent, threshold, seed=latent.shape[0]))
                 for threshold in args.thresholds]

    def contrast(images):  # the standard deviation of each face's pixels, averaged over the faces
        return float(images.reshape((images.shape[0], -1)).asnumpy().std(axis=1).mean())

    shipped_contrast = contrast(shipped(grid_latent))
    for name, narrow in variants:
        grid = shipped(narrow(grid_latent))
        results[name] = {"frechet_8x8": score(shipped(narrow(scoring_latent)), real_sample),
                         "spread_vs_real": spread(grid) / real_spread,
                         "contrast_vs_shipped_grid": contrast(grid) / shipped_contrast}
        print(f"{name:32} Frechet {results[name]['frechet_8x8']:5.2f}, "
              f"spread {results[name]['spread_vs_real']:4.0%} of real faces', "
              f"contrast {results[name]['contrast_vs_shipped_grid']:4.0%} of the shipped grid's")
        if args.grids:
            args.grids.mkdir(parents=True, exist_ok=True)
            plt.imsave(args.grids / f"{name.replace(' ', '_')}.png", helpers.image_grid(grid))
    with autograd.train_mode():  # BatchNorm normalises with the batch's own statistics, as in training
        largest = max(float(nd.abs(shipped(grid_latent) - shipped(grid_latent * scale)).max().asscalar())
                      for scale in args.scales)
    print(f"with the batch's own statistics instead of the running ones, scaling changes no pixel by more "
          f"than {largest:.1e}")
    record(args.check, entry, {"variants": results, "largest_pixel_change_in_training_mode": largest},
           real_images.shape[0])


def record(check, entry, results, real_faces):
    """Keep one check's results in the log, beside the other check's, with how they were made."""
    log = json.loads(LOG.read_text()) if LOG.exists() else {}
    log[check] = {"results": results, "generator_sha256": entry["sha256"], "real_faces": real_faces,
                  "command": "python experiments/dcgan_sampling_checks.py " + " ".join(sys.argv[1:]),
                  "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu_cores": helpers.cpu_cores()}
    storage.write_json(LOG, log)
    print(f"written to {helpers.shown_path(LOG)}")


if __name__ == "__main__":
    main()
