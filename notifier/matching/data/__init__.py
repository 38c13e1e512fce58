"""Matching vocabulary shipped as package data (topics.toml, places.toml); no code."""
