"""A webhook connector written in Python and built with componentize-py:
the heavy kind of component (an interpreter inside), for the benchmarks and
for the precompiled cache. A delivery is authentic when its
`x-signature` header is the hex HMAC-SHA256 of the body under the
trigger's secret; each authentic delivery becomes one event."""

import hashlib
import hmac
import json
# hmac imports it lazily; componentize-py bundles only what the build imports.
import warnings  # noqa: F401

import wit_world
from componentize_py_types import Err
from wit_world.imports import types

CONFIG_SCHEMA = json.dumps({"type": "object", "properties": {}, "additionalProperties": False})


class WitWorld(wit_world.WitWorld):
    def describe(self) -> types.Manifest:
        trigger = types.TriggerDefinition(
            name="signed",
            display_name="Signed delivery",
            description="A delivery signed with HMAC-SHA256 of its body.",
            strategy=types.Strategy.WEBHOOK,
            config_schema=CONFIG_SCHEMA,
            sample_event=json.dumps({"hello": "world"}),
        )
        return types.Manifest(
            name="python-hmac",
            display_name="Python HMAC",
            version="0.1.0",
            description="HMAC-SHA256 signed webhooks, in Python.",
            capabilities=types.CapabilityRequest(outbound_hosts=[], key_value=False),
            triggers=[trigger],
        )

    def on_enable(self, ctx: types.TriggerContext) -> types.EnableInfo:
        return types.EnableInfo(expires_at_ms=None)

    def on_disable(self, ctx: types.TriggerContext) -> None:
        return None

    def verify(self, ctx: types.TriggerContext, request: types.WebhookRequest) -> types.Verdict:
        if ctx.secret is None:
            raise Err(types.ConnectorError(code=types.ErrorCode.INVALID_CONFIG, message="no secret", retryable=False))
        signature = next((value for name, value in request.headers if name.lower() == "x-signature"), None)
        expected = hmac.new(ctx.secret.encode(), bytes(request.body), hashlib.sha256).hexdigest()
        if signature is not None and hmac.compare_digest(signature, expected):
            return types.Verdict_Accept()
        return types.Verdict_Reject("bad signature")

    def run(self, ctx: types.TriggerContext, input: types.RunInput) -> types.RunOutput:
        if not isinstance(input, types.RunInput_Webhook):
            return types.RunOutput(events=[], response=None)
        body = bytes(input.value.body).decode()
        payload = json.loads(body)
        event = types.Event(dedupe_key=None, event_type="python.signed", occurred_at_ms=None, payload=json.dumps(payload))
        return types.RunOutput(events=[event], response=None)
