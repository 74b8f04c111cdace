// Peer benchmark, Node half: times verification of one ES256 access token by
// two Node JWT libraries, aws-jwt-verify (JwtVerifier.verifySync, JWKS cached)
// and jose (jwtVerify with createLocalJWKSet), for comparison with Latchkey's
// own verifier.
//
// Called by scripts/bench-peers as
//   PEERS_NODE_MODULES=/path/to/node_modules node scripts/bench_peers.mjs DIR
// where DIR holds token.jwt, jwks.json and params.json ({issuer, audience}) and
// the node_modules was installed with `npm ci` from scripts/peers-package.json
// and scripts/peers-package-lock.json.
//
// Both libraries must first accept the token and reject it with one signature
// character changed; otherwise it exits non-zero. Then, per library: ~1 s of
// warm-up (which also sizes a batch to take ~50 ms), 30 timed batches, and the
// median time per verification. Prints one JSON line:
//   {"aws-jwt-verify": {"version", "median_us"}, "jose": {...}, "node": "vX.Y.Z"}

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const WARMUP_NS = 1_000_000_000n;
const BATCH_NS = 50_000_000;
const SAMPLES = 30;

function fail(message) {
  console.error(`bench_peers: ${message}`);
  process.exit(1);
}

const [dir] = process.argv.slice(2);
const nodeModules = process.env.PEERS_NODE_MODULES;
if (!dir || !nodeModules) fail('usage: PEERS_NODE_MODULES=<node_modules> node bench_peers.mjs DIR');

// Loads a package from PEERS_NODE_MODULES only (no search up the tree), by its
// ESM entry point; returns its version and module namespace.
async function load(name) {
  const pkgDir = join(resolve(nodeModules), name);
  let pkg;
  try {
    pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  } catch (err) {
    fail(`cannot read ${name} from ${pkgDir}: ${err.message}`);
  }
  const dot = pkg.exports?.['.'] ?? pkg.module ?? pkg.main;
  const entry = typeof dot === 'string' ? dot : dot.import ?? dot.default;
  return { version: pkg.version, mod: await import(pathToFileURL(join(pkgDir, entry)).href) };
}

const read = (file) => readFileSync(join(dir, file), 'utf8');
const token = read('token.jwt').trim();
const jwks = JSON.parse(read('jwks.json'));
const { issuer, audience } = JSON.parse(read('params.json'));

// The same token with its signature's first character changed (not the last:
// that one carries padding bits a decoder may ignore).
const sig = token.lastIndexOf('.') + 1;
const tampered = token.slice(0, sig) + (token[sig] === 'A' ? 'B' : 'A') + token.slice(sig + 1);

const aws = await load('aws-jwt-verify');
const jose = await load('jose');

const verifier = aws.mod.JwtVerifier.create({ issuer, audience, jwksUri: 'https://issuer.invalid/.well-known/jwks.json' });
verifier.cacheJwks(jwks);
const keys = jose.mod.createLocalJWKSet(jwks);
const joseOptions = { issuer, audience, typ: 'at+jwt', algorithms: ['ES256'] };

const peers = {
  'aws-jwt-verify': {
    ...aws,
    verify: async (jwt) => verifier.verifySync(jwt),
    badSignature: (err) => err.constructor.name === 'JwtInvalidSignatureError',
    batch: (n) => {
      for (let i = 0; i < n; i++) verifier.verifySync(token);
    },
  },
  jose: {
    ...jose,
    verify: async (jwt) => (await jose.mod.jwtVerify(jwt, keys, joseOptions)).payload,
    badSignature: (err) => err.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    batch: async (n) => {
      for (let i = 0; i < n; i++) await jose.mod.jwtVerify(token, keys, joseOptions);
    },
  },
};

// Sanity: each accepts the token and rejects the tampered copy for its signature.
const expectedSub = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).sub;
for (const [name, peer] of Object.entries(peers)) {
  let payload;
  try {
    payload = await peer.verify(token);
  } catch (err) {
    fail(`${name} rejected the valid token: ${err.message}`);
  }
  if (payload?.sub !== expectedSub) fail(`${name} accepted the token but returned sub ${payload?.sub}`);
  try {
    await peer.verify(tampered);
  } catch (err) {
    if (!peer.badSignature(err)) fail(`${name} rejected the tampered token, but not for its signature: ${err.message}`);
    continue;
  }
  fail(`${name} accepted a token with a changed signature`);
}

// Median time per verification in µs: warm up ~1 s counting iterations, size a
// batch from that to take ~50 ms, then time SAMPLES batches.
async function measure(batch) {
  let iterations = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0n;
  while (elapsed < WARMUP_NS) {
    await batch(1);
    iterations++;
    elapsed = process.hrtime.bigint() - start;
  }
  const n = Math.max(1, Math.round((BATCH_NS * iterations) / Number(elapsed)));
  const perIteration = [];
  for (let s = 0; s < SAMPLES; s++) {
    const t0 = process.hrtime.bigint();
    await batch(n);
    perIteration.push(Number(process.hrtime.bigint() - t0) / n / 1000);
  }
  perIteration.sort((a, b) => a - b);
  const mid = SAMPLES >> 1;
  const median = SAMPLES % 2 ? perIteration[mid] : (perIteration[mid - 1] + perIteration[mid]) / 2;
  return Math.round(median * 100) / 100;
}

const result = {};
for (const [name, peer] of Object.entries(peers)) {
  result[name] = { version: peer.version, median_us: await measure(peer.batch) };
}
result.node = process.version;
console.log(JSON.stringify(result));
