// The standard Node verifiers on Latchkey's tokens, unmodified: aws-jwt-verify
// (JwtVerifier with the JWKS cached, as after a fetch of its jwksUri) and jose
// (jwtVerify with createLocalJWKSet). Called by tests/tests/interop.rs as
//   PEERS_NODE_MODULES=<node_modules> node tests/interop/verify.mjs DIR
// where DIR holds jwks.json, params.json ({issuer, audience}) and tokens.json
// ({name: token}); node_modules comes from `npm ci` on scripts/peers-package*.json.
// Prints {"aws-jwt-verify": {name: "ok" | error}, "jose": {...}, "versions": {...}}.

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dir] = process.argv.slice(2);
const nodeModules = process.env.PEERS_NODE_MODULES;

async function load(name) {
  const pkgDir = join(resolve(nodeModules), name);
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const dot = pkg.exports?.['.'] ?? pkg.module ?? pkg.main;
  const entry = typeof dot === 'string' ? dot : dot.import ?? dot.default;
  return { version: pkg.version, mod: await import(pathToFileURL(join(pkgDir, entry)).href) };
}

const read = (file) => JSON.parse(readFileSync(join(dir, file), 'utf8'));
const jwks = read('jwks.json');
const { issuer, audience } = read('params.json');
const tokens = read('tokens.json');

const aws = await load('aws-jwt-verify');
const jose = await load('jose');
const verifier = aws.mod.JwtVerifier.create({ issuer, audience, jwksUri: 'https://issuer.invalid/.well-known/jwks.json' });
verifier.cacheJwks(jwks);
const keys = jose.mod.createLocalJWKSet(jwks);

const outcome = async (verify) => {
  try {
    await verify();
    return 'ok';
  } catch (err) {
    return `${err.constructor.name}: ${err.message}`;
  }
};

const result = { 'aws-jwt-verify': {}, jose: {}, versions: { 'aws-jwt-verify': aws.version, jose: jose.version } };
for (const [name, token] of Object.entries(tokens)) {
  result['aws-jwt-verify'][name] = await outcome(() => verifier.verifySync(token));
  result.jose[name] = await outcome(() =>
    jose.mod.jwtVerify(token, keys, { issuer, audience, typ: 'at+jwt', algorithms: ['ES256'] }),
  );
}
console.log(JSON.stringify(result));
