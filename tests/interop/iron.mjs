// The real iron-session 8.0.4 (iron-webcrypto 1.2.1), driven in batches by the Python interop tests.
//
// stdin:  {"ops": [op, ...]}     stdout: {"results": [result, ...]}   (one result per op, same order)
//
// ops:
//   {"op": "seal",   "data": any, "password": str | {id: str}, "ttl": seconds?, "nowOffsetMs": ms?}
//   {"op": "unseal", "seal": str, "password": str | {id: str}, "ttl": seconds?, "nowOffsetMs": ms?}
//   {"op": "save",   "data": object, "password": ..., "cookieName": str, "ttl": seconds?, "secure": bool?}
//        -> the Set-Cookie header getIronSession(req, res, options).save() sends
//   {"op": "destroy", "password": ..., "cookieName": str, "ttl": seconds?, "secure": bool?}
//        -> the Set-Cookie header session.destroy() sends
//   {"op": "ironUnseal", "seal": str, "password": str | {id: str}}
//        -> iron-webcrypto's own unseal (under iron-session's "~" handling), so a refusal carries
//           iron's message ("Expired seal", "Bad hmac value", ...) instead of iron-session's {}
//   {"op": "load",   "cookie": str, "password": ..., "cookieName": str}
//        -> the session getIronSession reads from a request carrying that Cookie header
//
// result: {"ok": true, "value": any} or {"ok": false, "error": "<message of what iron-session threw>"}
//
// nowOffsetMs shifts Date.now() for that one operation (iron-session's sealData has no clock option),
// which is how the tests make an already expired seal without sleeping. Ops run one after another,
// so the shift never leaks into another op.
import { getIronSession, sealData, unsealData } from "iron-session";
import { defaults, unseal } from "iron-webcrypto";
import * as crypto from "uncrypto";

const readStdin = async () => {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
};

const withClockOffset = async (offsetMs, fn) => {
  if (!offsetMs) return fn();
  const realNow = Date.now;
  Date.now = () => realNow() + offsetMs;
  try {
    return await fn();
  } finally {
    Date.now = realNow;
  }
};

const fakeReqRes = (cookieHeader) => {
  const headers = {};
  const req = { headers: cookieHeader ? { cookie: cookieHeader } : {} };
  const res = {
    getHeader: (name) => headers[name.toLowerCase()],
    setHeader: (name, value) => {
      headers[name.toLowerCase()] = value;
    },
  };
  return { req, res, headers };
};

const sessionOptions = (op) => {
  const options = { password: op.password, cookieName: op.cookieName };
  if (op.ttl !== undefined) options.ttl = op.ttl;
  if (op.secure !== undefined) options.cookieOptions = { secure: op.secure };
  return options;
};

const run = async (op) => {
  switch (op.op) {
    case "seal":
      return withClockOffset(op.nowOffsetMs, () =>
        sealData(op.data, { password: op.password, ...(op.ttl !== undefined && { ttl: op.ttl }) }),
      );
    case "unseal":
      return withClockOffset(op.nowOffsetMs, () =>
        unsealData(op.seal, { password: op.password, ...(op.ttl !== undefined && { ttl: op.ttl }) }),
      );
    case "ironUnseal": {
      const passwords = typeof op.password === "string" ? { 1: op.password } : op.password;
      return unseal(crypto, op.seal.split("~")[0], passwords, { ...defaults });
    }
    case "save": {
      const { req, res, headers } = fakeReqRes();
      const session = await getIronSession(req, res, sessionOptions(op));
      Object.assign(session, op.data);
      await session.save();
      return headers["set-cookie"];
    }
    case "destroy": {
      const { req, res, headers } = fakeReqRes();
      const session = await getIronSession(req, res, sessionOptions(op));
      session.destroy();
      return headers["set-cookie"];
    }
    case "load": {
      const { req, res, headers } = fakeReqRes(op.cookie);
      const session = await getIronSession(req, res, sessionOptions(op));
      return { session: { ...session }, setCookie: headers["set-cookie"] ?? null };
    }
    default:
      throw new Error(`unknown op ${op.op}`);
  }
};

const request = JSON.parse(await readStdin());
const results = [];
for (const op of request.ops) {
  try {
    const value = await run(op);
    results.push({ ok: true, value: value === undefined ? null : value });
  } catch (error) {
    results.push({ ok: false, error: String(error && error.message ? error.message : error) });
  }
}
process.stdout.write(JSON.stringify({ results }));
