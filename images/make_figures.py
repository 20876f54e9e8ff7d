"""Draw every diagram used by the notebooks, as PNG files next to this script.

Run from the repository root:

    .venv/bin/python images/make_figures.py

Only matplotlib is used. The colours live in one place below so that a reader
who learns "green is an input, amber is the hidden state" in the first picture
can rely on it in every later one; the three shared weight matrices (WI, WH,
WO) likewise keep one colour each wherever they appear.
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
import matplotlib.pyplot as plt
from matplotlib.path import Path as LinePath
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

OUTPUT_DIR = Path(__file__).resolve().parent
DPI = 120

# One palette for every figure.
INPUT_COLOR = "#a8d8a0"       # green: characters, noise, real data
HIDDEN_COLOR = "#f7d26a"      # amber: hidden state
OUTPUT_COLOR = "#f19a8f"      # red: predictions and verdicts
WI_COLOR = "#2f6db5"          # blue: input weights WI
WH_COLOR = "#8a44b0"          # purple: hidden-to-hidden weights WH
WO_COLOR = "#9a5b2e"          # brown: output weights WO
NEUTRAL_COLOR = "#e3e3e3"     # grey: embeddings, losses, notes
DROPPED_COLOR = "#bdbdbd"     # darker grey: data that is thrown away
GENERATOR_COLOR = "#b9d3ee"   # light blue: the generator and what it makes
DISCRIMINATOR_COLOR = "#d9c2e8"  # light purple: the discriminator
ALERT_COLOR = "#d62728"       # red lines: something is lost
UPDATE_COLOR = "#555555"      # dashed grey: an optimiser step
SERVER_COLOR = "#bfe3dc"      # pale teal: a parameter server, which holds the weights
EDGE_COLOR = "#444444"
TEXT_COLOR = "#222222"

plt.rcParams.update({"font.size": 11, "text.color": TEXT_COLOR,
                     "figure.facecolor": "white", "savefig.facecolor": "white"})


def new_canvas(width, height, x_range, y_range, title):
    """A blank axes in data units, so boxes can be placed on a simple grid."""
    figure, axes = plt.subplots(figsize=(width, height))
    axes.set_xlim(*x_range)
    axes.set_ylim(*y_range)
    axes.set_aspect("equal")
    axes.axis("off")
    axes.set_title(title, fontsize=14, fontweight="bold")
    return figure, axes


def draw_box(axes, center, text, fill, width=1.2, height=0.6, fontsize=11, family="sans-serif"):
    """A rounded box with centred text."""
    x, y = center
    axes.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                  boxstyle="round,pad=0.02,rounding_size=0.12",
                                  facecolor=fill, edgecolor=EDGE_COLOR, linewidth=1.3))
    # Monospace where single characters matter: it tells l from I.
    axes.text(x, y, text, ha="center", va="center", fontsize=fontsize, family=family)


def draw_arrow(axes, start, end, color=EDGE_COLOR, label=None, curve=0.0,
               label_shift=(0.0, 0.0), linestyle="-", width=2.2):
    """An arrow from start to end, with an optional label in the arrow's colour."""
    axes.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=16,
                                   connectionstyle=f"arc3,rad={curve}", color=color,
                                   linewidth=width, linestyle=linestyle))
    if label:
        middle = ((start[0] + end[0]) / 2 + label_shift[0],
                  (start[1] + end[1]) / 2 + label_shift[1])
        axes.text(*middle, label, color=color, fontsize=11, fontweight="bold",
                  ha="center", va="center",
                  bbox=dict(facecolor="white", edgecolor="none", pad=1.0))


def draw_self_loop(axes, start, end, direction, color, label, label_at, arm=0.6):
    """A loop that leaves a box and re-enters it: the recurrence on the hidden state.

    Both arms go the same way (direction is a unit step such as (0, 1)), so the
    path is a clear open rectangle rather than a squashed arc.
    """
    step_x, step_y = direction[0] * arm, direction[1] * arm
    corners = [start, (start[0] + step_x, start[1] + step_y),
               (end[0] + step_x, end[1] + step_y), end]
    loop = LinePath(corners, [LinePath.MOVETO] + [LinePath.LINETO] * 3)
    axes.add_patch(FancyArrowPatch(path=loop, arrowstyle="-|>", mutation_scale=16,
                                   color=color, linewidth=2.2, joinstyle="round"))
    axes.text(*label_at, label, color=color, fontsize=11, fontweight="bold",
              ha="center", va="center")


