import matplotlib
import pytest

from tutorlib.drawing.experiment import claim_held, plot_edit_curves, summarise, table_text

matplotlib.use("Agg")

RESULTS = {
    "plain": {0: {"word test mean": 0.60, "R@1": 0.5}, 1: {"word test mean": 0.64, "R@1": 0.7}},
    "edited": {0: {"word test mean": 0.70, "R@1": 0.55}, 1: {"word test mean": 0.72, "R@1": 0.65}},
}


def test_summary_is_mean_and_half_range():
    table = summarise(RESULTS)
    assert table["plain"]["word test mean"] == (pytest.approx(0.62), pytest.approx(0.02))
    assert table["edited"]["R@1"] == (pytest.approx(0.60), pytest.approx(0.05))
    text = table_text(table)
    assert "word test mean" in text and "+0.090" in text


def test_claim_needs_a_gain_larger_than_the_spread():
    table = summarise(RESULTS)
    # word test: gain 0.09 > spread 0.02; R@1: gain 0 <= spread 0.1
    assert claim_held(table, ["word test mean", "R@1"]) == {"word test mean": True, "R@1": False}


def test_edit_curve_figure():
    rows = {"n_units": [1, 4], "share": [0.1, 0.8], "changed_outside": [0.0, 0.01], "control_share": [0.0, 0.1],
            "control_changed_outside": [0.0, 0.01], "samples": 5}
    figure = plot_edit_curves({"color=red": rows}, "ablate")
    assert len(figure.axes) == 2 and "removed" in figure.axes[0].get_ylabel()


def _word_data():
    import torch
    from tutorlib.drawing.experiment import WordData
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).reshape(2, 3, 4, 4)
    return WordData([0, 1], images, ["a", "b"], images.flip(0), ["shape=cube", "color=red"], [2], images[:1],
                    ["c"], torch.tensor([[True, False]]), images[:1, None])


def test_word_data_round_trips_through_safetensors_and_json(tmp_path):
    import torch
    from tutorlib.drawing.experiment import WordData
    data = _word_data()
    data.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["word_data.json", "word_data.safetensors"]
    loaded = WordData.load(tmp_path)
    assert loaded.train_captions == data.train_captions and loaded.test_ids == data.test_ids
    assert torch.equal(loaded.test_presence, data.test_presence) and loaded.test_presence.dtype == torch.bool
    assert torch.equal(loaded.test_negatives, data.test_negatives)


class _Planted:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("name", ["word_data.pt", "word_data.safetensors"])
def test_planted_pickle_in_the_word_data_cache_never_runs(tmp_path, name):
    import torch
    from tutorlib.drawing.experiment import WordData
    marker = tmp_path / "ran"
    folder = tmp_path / "entry"
    folder.mkdir()
    torch.save({"x": _Planted(marker)}, folder / name)
    with pytest.raises(ValueError, match="delete that folder"):
        WordData.load(folder)
    assert not marker.exists()
