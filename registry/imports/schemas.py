"""The upload of an import file."""
from __future__ import annotations

from flask_smorest.fields import Upload

from registry.schemas import StrictSchema


class UploadIn(StrictSchema):
    file = Upload(required=True, metadata={"description": "a CSV (UTF-8, a header row) or an XLSX (first sheet)"})
