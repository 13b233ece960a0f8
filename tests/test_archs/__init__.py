"""Tests of the torch-only networks (mirrors ``diffir_mm/archs``)."""