def save(figure, name):
    figure.savefig(OUTPUT_DIR / name, dpi=DPI, bbox_inches="tight", pad_inches=0.15)
    plt.close(figure)
    print("wrote", OUTPUT_DIR / name)


def feedforward_vs_recurrent():
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 4.6))
    for axes, title in ((left, "Feed-forward network"), (right, "Recurrent cell")):
        axes.set_xlim(-2, 2)
        axes.set_ylim(-0.6, 4.4)
        axes.set_aspect("equal")
        axes.axis("off")
        axes.set_title(title, fontsize=14, fontweight="bold")
    # Same vertical stack on both sides so the only visible difference is the loop.
    for axes in (left, right):
        draw_box(axes, (0, 0), "input x", INPUT_COLOR, width=1.6)
        draw_box(axes, (0, 1.6), "hidden h", HIDDEN_COLOR, width=1.6)
        draw_box(axes, (0, 3.2), "output y", OUTPUT_COLOR, width=1.6)
        draw_arrow(axes, (0, 0.3), (0, 1.3), WI_COLOR, "WI", label_shift=(0.35, 0))
        draw_arrow(axes, (0, 1.9), (0, 2.9), WO_COLOR, "WO", label_shift=(0.35, 0))
    draw_self_loop(right, (0.8, 1.82), (0.8, 1.38), (1, 0), WH_COLOR, "WH", (1.72, 1.6), arm=0.6)
    left.text(0, -0.55, "no memory: every input\nis handled on its own", ha="center",
              va="top", fontsize=10)
    right.text(0, -0.55, "the hidden state feeds back into\nitself, so earlier inputs count",
               ha="center", va="top", fontsize=10)
    save(figure, "feedforward_vs_recurrent.png")


def unrolled_rnn():
    characters = ["l", "o", "v"]
    figure, axes = new_canvas(11, 5.2, (-1.2, 11.6), (-0.8, 4.6),
                              "Many-to-one RNN unrolled over three characters")
    column_x = [0, 3, 6]
    hidden_y = 3.2
    for step, (x, character) in enumerate(zip(column_x, characters), start=1):
        draw_box(axes, (x, 0), f"char {step}: '{character}'", INPUT_COLOR, width=2.0,
                 family="monospace")
        draw_box(axes, (x, 1.3), "embedding", NEUTRAL_COLOR, width=1.6)
        draw_box(axes, (x, hidden_y), f"hidden h{step}", HIDDEN_COLOR, width=1.6)
        draw_arrow(axes, (x, 0.3), (x, 1.0))
        draw_arrow(axes, (x, 1.6), (x, hidden_y - 0.3), WI_COLOR, "WI", label_shift=(0.35, 0))
    # One WH matrix is reused for every link in the chain, hence one colour.
    for left_x, right_x in zip(column_x[:-1], column_x[1:]):
        draw_arrow(axes, (left_x + 0.8, hidden_y), (right_x - 0.8, hidden_y), WH_COLOR, "WH",
                   label_shift=(0, 0.28))
    draw_arrow(axes, (column_x[-1] + 0.8, hidden_y), (8.4, hidden_y), WO_COLOR, "WO",
               label_shift=(0, 0.28))
    draw_box(axes, (9.6, hidden_y), "softmax over\nvocabulary", OUTPUT_COLOR,
             width=2.4, height=0.9)
    draw_arrow(axes, (9.6, hidden_y - 0.45), (9.6, 1.6))
    draw_box(axes, (9.6, 1.3), "char 4: 'e'", OUTPUT_COLOR, width=2.0, family="monospace")
    axes.text(9.6, 0.15, "predicted next\ncharacter", ha="center", va="center", fontsize=10)
    axes.text(3, 4.25, "same colour = same weights, shared by every step",
              ha="center", fontsize=10, style="italic")
    save(figure, "unrolled_rnn.png")


