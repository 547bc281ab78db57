"""Shared fixtures. `one_thread`: torch on one thread for a test module (the 2-core CI machine
runs faster that way when several tokenizers/models are built); use it with
`pytestmark = pytest.mark.usefixtures("one_thread")`."""
import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
