"""The HTTP side of the service: the API's one door (boundary), parsing, problems and the OpenAPI document."""