def three_character_windows(text="I_love_mxnet", window=3):
    """Non-overlapping windows with stride equal to their length, as in notebook 1."""
    # A window needs one more character after it to serve as its target.
    starts = list(range(0, len(text) - window, window))
    pairs = [(text[s:s + window], text[s + window]) for s in starts]
    assert starts == [0, 3, 6] and pairs == [("I_l", "o"), ("ove", "_"), ("_mx", "n")]
    figure, axes = new_canvas(9, 5.2, (-0.6, len(text) * 0.7 + 0.2), (-4.6, 1.6),
                              "Cutting text into 3-character windows with stride 3")
    cell = 0.7
    for index, character in enumerate(text):
        in_window = index < starts[-1] + window + 1
        axes.add_patch(Rectangle((index * cell, 0), cell, cell, edgecolor=EDGE_COLOR,
                                 facecolor=NEUTRAL_COLOR if in_window else DROPPED_COLOR))
        axes.text(index * cell + cell / 2, cell / 2, character, ha="center", va="center",
                  fontsize=13, family="monospace")
        axes.text(index * cell + cell / 2, -0.2, str(index), ha="center", va="center",
                  fontsize=8, color="#666666")
    for number, start in enumerate(starts, start=1):
        left, right = start * cell + 0.05, (start + window) * cell - 0.05
        axes.plot([left, left, right, right], [0.8, 0.95, 0.95, 0.8], color=EDGE_COLOR, lw=1.5)
        axes.text((left + right) / 2, 1.1, f"window {number}", ha="center", fontsize=9)
    last = starts[-1] + window
    left, right = last * cell + 0.05, len(text) * cell - 0.05
    axes.plot([left, left, right, right], [0.8, 0.95, 0.95, 0.8], color="#888888",
              lw=1.5, ls="--")
    axes.text((left + right) / 2, 1.1, "'net' has no next\ncharacter: skipped",
              ha="center", fontsize=9, color="#666666")
    # The table underneath: one row per training example.
    headers = ["c1", "c2", "c3", "target c4"]
    column_x = [2.0, 2.9, 3.8, 5.3]
    for x, header in zip(column_x, headers):
        axes.text(x, -1.0, header, ha="center", va="center", fontweight="bold")
    for row, (inputs, target) in enumerate(pairs):
        y = -1.7 - row * 0.9
        axes.text(0.5, y, f"window {row + 1}", ha="center", va="center", fontsize=10)
        for x, character in zip(column_x, list(inputs) + [target]):
            fill = OUTPUT_COLOR if x == column_x[-1] else INPUT_COLOR
            draw_box(axes, (x, y), character, fill, width=0.7, height=0.6, fontsize=13,
                     family="monospace")
        draw_arrow(axes, (4.25, y), (4.9, y))
    axes.text(6.2, -2.6, "the target is the\ncharacter right after\neach window",
              ha="left", va="center", fontsize=10)
    save(figure, "three_char_windows.png")


def sequence_to_sequence(text="love"):
    """Many-to-many on a real word: after each prefix, predict the character that follows it."""
    steps = len(text) - 1
    figure, axes = new_canvas(9, 6.6, (-1.2, 3 * steps - 0.8), (-1.0, 6.4),
                              "Many-to-many RNN: a prediction and a loss at every step")
    for step in range(1, steps + 1):
        x = (step - 1) * 3
        draw_box(axes, (x, 0), f"x{step} = '{text[step - 1]}'", INPUT_COLOR, width=1.6,
                 family="monospace")
        draw_box(axes, (x, 1.8), f"hidden h{step}", HIDDEN_COLOR, width=1.6)
        draw_box(axes, (x, 3.6), f"y{step} vs '{text[step]}'", OUTPUT_COLOR, width=1.8,
                 family="monospace")
        draw_box(axes, (x, 5.1), f"loss{step}", NEUTRAL_COLOR, width=1.3)
        draw_arrow(axes, (x, 0.3), (x, 1.5), WI_COLOR, "WI", label_shift=(0.35, 0))
        draw_arrow(axes, (x, 2.1), (x, 3.3), WO_COLOR, "WO", label_shift=(0.38, 0))
        draw_arrow(axes, (x, 3.9), (x, 4.8))
        # what this step's prediction is allowed to depend on: the prefix read so far
        axes.text(x, -0.65, f"'{text[:step]}' -> '{text[step]}'", ha="center", va="center",
                  fontsize=11, family="monospace")
        if step < steps:
            draw_arrow(axes, (x + 0.8, 1.8), (x + 2.2, 1.8), WH_COLOR, "WH",
                       label_shift=(0, 0.28))
    axes.text(3, 5.9, " + ".join(f"loss{step}" for step in range(1, steps + 1))
              + " = total loss", ha="center", fontsize=11)
    save(figure, "seq_to_seq.png")


