"""Pydantic models of the API: they validate requests, shape responses and are the OpenAPI document's schemas."""
