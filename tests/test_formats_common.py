import pytest

from tutorlib.formats.common import FormatError, atomic_dir, describe_folder, read_image, read_json, write_image


def test_atomic_dir_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "dataset"
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "half.txt").write_text("half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(target) as tmp:
        (tmp / "whole.txt").write_text("whole")
    assert (target / "whole.txt").read_text() == "whole"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        with atomic_dir(target):
            pass


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(FormatError, match="missing.json: file not found"):
        read_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(FormatError, match="bad.json: not valid JSON"):
        read_json(tmp_path / "bad.json")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(FormatError, match="bad.png: not a readable image"):
        read_image(tmp_path / "bad.png")


def test_image_round_trip_and_folder_description(tmp_path):
    import numpy as np

    image = (np.arange(3 * 4 * 5) % 256).astype(np.uint8).reshape(3, 4, 5)
    write_image(tmp_path / "images" / "a.png", image)
    assert np.array_equal(read_image(tmp_path / "images" / "a.png"), image.transpose(1, 2, 0))
    for k in range(5):
        (tmp_path / f"f{k}.txt").write_text("x" * k)
    text = describe_folder(tmp_path, per_folder=2)
    assert text.splitlines()[0] == f"{tmp_path.name}/"
    assert "  images/a.png" in text and "  f0.txt  (0 bytes)" in text and "... 3 more files" in text
    with pytest.raises(FormatError, match="not a folder"):
        describe_folder(tmp_path / "f0.txt")
