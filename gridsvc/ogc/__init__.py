"""OGC API – Features (Parts 1 and 2) under /ogc: an adapter over the existing repositories
and the permission matrix; it owns no rules of its own.

Hooks for other OGC parts (e.g. Tiles) live in :mod:`gridsvc.ogc.links`: add their conformance
classes and landing-page links there.
"""
