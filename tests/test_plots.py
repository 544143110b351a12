import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tutorlib.plots import image_grid, moving_average, panel_figure, plot_losses, to_display  # noqa: E402
from tutorlib.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_unit_floats_channels_first_become_uint8_hwc():
    image = torch.zeros(3, 2, 4)
    image[0] = 1.0
    image[1, 0, 0] = 0.5
    shown = to_display(image)
    assert shown.shape == (2, 4, 3) and shown.dtype == np.uint8
    assert shown[0, 0].tolist() == [255, 128, 0]
    assert shown[1, 1].tolist() == [255, 0, 0]


def test_signed_floats_are_detected_and_mapped():
    image = np.full((2, 2, 3), -1.0, dtype=np.float32)
    image[0, 0] = [1.0, 0.0, -1.0]
    shown = to_display(image)
    assert shown[0, 0].tolist() == [255, 128, 0]
    assert shown[1, 1].tolist() == [0, 0, 0]
    assert to_display(np.zeros((2, 2, 3)), signed=True)[0, 0].tolist() == [128, 128, 128]


def test_uint8_grey_and_out_of_range_inputs():
    grey = np.array([[0, 200]], dtype=np.uint8)
    assert to_display(grey).tolist() == [[[0, 0, 0], [200, 200, 200]]]
    assert to_display(torch.full((1, 1, 1), 1.7)).tolist() == [[[255, 255, 255]]]
    with pytest.raises(ValueError, match=r"1 or 3 channels.*\(2, 2, 4\)"):
        to_display(np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match="dtype int64 is not supported"):
        to_display(np.zeros((2, 2, 3), dtype=np.int64))


def test_image_grid_layout_and_titles():
    images = torch.rand(5, 3, 8, 8) * 2 - 1
    figure = image_grid(images, nrow=3, titles=list("abcde"), scale=1.0)
    axes = figure.axes
    assert len(axes) == 6
    assert [axis.get_title() for axis in axes[:5]] == list("abcde")
    assert len(axes[5].images) == 0
    assert figure.get_size_inches()[0] == pytest.approx(3.0)
    shown = axes[0].images[0].get_array()
    assert np.array_equal(np.asarray(shown), to_display(images[0], signed=True))


def test_image_grid_uses_batch_wide_sign():
    dark = np.zeros((4, 4, 3), dtype=np.float32)
    signed = np.full((4, 4, 3), -1.0, dtype=np.float32)
    figure = image_grid([dark, signed])
    assert np.asarray(figure.axes[0].images[0].get_array())[0, 0].tolist() == [128, 128, 128]


def test_image_grid_rejects_mismatched_titles():
    with pytest.raises(ValueError, match="got 1 titles for 2 images"):
        image_grid(np.zeros((2, 4, 4, 3), dtype=np.uint8), titles=["x"])


def test_moving_average_values():
    assert moving_average([1, 2, 3, 4], 2).tolist() == [1.5, 2.5, 3.5]
    with pytest.raises(ValueError, match="window 5"):
        moving_average([1, 2], 5)


def test_plot_losses_one_subplot_per_name():
    history = History()
    for step in range(0, 50, 10):
        history.log(step, loss=1.0 / (step + 1), accuracy=step / 50)
    figure = plot_losses(history.to_dict(), smooth=3)
    assert [axis.get_title() for axis in figure.axes] == ["loss", "accuracy"]
    raw, smoothed = figure.axes[0].lines
    assert raw.get_xdata().tolist() == [0, 10, 20, 30, 40]
    assert smoothed.get_xdata().tolist() == [20, 30, 40]
    only = plot_losses(history, names=["accuracy"])
    assert len(only.axes) == 1 and len(only.axes[0].lines) == 1
    with pytest.raises(KeyError, match="nothing logged under 'lr'"):
        plot_losses(history, names=["lr"])


def test_image_grid_wraps_long_titles():
    images = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    long = "a small blue rubber cylinder to the right of a large cube"
    figure = image_grid(images, titles=[long, "short"], scale=1.5)
    title = figure.axes[0].get_title()
    assert "\n" in title and title.replace("\n", " ") == long
    assert figure.axes[1].get_title() == "short"


def test_panel_figure_keeps_every_picture_256_px_wide_at_notebook_width():
    notebook_width = 850  # CSS px of a JupyterLab output at the browser tests' window size
    figure, axes = panel_figure(5, extra_inches=0.3)
    assert len(axes) == 5 and len(figure.axes) == 5
    for ax in axes:
        ax.imshow(np.zeros((64, 64, 3), np.uint8))
        ax.set_title("a long title that wraps\nover two lines", fontsize=9)
        ax.axis("off")
    figure.suptitle("a suptitle")
    figure.canvas.draw()
    shrink = min(1.0, notebook_width / figure.bbox.width)
    widths = [ax.get_window_extent().width * shrink for ax in axes]
    assert min(widths) >= 256, widths
    assert {round(ax.get_position().y0, 3) for ax in axes}.__len__() == 2  # two rows: three panels, then two
    plt.close(figure)


def test_panel_figure_needs_a_panel():
    with pytest.raises(ValueError, match="at least one panel"):
        panel_figure(0)
