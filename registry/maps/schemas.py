"""The map's query and answer (``GET /api/v1/map/nationals``)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from registry.maps.grid import CERTAINTIES, MAX_CELLS, MAX_ZOOM
from registry.nationals.models import NATIONAL_STATUSES, VULNERABILITIES
from registry.schemas import PurposeQuery


class MapQuery(PurposeQuery):
    bbox = fields.String(required=True, validate=validate.Length(max=200), metadata={
        "description": "west,south,east,north in degrees (WGS 84); west > east crosses the antimeridian. "
                       f"At most {MAX_CELLS} cells of the zoom's grid.", "example": "54.9,24.9,55.6,25.4"})
    zoom = fields.Integer(required=True, validate=validate.Range(min=0, max=MAX_ZOOM),
                          metadata={"description": "the map's zoom (Web Mercator, 256 px tiles)", "example": 10})
    status = fields.String(validate=validate.OneOf(NATIONAL_STATUSES))
    vulnerability = fields.String(validate=validate.OneOf(VULNERABILITIES),
                                  metadata={"description": "not for roles that do not see vulnerabilities"})
    certainty = fields.String(validate=validate.OneOf(CERTAINTIES), metadata={
        "description": "high: a GPS fix within 1 km; country_only: only the country is known; possible: the rest"})


class Cluster(Schema):
    lat = fields.Float(required=True)
    lon = fields.Float(required=True)
    count = fields.Integer(required=True, metadata={"description": "nationals in the cell"})


class MapPoint(Schema):
    id = fields.UUID(required=True, metadata={"description": "the national (GET /nationals/{id})"})
    lat = fields.Float(required=True)
    lon = fields.Float(required=True)


class MapView(Schema):
    """The view's cells: clusters, and from zoom 12 a cell holding one person as a point with its id."""

    zoom = fields.Integer(required=True)
    cell_deg = fields.Float(required=True, metadata={"description": "the side of a cell in degrees (90 / 2^zoom)"})
    total = fields.Integer(required=True, metadata={
        "description": "nationals in the view's cells (the sum of the clusters' counts and the points)"})
    clusters = fields.List(fields.Nested(Cluster), required=True,
                           metadata={"description": "one per populated cell; position: the mean of its people"})
    points = fields.List(fields.Nested(MapPoint), required=True)
