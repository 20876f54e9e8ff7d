"""The two interactive panels: notebook 2 writes text as you ask, notebook 3 draws faces as you
move sliders (ipywidgets). Each also leaves a still output (a picture, a text) for viewers without
a kernel, such as GitHub.
"""
import base64

import cv2
import numpy as np

from helpers import image_grid


def png_bytes(picture, scale=1):
    """An HWC uint8 picture as PNG bytes, each pixel repeated `scale` times each way."""
    picture = np.repeat(np.repeat(np.asarray(picture), scale, axis=0), scale, axis=1)
    return cv2.imencode(".png", np.ascontiguousarray(picture[..., ::-1]))[1].tobytes()  # OpenCV writes BGR


def _show_panel(panel, still):
    """Display a widget with `still` ({mime type: data}) for viewers without a kernel (GitHub, nbviewer)."""
    from IPython.display import display

    display({**panel._repr_mimebundle_(), **still}, raw=True)
    return panel


def drawing_panel(draw_faces, walk, count=16):
    """Notebook 3's panel: a seed slider redraws draw_faces(seed) (`count` faces); three sliders walk
    from one of them to another, walk(seed, start, end, fraction) giving one face."""
    import ipywidgets as widgets

    seed = widgets.IntSlider(value=0, min=0, max=999, description="seed", continuous_update=False)
    start = widgets.IntSlider(value=1, min=1, max=count, description="from face")
    end = widgets.IntSlider(value=count, min=1, max=count, description="to face")
    fraction = widgets.FloatSlider(value=0.5, min=0, max=1, step=0.05, description="walk")
    faces, face = widgets.Image(format="png"), widgets.Image(format="png")

    def redraw(_=None):
        faces.value = png_bytes(image_grid(draw_faces(seed.value)), scale=2)
        one = walk(seed.value, start.value - 1, end.value - 1, fraction.value)
        face.value = png_bytes(image_grid(one, columns=1), scale=3)

    for slider in (seed, start, end, fraction):
        slider.observe(redraw, names="value")
    redraw()
    panel = widgets.VBox([seed, faces, widgets.HBox([start, end]), fraction, face])
    return _show_panel(panel, {"image/png": base64.b64encode(faces.value).decode("ascii"),
                               "text/plain": "a drawing panel: run the cell in Jupyter to move its sliders"})


def writing_panel(write, check, prime, temperature, top_k, length, seed, largest_top_k):
    """Notebook 2's panel: a box for the beginning, sliders for temperature, top-k (`largest_top_k`
    means all characters) and length, and a Write button showing write(prime, temperature, top_k,
    length, seed) with the next seed. A beginning check refuses (ValueError) is named under the
    box. Also prints one text with the starting values, for viewers without a kernel."""
    import ipywidgets as widgets

    box = widgets.Text(value=prime, description="beginning", layout=widgets.Layout(width="90%"))
    refusal, output, presses = widgets.Label(value=""), widgets.Output(), [0]
    temperature_slider = widgets.FloatSlider(value=temperature, min=0, max=max(2.0, temperature), step=0.05,
                                             description="temperature")
    top_k_slider = widgets.IntSlider(value=top_k or largest_top_k, min=1, max=largest_top_k, description="top-k")
    length_slider = widgets.IntSlider(value=length, min=10, max=max(2000, length), step=10, description="length")
    button = widgets.Button(description="Write")

    def refused(beginning):
        try:
            check(beginning)
        except ValueError as error:
            refusal.value = str(error)
            return True
        refusal.value = ""
        return False

    def on_press(_=None):
        if refused(box.value):
            return
        presses[0] += 1
        chosen_top_k = None if top_k_slider.value >= largest_top_k else top_k_slider.value
        button.disabled = True
        try:
            text = write(box.value, temperature_slider.value, chosen_top_k, length_slider.value, seed + presses[0])
        finally:
            button.disabled = False
        output.outputs = ()
        output.append_stdout(text + "\n")

    box.observe(lambda change: refused(change["new"]), names="value")
    button.on_click(on_press)
    panel = widgets.VBox([box, refusal, widgets.HBox([temperature_slider, top_k_slider]), length_slider,
                          button, output])
    _show_panel(panel, {"text/plain": "a writing panel: run the cell in Jupyter to use it"})
    print(f"written from {prime!r} at temperature {temperature}, top-k {top_k}, seed {seed}:")
    print(write(prime, temperature, top_k, length, seed))
    return panel
