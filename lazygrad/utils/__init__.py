"""torch.utils's names: `lazygrad.utils.data` (Dataset, TensorDataset, Subset, random_split,
DataLoader)."""
from . import data  # noqa: F401
