"""The book's figures keep an opaque white background, also on a dark page."""

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

from twolayer import plotting


def corner_pixel(path) -> np.ndarray:
    """The top-left pixel of a PNG as RGBA values in [0, 1]."""
    image = plt.imread(path)
    pixel = image[0, 0]
    return np.append(pixel, 1.0) if pixel.shape[-1] == 3 else pixel


def test_saved_figure_is_opaque_white_even_under_a_transparent_style(tmp_path):
    transparent = {
        "savefig.transparent": True,
        "figure.facecolor": "none",
        "savefig.facecolor": "none",
    }
    with mpl.rc_context(transparent):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1], color="black")
        path = plotting.save(fig, tmp_path, "line")
        plt.close(fig)
    assert path == tmp_path / "figures" / "line.png"
    np.testing.assert_allclose(corner_pixel(path), [1.0, 1.0, 1.0, 1.0])


def test_style_gives_inline_figures_a_white_background():
    with mpl.rc_context():
        mpl.rcParams["figure.facecolor"] = "none"
        plotting.use_style()
        fig = plt.figure()
        assert mpl.colors.to_rgba(fig.get_facecolor()) == (1.0, 1.0, 1.0, 1.0)
        plt.close(fig)
