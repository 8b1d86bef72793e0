"""Infoway: the adapter (:mod:`.adapter`), its wire mappings (:mod:`.wire`) and its capability
table and kline date arithmetic (:mod:`.plan`), per docs/vendors/infoway.md."""

from etl.vendors.infoway.adapter import InfowayAdapter

__all__ = ["InfowayAdapter"]
