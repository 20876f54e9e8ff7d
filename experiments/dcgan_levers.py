"""Notebook 3's stabilisers side by side: each variant trained from the same seed, scored the same way.

    GENMODELS_DATA_DIR=/folder/with/anime-faces .venv/bin/python experiments/dcgan_levers.py --width 32 --epochs 1

Each variant is the original recipe with one lever moved (REAL_LABEL, INPUT_NOISE, G_STEPS), or
two together, trained by the notebook's own `fit` on every face the data helper finds, from the
same seed, so the batches, the initial weights and the 64 fixed latent vectors are the same for
all. Every variant is scored on the same 512 latent vectors by the notebook's
thumbnail_frechet_distance against the same 512 real faces, and by the mean pairwise distance of
its 64 fixed-latent faces against that of 64 real faces. The result, with this command, goes to
experiments/logs/dcgan_levers.json, and the first 16 of each variant's 64 fixed-latent faces, one variant
under another, to images/dcgan_levers.png (experiments/README.md shows it). The networks are narrower
than the shipped ones (--width) so that all variants fit in half an hour of a 2-core CPU: the
comparison ranks levers; the shipped run then uses the winner at full width.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "notebooks")]
import helpers  # noqa: E402  (sets the thread count and engine before mxnet is imported)
import storage
from notebook_code import notebook_namespace  # noqa: E402

LOG = ROOT / "experiments" / "logs" / "dcgan_levers.json"
FIGURE = ROOT / "images" / "dcgan_levers.png"
ORIGINAL = {"REAL_LABEL": 1.0, "INPUT_NOISE": 0.0, "G_STEPS": 1}
VARIANTS = {"original": {}, "label 0.9": {"REAL_LABEL": 0.9}, "noise 0.1": {"INPUT_NOISE": 0.1},
            "2 G steps": {"G_STEPS": 2}, "label 0.9 + noise 0.1": {"REAL_LABEL": 0.9, "INPUT_NOISE": 0.1}}


def train_variant(notebook, levers, images, width, epochs, folder):
    """Train one variant from the notebook's seed; returns the generator and the run's record."""
    mx = notebook["mx"]
    notebook.update({**ORIGINAL, **levers, "NGF": width, "NDF": width, "EPOCHS": epochs,
                     "GRID_DIR": folder / "grids"})
    helpers.seed_everything(notebook["SEED"])
    generator, discriminator = notebook["make_generator"](width), notebook["make_discriminator"](width)
    generator.initialize(mx.init.Normal(0.02), ctx=notebook["device"])
    discriminator.initialize(mx.init.Normal(0.02), ctx=notebook["device"])
    config = {key.lower(): value for key, value in {**ORIGINAL, **levers}.items()}
    record = notebook["fit"](generator, discriminator, images, epochs, folder, notebook["latent_vectors"](64, notebook["SEED"]),
                             config={**config, "width": width, "epochs": epochs})
    return generator, record


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=32, help="NGF = NDF of every variant (default 32)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per variant (default 1)")
    parser.add_argument("--image-count", type=int, default=None, help="the first N faces only (default: all)")
    parser.add_argument("--only", nargs="*", choices=sorted(VARIANTS), help="these variants only")
    args = parser.parse_args()
    notebook = notebook_namespace("03_dcgan_anime_faces.ipynb", also=("loss_function", "device"))
    nd, np = notebook["nd"], notebook["np"]
    started = time.perf_counter()
    images, skipped = helpers.load_images(storage.faces_folder(), size=64, limit=args.image_count)
    print(f"{images.shape[0]:,} faces ({len(skipped)} skipped) in {time.perf_counter() - started:.0f} s", flush=True)
    seed = notebook["SEED"]
    real_sample = images.take(nd.array(np.random.RandomState(seed).permutation(images.shape[0])[:512]))
    real_grid = images.take(nd.array(np.random.RandomState(seed).choice(images.shape[0], 64, replace=False)))
    real_spread = notebook["mean_pairwise_distance"](real_grid)
    scoring_latent, fixed_latent = notebook["latent_vectors"](512, seed + 1), notebook["latent_vectors"](64, seed)
    results, grids = {}, {}
    for name in args.only or VARIANTS:
        with tempfile.TemporaryDirectory() as temporary:
            generator, record = train_variant(notebook, VARIANTS[name], images, args.width, args.epochs,
                                              Path(temporary))
        steps = len(record["loss_g"]) // args.epochs
        faces = generator(fixed_latent)
        grids[name] = helpers.image_grid(faces)
        results[name] = {
            "levers": {**ORIGINAL, **VARIANTS[name]},
            "frechet_8x8": round(notebook["thumbnail_frechet_distance"](generator(scoring_latent), real_sample), 3),
            "spread_vs_real": round(notebook["mean_pairwise_distance"](faces) / real_spread, 3),
            "last_epoch_loss_d": round(float(np.mean(record["loss_d"][-steps:])), 3),
            "last_epoch_loss_g": round(float(np.mean(record["loss_g"][-steps:])), 3),
            "minutes": round(record["seconds"] / 60, 1),
            "images_per_s": round(float(np.mean(record["images_per_s"])), 1)}
        print(name, results[name], flush=True)
    threads = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} "  # set by helpers unless given
    log = {"command": (threads + "python experiments/dcgan_levers.py " + " ".join(sys.argv[1:])).strip(),
           "config": {"width": args.width, "epochs": args.epochs, "faces": images.shape[0],
                      "batch_size": notebook["BATCH_SIZE"], "learning_rate": notebook["LEARNING_RATE"],
                      "beta1": notebook["BETA1"], "latent_size": notebook["LATENT_SIZE"], "seed": seed},
           "scores": "frechet_8x8: the notebook's thumbnail_frechet_distance, 512 generated (latent seed "
                     "SEED + 1) vs 512 real faces, lower is closer; spread_vs_real: mean pairwise distance "
                     "of the 64 fixed-latent faces over that of 64 real faces",
           "cpu_cores": helpers.cpu_cores(), "mxnet": notebook["mx"].__version__, "results": results}
    storage.write_json(LOG, log)
    labels = [f"{name}: Frechet {results[name]['frechet_8x8']:.2f}, spread {results[name]['spread_vs_real']:.0%} of real"
              for name in grids]
    helpers.labelled_rows(list(grids.values()), labels, path=FIGURE)
    print(f"wrote {LOG.relative_to(ROOT)} and {FIGURE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
