"""The picture finder of the browser tests, on figures whose panels have known sizes."""
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tests.browser.image_panels import components, image_panels  # noqa: E402


def png_of(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A grey floor with a few coloured and white squares (white ones leave holes in the ink)."""
    image = np.full((height, width, 3), 0.55)
    rng = np.random.default_rng(seed)
    for colour in ([0.9, 0.1, 0.1], [1.0, 1.0, 1.0], [0.1, 0.2, 0.9]):
        y, x = rng.integers(0, height // 2), rng.integers(0, width // 2)
        image[y:y + height // 6, x:x + width // 6] = colour
    return image


def test_components_of_a_hand_drawn_mask():
    mask = np.zeros((6, 8), dtype=bool)
    mask[0:3, 0:2] = True        # a 2x3 block
    mask[1, 2:5] = True          # joined to it through row 1
    mask[4:6, 6:8] = True        # a separate 2x2 block
    mask[5, 0] = True            # a single pixel
    found = sorted(components(mask))
    assert found == [(0, 0, 5, 3, 9), (0, 5, 1, 6, 1), (6, 4, 8, 6, 4)]


def test_a_u_shape_is_one_component():
    mask = np.zeros((4, 5), dtype=bool)
    mask[:, 0] = mask[:, 4] = mask[3, :] = True  # two arms meet only in the last row
    assert components(mask) == [(0, 0, 5, 4, 11)]  # 3 rows of 2 pixels, then 5


def test_panels_of_a_figure_have_their_drawn_size():
    figure = plt.figure(figsize=(8, 3))  # 800 x 300 pixels
    for left, width in ((0.05, 0.4), (0.55, 0.3)):
        axis = figure.add_axes((left, 0.1, width, 0.7))
        axis.imshow(picture(32, 32), aspect="auto")
        axis.set_title("a title above the picture, in small type", fontsize=8)
        axis.axis("off")
    figure.suptitle("the figure's caption")
    panels = image_panels(png_of(figure))
    assert len(panels) == 2
    assert [abs(p.width - w) <= 1 for p, w in zip(panels, (320, 240))] == [True, True]
    assert all(abs(p.height - 210) <= 1 and abs(p.y - 60) <= 1 for p in panels)
    assert abs(panels[0].x - 40) <= 1 and abs(panels[1].x - 440) <= 1


def test_text_curves_and_colour_bars_are_not_pictures():
    figure, (plot_axis, image_axis) = plt.subplots(1, 2, figsize=(6, 3))
    plot_axis.plot(np.arange(10), np.arange(10) ** 2)
    plot_axis.set_title("loss", fontsize=14)
    plot_axis.text(1, 50, "a long note in the plot", fontsize=12)
    shown = image_axis.imshow(np.random.default_rng(0).random((8, 8)), cmap="magma")
    figure.colorbar(shown, ax=image_axis)
    image_axis.axis("off")
    panels = image_panels(png_of(figure))
    assert len(panels) == 1
    assert panels[0].width == panels[0].height > 100  # the 8x8 heat map, square; not the bar beside it


def test_tiny_pictures_are_still_found():
    figure = plt.figure(figsize=(3, 1))
    axis = figure.add_axes((0.1, 0.2, 0.05, 0.15))  # 15 x 15 pixels
    axis.imshow(picture(32, 32), aspect="auto")
    axis.axis("off")
    assert [(p.width, p.height) for p in image_panels(png_of(figure))] == [(15, 15)]


def test_a_blank_page_has_no_pictures():
    assert image_panels(png_of(plt.figure(figsize=(2, 2)))) == []
