"""AmazingData: the adapter (:mod:`.adapter`), its wire mappings (:mod:`.wire`) and its
request planning (:mod:`.plan`), per docs/vendors/amazingdata.md."""

from etl.vendors.amazingdata.adapter import AmazingDataAdapter

__all__ = ["AmazingDataAdapter"]
