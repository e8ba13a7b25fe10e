"""Architecture descriptions (JSON), the Keras builder, prototypes, and exact MAC/parameter counts."""
from toolkit.arch.builder import CONV_ROLES, build_model
from toolkit.arch.counting import count_macs, count_params
from toolkit.arch.prototypes import PROTOTYPES, get_prototype
from toolkit.arch.spec import BLOCK_KINDS, ArchSpec, BlockSpec

__all__ = ["ArchSpec", "BLOCK_KINDS", "BlockSpec", "CONV_ROLES", "PROTOTYPES", "build_model", "count_macs",
           "count_params", "get_prototype"]
