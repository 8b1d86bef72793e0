"""mdapi (脉动数据): the adapter (:mod:`.adapter`), its wire mappings (:mod:`.wire`) and what
it serves and when (:mod:`.window`), per docs/vendors/mdapi.md."""

from etl.vendors.mdapi.adapter import MdapiAdapter

__all__ = ["MdapiAdapter"]
