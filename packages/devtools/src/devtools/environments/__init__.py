"""Environments built from the pieces: scenarios, development (production lives in production/)."""
