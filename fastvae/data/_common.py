"""Names shared by the modules of ``fastvae.data``: the data sets and their splits."""

DATASETS = ("shapes", "binarized-mnist", "mnist", "synthetic-counts")
GENERATED = ("shapes", "synthetic-counts")  # generated from a seed: no files, nothing to download
SPLITS = ("train", "valid", "test")


def check_name(name):
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")


def is_generated(data):
    """Whether ``data`` names a built-in data set generated from a seed (no files)."""
    return data in GENERATED


def is_builtin(data):
    """Whether ``data`` (``--data``) names a built-in data set rather than a file or folder."""
    return data in DATASETS
