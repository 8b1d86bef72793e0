"""StockTV: the adapter (:mod:`.adapter`), its wire mappings (:mod:`.wire`) and its request
planning (:mod:`.plan`), per docs/vendors/stocktv.md."""

from etl.vendors.stocktv.adapter import StockTVAdapter

__all__ = ["StockTVAdapter"]
