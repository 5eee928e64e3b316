// A webhook connector in JavaScript, built with jco / componentize-js.
//
// A delivery is authentic when its `x-signature` header is the hex
// HMAC-SHA256 of the body under the trigger's secret. Each authentic
// delivery becomes one event (deduplicated by its `x-delivery-id` header),
// and the trigger's key-value store counts the deliveries it accepted.

import { write } from "triggerhost:connector/log@0.2.0";
import { get, set } from "triggerhost:connector/kv@0.2.0";

const COUNT_KEY = "deliveries";

/** A connector error: thrown, it becomes the export's `err` result. */
function connectorError(code, message) {
  const error = new Error(message);
  error.payload = { code, message, retryable: false };
  return error;
}

function describe() {
  return {
    name: "js-hmac",
    displayName: "JavaScript HMAC",
    version: "0.1.0",
    description: "HMAC-SHA256 signed webhooks, in JavaScript.",
    capabilities: { outboundHosts: [], keyValue: true },
    auth: { tag: "none" },
    triggers: [
      {
        name: "signed",
        displayName: "Signed delivery",
        description: "A delivery signed with HMAC-SHA256 of its body.",
        strategy: "webhook",
        configSchema: JSON.stringify({ type: "object", properties: {}, additionalProperties: false }),
        sampleEvent: JSON.stringify({ hello: "world" }),
      },
    ],
  };
}

function onEnable(_ctx) {
  return { expiresAtMs: undefined, issuedSecrets: undefined };
}

// Nothing registered at a provider, so nothing expires.
function renew(_ctx) {
  return { expiresAtMs: undefined, issuedSecrets: undefined };
}

function onDisable(_ctx) {}

function verify(ctx, request) {
  if (ctx.secret === undefined || ctx.secret === null) {
    throw connectorError("invalid-config", "the trigger has no secret");
  }
  const signature = header(request, "x-signature");
  const expected = toHex(hmacSha256(new TextEncoder().encode(ctx.secret), request.body));
  if (signature !== undefined && constantTimeEqual(signature, expected)) {
    return { tag: "accept" };
  }
  write("warn", "rejected a delivery: bad or missing x-signature");
  return { tag: "reject", val: "bad signature" };
}

function run(_ctx, input) {
  if (input.tag !== "webhook") {
    return { events: [], response: undefined };
  }
  let payload;
  try {
    payload = JSON.parse(new TextDecoder().decode(input.val.body));
  } catch (e) {
    throw connectorError("bad-request", `the body is not JSON: ${e}`);
  }
  let count;
  try {
    const stored = get(COUNT_KEY);
    count = stored === undefined ? 1 : Number(new TextDecoder().decode(stored)) + 1;
    set(COUNT_KEY, new TextEncoder().encode(String(count)));
  } catch (e) {
    // The store is not granted (or full): say so rather than trap.
    throw connectorError("capability-denied", `kv: ${JSON.stringify(e.payload ?? String(e))}`);
  }
  write("info", `delivery ${count}`);
  return {
    events: [
      {
        dedupeKey: header(input.val, "x-delivery-id"),
        eventType: "js.signed",
        occurredAtMs: undefined,
        payload: JSON.stringify(payload),
      },
    ],
    response: undefined,
  };
}

/** The `plugin` interface of triggerhost:connector@0.2.0: every call the host makes. */
export const plugin = { describe, onEnable, renew, onDisable, verify, run };

function header(request, name) {
  const found = request.headers.find(([key]) => key.toLowerCase() === name);
  return found === undefined ? undefined : found[1];
}

function constantTimeEqual(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// SHA-256 and HMAC (RFC 2104), in plain JavaScript: the exports are
// synchronous, and WebCrypto's are not.
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

function sha256(message) {
  const bitLength = message.length * 8;
  const padded = new Uint8Array(Math.ceil((message.length + 9) / 64) * 64);
  padded.set(message);
  padded[message.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLength / 0x100000000));
  view.setUint32(padded.length - 4, bitLength >>> 0);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let offset = 0; offset < padded.length; offset += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(offset + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const digest = new Uint8Array(32);
  const out = new DataView(digest.buffer);
  h.forEach((word, i) => out.setUint32(i * 4, word));
  return digest;
}

function hmacSha256(key, message) {
  let block = key.length > 64 ? sha256(key) : key;
  const padded = new Uint8Array(64);
  padded.set(block);
  const inner = new Uint8Array(64 + message.length);
  const outer = new Uint8Array(64 + 32);
  for (let i = 0; i < 64; i++) {
    inner[i] = padded[i] ^ 0x36;
    outer[i] = padded[i] ^ 0x5c;
  }
  inner.set(message, 64);
  outer.set(sha256(inner), 64);
  return sha256(outer);
}