def draw_feature_row(axes, y, name, name_y, inputs, output, output_color, caption):
    """One model of features_without_labels: its name, inputs -> hidden layers -> output, a caption."""
    axes.text(-1.3, name_y, name, fontsize=12, fontweight="bold", va="center")
    draw_box(axes, (1.3, y), inputs, INPUT_COLOR, width=2.0, height=0.9)
    draw_box(axes, (5.0, y), "hidden layers", HIDDEN_COLOR, width=2.2, height=0.9)
    draw_box(axes, (8.7, y), output, output_color, width=2.0, height=0.9)
    draw_arrow(axes, (2.3, y), (3.9, y))
    draw_arrow(axes, (6.1, y), (7.7, y))
    axes.text(11.9, y, caption, ha="center", va="center", fontsize=10, style="italic")


def features_without_labels():
    """The original's m-dis and m-gen-partial: who needs labels, and for what."""
    figure, axes = new_canvas(11.5, 5.6, (-1.4, 14.2), (-1.0, 5.6),
                              "Learning features with and without labels")
    draw_feature_row(axes, 4.3, "m-dis", 4.9, "every image\nlabelled", "softmax:\ncat or dog", OUTPUT_COLOR,
                     "learns what separates\nthe two labels")
    draw_feature_row(axes, 1.9, "m-gen-partial", 2.6, "many images,\nno labels", "describe the\ninput itself",
                     NEUTRAL_COLOR, "step 1: learns what\nthe images look like")
    draw_box(axes, (1.3, -0.3), "a few labelled\nimages", INPUT_COLOR, width=2.0, height=0.9)
    draw_box(axes, (8.7, -0.3), "softmax:\ncat or dog", OUTPUT_COLOR, width=2.0, height=0.9)
    draw_arrow(axes, (2.3, -0.3), (4.4, 1.4), linestyle="--")
    draw_arrow(axes, (5.6, 1.4), (7.7, -0.3), linestyle="--")
    axes.text(11.9, -0.3, "step 2: a small head,\nfine-tuned with few labels", ha="center",
              va="center", fontsize=10, style="italic")
    save(figure, "features_without_labels.png")


def folded_rnn():
    figure, axes = new_canvas(8.4, 3.6, (-1.0, 8.0), (-1.8, 2.3), "The folded RNN")
    draw_box(axes, (0, 0), "$x_t$", INPUT_COLOR, width=1.2, fontsize=14)
    draw_box(axes, (3.5, 0), "$h_t$", HIDDEN_COLOR, width=1.4, fontsize=14)
    draw_box(axes, (7, 0), "$y_t$", OUTPUT_COLOR, width=1.2, fontsize=14)
    draw_arrow(axes, (0.6, 0), (2.8, 0), WI_COLOR, "WI", label_shift=(0, 0.28))
    draw_arrow(axes, (4.2, 0), (6.4, 0), WO_COLOR, "WO", label_shift=(0, 0.28))
    draw_self_loop(axes, (3.9, 0.3), (3.1, 0.3), (0, 1), WH_COLOR, r"WH, from $h_{t-1}$",
                   (3.5, 1.42), arm=0.75)
    axes.text(3.5, -1.2, r"$h_t = f\,(W_I\,x_t + W_H\,h_{t-1})$", ha="center", va="center",
              fontsize=17)
    save(figure, "folded_rnn.png")


def draw_cell(axes, x, y, text, fill, size=0.6, fontsize=12):
    axes.add_patch(Rectangle((x, y), size, size, facecolor=fill, edgecolor=EDGE_COLOR))
    axes.text(x + size / 2, y + size / 2, text, ha="center", va="center",
              fontsize=fontsize, family="monospace")


def outline(axes, x, y, width, height, color, linestyle="-"):
    axes.add_patch(Rectangle((x, y), width, height, fill=False, edgecolor=color,
                             linewidth=2.2, linestyle=linestyle))


