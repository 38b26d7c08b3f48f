// Seal and unseal throughput of the real iron-session 8.0.4, for bench/sealing.py.
//
// stdin:  {"password": str | {id: str}, "ttl": seconds, "seconds": per measurement, "payloads": {name: data}}
// stdout: {"<name>": {"seal_ops": n, "unseal_ops": n, "seal_ops_c64": n, "unseal_ops_c64": n,
//                     "seal_len": n}}   (operations per second)
//
// The plain figures run operations one after another (each awaited), the way one request seals or
// unseals its cookie; that is what the Python side measures. The _c64 figures keep 64 operations in
// flight, which lets WebCrypto use its thread pool (several cores): Node's best case.
// A short warm-up precedes each measurement.
import { sealData, unsealData } from "iron-session";

const readStdin = async () => {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
};

const measure = async (seconds, fn, concurrency = 1) => {
  const step = () => (concurrency === 1 ? fn() : Promise.all(Array.from({ length: concurrency }, fn)));
  const warmUntil = performance.now() + Math.min(500, seconds * 250);
  while (performance.now() < warmUntil) await step();
  let n = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 50; i += concurrency) {
      await step();
      n += concurrency;
    }
    now = performance.now();
  }
  return n / ((now - start) / 1000);
};

const { password, ttl, seconds, payloads } = JSON.parse(await readStdin());
const out = {};
for (const [name, data] of Object.entries(payloads)) {
  const options = { password, ttl };
  const seal = await sealData(data, options);
  const check = await unsealData(seal, options);
  if (JSON.stringify(check) !== JSON.stringify(data)) throw new Error(`round trip failed for ${name}`);
  const sealOps = await measure(seconds, () => sealData(data, options));
  const unsealOps = await measure(seconds, () => unsealData(seal, options));
  const sealOpsC64 = await measure(seconds, () => sealData(data, options), 64);
  const unsealOpsC64 = await measure(seconds, () => unsealData(seal, options), 64);
  out[name] = {
    seal_ops: sealOps,
    unseal_ops: unsealOps,
    seal_ops_c64: sealOpsC64,
    unseal_ops_c64: unsealOpsC64,
    seal_len: seal.length,
  };
}
process.stdout.write(JSON.stringify(out));
