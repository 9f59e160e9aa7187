"""torch.utils's names: `lazygrad.utils.data` (Dataset, TensorDataset, Subset, random_split,
DataLoader)."""
from lazygrad.utils import data  # noqa: F401