def batchify_figure(text="ONCE_UPON_A_TIME_MXNET", batch_size=3, seq_length=3):
    steps = len(text) // batch_size
    kept = steps * batch_size
    # Column j of the matrix is the j-th contiguous stretch of the text.
    matrix = [[text[column * steps + row] for column in range(batch_size)]
              for row in range(steps)]
    cell = 0.6
    figure, axes = new_canvas(11, 8.4, (-0.8, len(text) * cell + 0.3), (-6.6, 2.2),
                              f"batchify: one long text becomes a ({steps} steps x "
                              f"{batch_size} batch) matrix")
    for index, character in enumerate(text):
        draw_cell(axes, index * cell, 0, character,
                  INPUT_COLOR if index < kept else DROPPED_COLOR)
        axes.text(index * cell + cell / 2, -0.2, str(index), ha="center", fontsize=7,
                  va="center", color="#666666")
    for column in range(batch_size):
        left, right = column * steps * cell + 0.05, (column + 1) * steps * cell - 0.05
        axes.plot([left, left, right, right], [0.7, 0.85, 0.85, 0.7], color=EDGE_COLOR)
        axes.text((left + right) / 2, 1.0, f"column {column}", ha="center", fontsize=10)
        if column:
            outline(axes, (column * steps - 1) * cell - 0.04, -0.04, 2 * cell + 0.08,
                    cell + 0.08, ALERT_COLOR, "--")
    axes.text(kept * cell + cell / 2, 1.0, "dropped", ha="center", fontsize=9,
              color="#666666")
    # The matrix, drawn with row 0 at the top as numpy prints it.
    top, left = -1.6, 1.4
    axes.text(left + batch_size * cell / 2, top + 0.35, f"data ({steps}, {batch_size})",
              ha="center", fontweight="bold")
    for row in range(steps):
        y = top - (row + 1) * cell
        axes.text(left - 0.3, y + cell / 2, f"row {row}", ha="right", va="center", fontsize=9)
        for column in range(batch_size):
            draw_cell(axes, left + column * cell, y, matrix[row][column], INPUT_COLOR)
    bottom = top - steps * cell
    inset = 0.06  # keeps neighbouring outlines visibly separate
    for column in range(1, batch_size):
        outline(axes, left + (column - 1) * cell + inset, bottom + inset,
                cell - 2 * inset, cell - 2 * inset, ALERT_COLOR, "--")
        outline(axes, left + column * cell + inset, top - cell + inset,
                cell - 2 * inset, cell - 2 * inset, ALERT_COLOR, "--")
    lost_pairs = ", ".join(f"{text[c * steps - 1]}{text[c * steps]}"
                           for c in range(1, batch_size))
    axes.text(left + batch_size * cell + 0.3, bottom - 0.3,
              f"dashed red: neighbours in the text ({lost_pairs})\n"
              "land at the bottom of one column and the top\n"
              "of the next, so the model never sees that link",
              fontsize=9, va="center", color=ALERT_COLOR)
    # get_batch(i=0): rows 0..seq_length-1 as input, the same rows shifted down one as target.
    for name, offset, fill, x in (("input", 0, INPUT_COLOR, 7.4),
                                  ("target", 1, OUTPUT_COLOR, 10.2)):
        axes.text(x + batch_size * cell / 2, top - offset * cell + 0.35,
                  f"{name}: rows {offset}-{offset + seq_length - 1}", ha="center",
                  fontweight="bold")
        for row in range(offset, offset + seq_length):
            for column in range(batch_size):
                draw_cell(axes, x + column * cell, top - (row + 1) * cell,
                          matrix[row][column], fill)
    axes.text(9.7, top - (seq_length + 2) * cell,
              f"get_batch(data, 0) with seq_length = {seq_length}:\n"
              "each target is the character one row below its input",
              ha="center", va="top", fontsize=10)
    save(figure, "batchify.png")


