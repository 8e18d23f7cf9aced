"""Queries: SQLAlchemy Core/ORM at the edge; geometry becomes shapely or GeoJSON only here."""
