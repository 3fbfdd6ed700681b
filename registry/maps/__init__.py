"""The map of nationals: clusters per view (bounding box and zoom) counted in PostGIS (SPEC §9)."""
