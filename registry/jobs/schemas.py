from marshmallow import Schema, fields


class JobOut(Schema):
    id = fields.UUID()
    kind = fields.String()
    status = fields.String()
    progress = fields.Float()
    result = fields.Dict(allow_none=True)
    error = fields.Dict(allow_none=True)
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class JobAccepted(Schema):
    job_id = fields.UUID()
    status = fields.String()
