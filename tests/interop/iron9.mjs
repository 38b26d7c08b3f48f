// The real iron-session 9.0.1 (iron-webcrypto 2.0.0, cookie 2.0.2), installed as "iron-session-9"
// beside 8.0.4, driven in batches by the Python interop tests. Same protocol as iron.mjs:
//
// stdin:  {"ops": [op, ...]}     stdout: {"results": [result, ...]}   (one result per op, same order)
//
// ops (every session op takes "chunk": bool, v9's option to split a session over 4096 bytes into
// name.0 ... name.3; default false, as in v9):
//   {"op": "seal",   "data": any, "password": str | {id: str}, "ttl": seconds?}
//   {"op": "unseal", "seal": str, "password": ..., "ttl": seconds?}
//   {"op": "save",   "data": object, "password": ..., "cookieName": str, "ttl"?, "secure"?, "chunk"?,
//                    "cookie": str?}
//        -> every Set-Cookie header getIronSession(req, res, options).save() sends (a list),
//           for a request that carried the Cookie header "cookie" (none by default)
//   {"op": "destroy", "password": ..., "cookieName": str, "ttl"?, "secure"?, "chunk"?, "cookie": str?}
//        -> every Set-Cookie header session.destroy() sends
//   {"op": "load",   "cookie": str, "password": ..., "cookieName": str, "ttl"?, "chunk"?}
//        -> {"session": the session getIronSession reads from a request with that Cookie header,
//            "setCookie": what it sent (null)}
//   {"op": "parseCookie", "headers": [str, ...]}
//        -> the cookie package's parseCookie(header) for each header (how v9 reads cookies)
//
// result: {"ok": true, "value": any} or {"ok": false, "error": "<message of what was thrown>"}
import { parseCookie } from "cookie";
import { getIronSession, sealData, unsealData } from "iron-session-9";

const readStdin = async () => {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
};

const fakeReqRes = (cookieHeader) => {
  const headers = {};
  const req = { headers: cookieHeader ? { cookie: cookieHeader } : {} };
  const res = {
    headersSent: false,
    getHeader: (name) => headers[name.toLowerCase()],
    setHeader: (name, value) => {
      headers[name.toLowerCase()] = value;
    },
  };
  return { req, res, headers };
};

const sessionOptions = (op) => {
  const options = { password: op.password, cookieName: op.cookieName, chunk: Boolean(op.chunk) };
  if (op.ttl !== undefined) options.ttl = op.ttl;
  if (op.secure !== undefined) options.cookieOptions = { secure: op.secure };
  return options;
};

const asList = (value) => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

const run = async (op) => {
  switch (op.op) {
    case "seal":
      return sealData(op.data, { password: op.password, ...(op.ttl !== undefined && { ttl: op.ttl }) });
    case "unseal":
      return unsealData(op.seal, { password: op.password, ...(op.ttl !== undefined && { ttl: op.ttl }) });
    case "save": {
      const { req, res, headers } = fakeReqRes(op.cookie);
      const session = await getIronSession(req, res, sessionOptions(op));
      Object.assign(session, op.data);
      await session.save();
      return asList(headers["set-cookie"]);
    }
    case "destroy": {
      const { req, res, headers } = fakeReqRes(op.cookie);
      const session = await getIronSession(req, res, sessionOptions(op));
      session.destroy();
      return asList(headers["set-cookie"]);
    }
    case "load": {
      const { req, res, headers } = fakeReqRes(op.cookie);
      const session = await getIronSession(req, res, sessionOptions(op));
      return { session: { ...session }, setCookie: headers["set-cookie"] ?? null };
    }
    case "parseCookie":
      return op.headers.map((header) => ({ ...parseCookie(header) }));
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
