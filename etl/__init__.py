"""Market-data warehouse: vendor adapters -> normalise and validate -> Parquet lake -> catalog."""

__version__ = "0.1.0"
