"""Helpers shared by the test modules."""
import pathlib
import unittest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# ../shared/data exists beside the repository in CI and developer sessions, not on a user's clone.
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def shared_data_path(*parts):
    """Path under ../shared/data, or skip the calling test when that folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        raise unittest.SkipTest(f"{path} is not available (../shared/data is only beside CI checkouts)")
    return path
