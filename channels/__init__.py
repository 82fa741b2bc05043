"""Channels: one package per medium, each translating between its medium and the engine's survey sessions."""
