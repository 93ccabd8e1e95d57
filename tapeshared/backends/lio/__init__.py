"""LIO (in-kernel target): configfs written directly."""
