from hypothesis import HealthCheck, seed, settings
import schemathesis
from tests.test_contract import api_schema, world, call, SEED, CALLS  # noqa: F401

schema = schemathesis.pytest.from_fixture("api_schema").include(path_regex="hooks|inbox")


@schema.parametrize()
@seed(SEED)
@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_replies_contract_admin(case, world):
    call(case, world, "admin")


@schema.parametrize()
@seed(SEED)
@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_replies_contract_embassy(case, world):
    call(case, world, "embassy")


hook_schema = schemathesis.pytest.from_fixture("api_schema").include(path_regex="hooks")


@hook_schema.parametrize()
@seed(SEED)
@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_hook_with_the_secret(case, world, app):
    from schemathesis.checks import not_a_server_error, status_code_conformance, content_type_conformance
    headers = dict(case.headers or {})
    headers["X-Sagip-Hook-Secret"] = app.config["REGISTRY_SMS_HOOK_SECRET"]
    case.headers = headers
    case.query = {k: v for k, v in (case.query or {}).items() if k != "secret"}
    if isinstance(case.body, dict):
        case.body.pop("secret", None)
    response = case.call_and_validate(checks=[not_a_server_error, status_code_conformance, content_type_conformance])
    CALLS[(f"{case.method} {case.path}", response.status_code)] += 1
