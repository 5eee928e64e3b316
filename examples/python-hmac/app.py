"""A webhook connector in Python, built with componentize-py.

A delivery is authentic when its `x-signature` header is the hex
HMAC-SHA256 of the body under the trigger's secret. Each authentic delivery
becomes one event (its `x-delivery-id` header, if any, is the dedupe key),
and the trigger's key-value store counts the deliveries it accepted.
"""

import hashlib
import hmac
import json
# hmac imports `warnings` lazily; componentize-py bundles only the modules
# the build imports, so without this line the first delivery traps.
import warnings  # noqa: F401

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import kv, log, types

CONFIG_SCHEMA = json.dumps({"type": "object", "properties": {}, "additionalProperties": False})
COUNT_KEY = "deliveries"


def error(code: types.ErrorCode, message: str) -> Err:
    return Err(types.ConnectorError(code=code, message=message, retryable=False))


class Plugin(exports.Plugin):
    """The `plugin` interface of triggerhost:connector@0.2.0: every call the host makes."""

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
            capabilities=types.CapabilityRequest(outbound_hosts=[], key_value=True),
            auth=types.Auth_None_(),
            triggers=[trigger],
        )

    def on_enable(self, ctx: types.TriggerContext) -> types.EnableInfo:
        return types.EnableInfo(expires_at_ms=None, issued_secrets=None)

    def renew(self, ctx: types.TriggerContext) -> types.EnableInfo:
        # Nothing registered at a provider, so nothing expires.
        return types.EnableInfo(expires_at_ms=None, issued_secrets=None)

    def on_disable(self, ctx: types.TriggerContext) -> None:
        return None

    def verify(self, ctx: types.TriggerContext, request: types.WebhookRequest) -> types.Verdict:
        if ctx.secret is None:
            raise error(types.ErrorCode.INVALID_CONFIG, "the trigger has no secret")
        signature = header(request, "x-signature")
        expected = hmac.new(ctx.secret.encode(), bytes(request.body), hashlib.sha256).hexdigest()
        if signature is not None and hmac.compare_digest(signature, expected):
            return types.Verdict_Accept()
        log.write(log.Level.WARN, "rejected a delivery: bad or missing x-signature")
        return types.Verdict_Reject("bad signature")

    def run(self, ctx: types.TriggerContext, input: types.RunInput) -> types.RunOutput:
        if not isinstance(input, types.RunInput_Webhook):
            return types.RunOutput(events=[], response=None)
        try:
            payload = json.loads(bytes(input.value.body))
        except ValueError as e:
            raise error(types.ErrorCode.BAD_REQUEST, f"the body is not JSON: {e}")
        try:
            stored = kv.get(COUNT_KEY)
            count = int(bytes(stored)) + 1 if stored is not None else 1
            kv.set(COUNT_KEY, str(count).encode())
        except Err as e:
            # The store is not granted (or full): say so rather than trap.
            raise error(types.ErrorCode.CAPABILITY_DENIED, f"kv: {e.value}")
        log.write(log.Level.INFO, f"delivery {count}")
        event = types.Event(
            dedupe_key=header(input.value, "x-delivery-id"),
            event_type="python.signed",
            occurred_at_ms=None,
            payload=json.dumps(payload),
        )
        return types.RunOutput(events=[event], response=None)


def header(request: types.WebhookRequest, name: str):
    return next((value for key, value in request.headers if key.lower() == name), None)
