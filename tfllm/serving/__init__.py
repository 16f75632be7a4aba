"""Exports, model server and client speaking the TF Serving API."""