def gan_training_loop():
    figure, axes = new_canvas(11, 6.6, (-1.0, 13.0), (-3.6, 4.6),
                              "One GAN training step")
    draw_box(axes, (0, 0), "latent noise z", INPUT_COLOR, width=1.9)
    draw_box(axes, (3, 0), "Generator G", GENERATOR_COLOR, width=1.9, height=0.8)
    draw_box(axes, (6, 0), "fake images", GENERATOR_COLOR, width=1.9)
    draw_box(axes, (6, 2.6), "real images", INPUT_COLOR, width=1.9)
    draw_box(axes, (9, 1.3), "Discriminator D", DISCRIMINATOR_COLOR, width=2.3, height=0.8)
    draw_box(axes, (11.9, 1.3), "real or\nfake?", OUTPUT_COLOR, width=1.5, height=0.9)
    draw_arrow(axes, (0.95, 0), (2.05, 0))
    draw_arrow(axes, (3.95, 0), (5.05, 0))
    draw_arrow(axes, (6.95, 2.6), (8.1, 1.7))
    draw_arrow(axes, (6.95, 0), (8.1, 0.9))
    draw_arrow(axes, (10.15, 1.3), (11.15, 1.3))
    axes.text(7.55, 0.05, "detached\nfor D's step", ha="center", fontsize=8.5,
              color=ALERT_COLOR, va="top")
    draw_box(axes, (9, 3.9), "D loss: real vs label 1, fake vs label 0",
             NEUTRAL_COLOR, width=5.2, height=0.6, fontsize=10)
    draw_box(axes, (5.4, -2.2), "G loss: fake judged against label 'real' = 1",
             NEUTRAL_COLOR, width=5.4, height=0.6, fontsize=10)
    draw_arrow(axes, (11.9, 1.75), (11.0, 3.6), OUTPUT_COLOR, curve=0.2)
    draw_arrow(axes, (11.9, 0.85), (8.1, -1.9), OUTPUT_COLOR, curve=-0.2)
    draw_arrow(axes, (9.6, 3.6), (9.6, 1.7), UPDATE_COLOR, "updates D", linestyle="--",
               label_shift=(0.9, 0))
    draw_arrow(axes, (3.0, -1.9), (3.0, -0.4), UPDATE_COLOR, "updates G", linestyle="--",
               label_shift=(-0.8, 0))
    axes.text(3, 0.75, "counterfeiter:\nprints fake notes", ha="center", fontsize=9,
              style="italic")
    axes.text(9.3, 0.6, "bank: checks notes", ha="center", fontsize=9, style="italic")
    axes.text(5.4, -3.0, "fakes the bank accepts are good forgeries; "
              "no gradient reaches G during D's step", ha="center", fontsize=9)
    save(figure, "gan_training_loop.png")


def data_parallel():
    """Notebook 4: a global batch split between two workers, summed and applied on a server."""
    figure, axes = new_canvas(11, 6.6, (-0.6, 11.4), (-1.6, 6.0),
                              "Data parallelism with a parameter server (dist_sync)")
    draw_box(axes, (3.4, 5.2), "global batch: B columns of text", INPUT_COLOR, width=5.4)
    for rank, x in enumerate((1.3, 5.5)):
        columns = "0 ... B/2-1" if rank == 0 else "B/2 ... B-1"
        draw_box(axes, (x, 3.9), f"shard {rank}: columns {columns}", INPUT_COLOR, width=3.3, fontsize=10)
        draw_arrow(axes, (x + (0.6 if rank == 0 else -0.6), 4.9), (x, 4.22))
        draw_box(axes, (x, 2.3), f"worker, kv.rank = {rank}\nforward + backward\n"
                 rf"$g_{rank} = \sum_{{i \in S_{rank}}} \nabla \ell_i$", NEUTRAL_COLOR, width=3.3, height=1.45)
        draw_arrow(axes, (x, 3.58), (x, 3.05))
        draw_arrow(axes, (x - 0.7, 1.55), (x - 0.7, 0.25), UPDATE_COLOR, rf"push $g_{rank}$",
                   linestyle="--", label_shift=(-0.05, 0))
        draw_arrow(axes, (x + 0.7, 0.25), (x + 0.7, 1.55), EDGE_COLOR, "pull $w$", label_shift=(0.05, 0))
    draw_box(axes, (3.4, -0.55), "server: $g = g_0 + g_1$,  then the optimizer:\n"
             r"$w \leftarrow w - \eta \, g / B$   (trainer.step(B), B global)", SERVER_COLOR,
             width=6.6, height=1.5)
    draw_box(axes, (9.6, 2.3), "scheduler\nassigns the ranks,\nintroduces the\nprocesses; no data\npasses through it",
             NEUTRAL_COLOR, width=2.9, height=2.2, fontsize=10)
    axes.text(9.6, -0.55, "every worker pulls the\nsame new $w$, so the\nweights stay identical",
              ha="center", va="center", fontsize=10)
    save(figure, "data_parallel.png")


