"""Reserved data stays unread: official test splits are recognised by their folder names, so benches and training
can refuse them (DEVELOPERS.md, Data)."""

from pathlib import Path

import pytest

from facellm.faces.splits import official_test_split


@pytest.mark.parametrize(
    ("path", "reserved"),
    [
        ("data/ShanghaiTech/part_B/test_data", True),
        ("data/ShanghaiTech/part_B/test_data/images", True),  # the folder or its parent
        ("rafdb/images/test", True),
        ("fer2013/images/PrivateTest", True),
        ("fer2013/images/PublicTest", False),
        ("../shared/data/shanghaitech_b", False),
        ("data/ShanghaiTech/part_B/train_data", False),
        ("mall_test", True),
        ("contest_photos", False),
        ("/ci_test/checkout/shared/data/shanghaitech_b", False),
    ],
)
def test_official_test_splits_are_recognised_by_folder(path, reserved):
    assert official_test_split(Path(path)) is reserved


def test_crowd_training_refuses_a_test_split(tmp_path):
    from facellm.errors import InputError
    from facellm.faces.crowd_training import labelled_items

    folder = tmp_path / "part_B" / "test_data"
    folder.mkdir(parents=True)
    (folder / "labels.csv").write_text("path,count\n")
    (folder / "points.csv").write_text("path,x,y\n")
    with pytest.raises(InputError, match="official test split"):
        labelled_items(folder)
