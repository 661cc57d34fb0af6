"""Helpers shared by the test modules (raw wire protocol, external client drivers)."""
