"""Make the repository root importable (`import common`, `import dcgan`); shared fixtures.
The suite never touches the network: downloads of pretrained files are off, here and in every
script a test starts (common.pretrained), and the download function itself refuses."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ["GAN_PAPERS_NO_DOWNLOAD"] = "1"  # inherited by the scripts the tests run


@pytest.fixture(autouse=True)
def no_network_downloads(monkeypatch):
    """A test that allows downloads must also replace common.pretrained.DOWNLOAD."""
    import common.pretrained

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to download a file")

    monkeypatch.setattr(common.pretrained, "DOWNLOAD", refuse)


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny networks, and for the scripts it starts
    (OMP_NUM_THREADS=1): they gain nothing from a second thread, which on a busy 2-core machine
    only spins. Restored afterwards. Use with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        yield
    torch.set_num_threads(threads)
