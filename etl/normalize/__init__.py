"""Normalise and validate: the stage between vendor adapters and the lake."""

from etl.normalize.validate import Issue, Validated, conform, validate, validate_klines

__all__ = ["Issue", "Validated", "conform", "validate", "validate_klines"]
