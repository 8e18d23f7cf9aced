"""gridsvc: 网格化管理 — cells, buildings, households and incidents of a Chinese street office."""

__version__ = "0.1.0"