def lstm_cell():
    """One LSTM step (notebook 2's gate equations): the cell line on top, the gates below it."""
    figure, axes = new_canvas(11, 6.2, (-1.4, 13.4), (-1.3, 6.4), "One step of an LSTM cell")
    cell_y, gate_y, bus_y = 5.2, 2.6, 1.0

    def operation(center, symbol):  # a small round node: an element-wise operation
        axes.add_patch(plt.Circle(center, 0.32, facecolor="white", edgecolor=EDGE_COLOR, linewidth=1.3))
        axes.text(*center, symbol, ha="center", va="center", fontsize=12 if len(symbol) == 1 else 8)

    draw_box(axes, (-0.4, cell_y), "c(t-1)", HIDDEN_COLOR, width=1.5)
    draw_box(axes, (12.4, cell_y), "c(t)", HIDDEN_COLOR, width=1.4)
    draw_box(axes, (-0.4, bus_y), "h(t-1)", HIDDEN_COLOR, width=1.5)
    draw_box(axes, (1.6, -0.6), "x(t)", INPUT_COLOR, width=1.3)
    draw_box(axes, (12.4, 2.6), "h(t)", HIDDEN_COLOR, width=1.4)
    forget_x, input_x, candidate_x, output_x, squash_x = 3.4, 5.2, 6.9, 8.7, 10.3
    # the cell line: only a multiplication and an addition touch it
    draw_arrow(axes, (0.35, cell_y), (forget_x - 0.32, cell_y), width=3)
    draw_arrow(axes, (forget_x + 0.32, cell_y), (6.05 - 0.32, cell_y), width=3)
    draw_arrow(axes, (6.05 + 0.32, cell_y), (11.7, cell_y), width=3)
    operation((forget_x, cell_y), "×")
    operation((6.05, cell_y), "+")
    # [h(t-1), x(t)] feeds all four gates
    axes.plot([0.35, output_x], [bus_y, bus_y], color=EDGE_COLOR, linewidth=2)
    axes.plot([1.6, 1.6], [-0.3, bus_y], color=EDGE_COLOR, linewidth=2)
    gates = [(forget_x, "σ", "f(t) forget"), (input_x, "σ", "i(t) input"),
             (candidate_x, "tanh", "g(t) candidate"), (output_x, "σ", "o(t) output")]
    for x, symbol, name in gates:
        draw_arrow(axes, (x, bus_y), (x, gate_y - 0.3), WI_COLOR)
        draw_box(axes, (x, gate_y), symbol, NEUTRAL_COLOR, width=1.0)
        axes.text(x, gate_y - 0.62, name, ha="center", va="top", fontsize=9,
                  bbox=dict(facecolor="white", edgecolor="none", pad=0.5))
    draw_arrow(axes, (forget_x, gate_y + 0.3), (forget_x, cell_y - 0.32))
    operation((6.05, 3.9), "×")
    draw_arrow(axes, (input_x, gate_y + 0.3), (5.85, 3.65))
    draw_arrow(axes, (candidate_x, gate_y + 0.3), (6.25, 3.65))
    draw_arrow(axes, (6.05, 4.22), (6.05, cell_y - 0.32))
    # the output: tanh of the new cell, let through by the output gate
    operation((squash_x, 4.1), "tanh")
    draw_arrow(axes, (squash_x, cell_y), (squash_x, 4.42))
    operation((squash_x, gate_y), "×")
    draw_arrow(axes, (squash_x, 3.78), (squash_x, gate_y + 0.32))
    draw_arrow(axes, (output_x + 0.5, gate_y), (squash_x - 0.32, gate_y))
    draw_arrow(axes, (squash_x + 0.32, gate_y), (11.7, gate_y))
    axes.text(7.6, -0.6, "blue: weights W(x·), W(h·) and a bias, one set per gate\n"
              "σ gives numbers in (0, 1): how much passes; × and + act element by element",
              ha="center", va="center", fontsize=9.5, style="italic")
    save(figure, "lstm_cell.png")


if __name__ == "__main__":
    lstm_cell()
    feedforward_vs_recurrent()
    unrolled_rnn()
    three_character_windows()
    sequence_to_sequence()
    features_without_labels()
    folded_rnn()
    batchify_figure()
    gan_training_loop()
    data_parallel()
