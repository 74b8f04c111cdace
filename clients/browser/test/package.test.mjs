// The client as teams install it: `npm pack` makes the tarball, `npm install` puts it in
// a fresh project, Node imports it by its package name and `tsc --strict` checks a
// consumer against its types. Also the request shapes of the account calls, with fetch
// replaced: above all that a wrong current password is sent once, not retried.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const clientDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tsc = path.join(clientDir, 'node_modules/typescript/bin/tsc');
let work;
let consumer;

before(() => {
  work = mkdtempSync(path.join(tmpdir(), 'latchkey-package-'));
  consumer = path.join(work, 'consumer');
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: clientDir, encoding: 'utf8' }));
  const files = packed[0].files.map((file) => file.path).sort();
  assert.deepEqual(files, ['README.md', 'latchkey.d.ts', 'latchkey.js', 'package.json'], 'what the tarball holds');
  execFileSync('mkdir', ['-p', consumer]);
  writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(work, packed[0].filename)], { cwd: consumer, stdio: 'pipe' });
});

after(() => { if (work) rmSync(work, { recursive: true, force: true }); });

const importInstalled = () => import(path.join(consumer, 'node_modules/@latchkey/browser/latchkey.js'));

test('the installed package imports by its name and exports the client', () => {
  const script = `
    import { createLatchkey, readLink, LatchkeyError } from '@latchkey/browser';
    const client = createLatchkey({ api: 'https://auth.example.com/' });
    const methods = ['login', 'fetch', 'refresh', 'logout', 'changePassword', 'forgotPassword', 'resetPassword', 'signUp', 'verifyEmail',
      'completeLogin', 'setupLogin', 'enrollTotp', 'confirmTotp', 'removeTotp', 'amr', 'hasSecondFactor'];
    console.log(JSON.stringify({ missing: methods.filter((m) => typeof client[m] !== 'function'), link: typeof readLink, error: typeof LatchkeyError }));`;
  const out = JSON.parse(execFileSync('node', ['--input-type=module', '-e', script], { cwd: consumer, encoding: 'utf8' }));
  assert.deepEqual(out, { missing: [], link: 'function', error: 'function' });
});

function typecheck(source) {
  writeFileSync(path.join(consumer, 'app.ts'), source);
  const args = [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2022,dom', 'app.ts'];
  try {
    execFileSync('node', args, { cwd: consumer, encoding: 'utf8', stdio: 'pipe' });
    return '';
  } catch (error) {
    return `${error.stdout}${error.stderr}`;
  }
}

test('a strict TypeScript consumer type-checks against the installed types, and a wrong call does not', () => {
  const good = `
    import { createLatchkey, readLink, LatchkeyError, type LatchkeyLink, type LatchkeyTotpEnrolment } from '@latchkey/browser';
    const latchkey = createLatchkey({ api: 'https://auth.example.com' });
    async function run(): Promise<void> {
      const link: LatchkeyLink | null = readLink();
      if (link?.action === 'verify') await latchkey.verifyEmail(link.token);
      else if (link) await latchkey.resetPassword(link.token, 'a new passphrase');
      const { expiresAt }: { expiresAt: number } = await latchkey.changePassword('old one', 'new one');
      await latchkey.forgotPassword('ada@example.com');
      await latchkey.signUp('ada@example.com', 'a long passphrase');
      latchkey.addEventListener('token', (event) => { const from: 'login' | 'refresh' | 'password' | 'tab' = event.detail.from; void from; });
      const step = await latchkey.login('ada@example.com', 'a long passphrase');
      if ('mfaRequired' in step) {
        const setup: LatchkeyTotpEnrolment | null = step.enrollmentRequired ? await latchkey.setupLogin() : null;
        const done = await latchkey.completeLogin({ code: '123456' });
        const codes: string[] | undefined = done.recoveryCodes;
        void setup; void codes;
      }
      const enrolment: LatchkeyTotpEnrolment = await latchkey.enrollTotp();
      const recovery: string[] = await latchkey.confirmTotp('a long passphrase', '123456');
      await latchkey.removeTotp('a long passphrase', { recoveryCode: recovery[0] });
      const methods: string[] | null = latchkey.amr();
      const stepped: boolean = latchkey.hasSecondFactor();
      void enrolment.qrSvg; void methods; void stepped;
      void expiresAt;
    }
    run().catch((error: unknown) => { if (error instanceof LatchkeyError) console.log(error.code, error.status); });
  `;
  assert.equal(typecheck(good), '', 'the consumer should type-check');
  const wrong = `
    import { createLatchkey } from '@latchkey/browser';
    const latchkey = createLatchkey({ api: 'https://auth.example.com' });
    void latchkey.changePassword('only one argument');
  `;
  assert.match(typecheck(wrong), /TS2554/, 'tsc accepted a call the types forbid');
});

test('readLink takes a mailed link apart and clears it from the address bar', async () => {
  const { readLink } = await importInstalled();
  const replaced = [];
  const history = { state: { page: 1 }, replaceState: (...args) => replaced.push(args) };
  const link = readLink({ hash: '#action=invite&token=abc_DEF-123', pathname: '/account', search: '?x=1' }, history);
  assert.deepEqual(link, { action: 'invite', token: 'abc_DEF-123' });
  assert.deepEqual(replaced, [[{ page: 1 }, '', '/account?x=1']]);
  for (const hash of ['', '#', '#action=reset', '#token=abc', '#action=login&token=abc']) {
    assert.equal(readLink({ hash, pathname: '/', search: '' }, history), null, hash);
  }
  assert.equal(replaced.length, 1, 'a fragment that is not a link stays');
});

// A fetch that answers from `routes` (path -> [status, body]) and records the calls.
function fakeFetch(routes) {
  const calls = [];
  const fetch = async (url, init = {}) => {
    const { pathname } = new URL(url);
    calls.push({ path: pathname, method: init.method, headers: { ...init.headers }, body: init.body && JSON.parse(init.body), credentials: init.credentials });
    const next = routes[pathname].shift();
    return new Response(next[1] === null ? null : JSON.stringify(next[1]), { status: next[0], headers: { 'Content-Type': 'application/json' } });
  };
  return { fetch, calls };
}

test('the account calls send what the API documents; a wrong current password is sent once', async () => {
  const { createLatchkey } = await importInstalled();
  const tokens = (n) => ({ accessToken: `access-${n}`, expiresIn: 900, tokenType: 'Bearer' });
  const fake = fakeFetch({
    '/refresh-token': [[200, tokens(1)], [200, tokens(2)]],
    '/password': [
      [401, { error: 'invalid_credentials', message: 'The email or password is incorrect.' }],
      [401, { error: 'invalid_token', message: 'expired' }],
      [200, tokens(3)],
    ],
    '/password/forgot': [[202, { message: 'sent if it exists' }]],
    '/password/reset': [[400, { error: 'invalid_link', message: 'The link is invalid, expired or already used.' }]],
    '/signup': [[202, { message: 'check your mail' }]],
    '/email/verify': [[204, null]],
  });
  const original = globalThis.fetch;
  globalThis.fetch = fake.fetch;
  try {
    const latchkey = createLatchkey({ api: 'https://auth.example.com' });
    const wrong = await latchkey.changePassword('wrong', 'new passphrase').then(() => 'ok', (error) => error.code);
    assert.equal(wrong, 'invalid_credentials');
    assert.deepEqual(fake.calls.map((c) => c.path), ['/refresh-token', '/password'], 'a wrong password was retried');
    assert.equal(fake.calls[1].headers.Authorization, 'Bearer access-1');
    assert.deepEqual(fake.calls[1].body, { currentPassword: 'wrong', newPassword: 'new passphrase' });

    const from = [];
    latchkey.addEventListener('token', (event) => from.push(event.detail.from));
    await latchkey.changePassword('right', 'new passphrase');
    assert.deepEqual(fake.calls.slice(2).map((c) => c.path), ['/password', '/refresh-token', '/password'], 'an expired access token: one refresh, one retry');
    assert.equal(fake.calls[4].headers.Authorization, 'Bearer access-2');
    assert.deepEqual(from, ['refresh', 'password']);
    assert.ok(fake.calls.every((c) => c.credentials === 'include'), 'the change answer sets the cookie: credentials included');

    await latchkey.forgotPassword('ada@example.com');
    const reset = await latchkey.resetPassword('tok', 'new passphrase').then(() => 'ok', (error) => `${error.code} ${error.status}`);
    assert.equal(reset, 'invalid_link 400');
    await latchkey.signUp('cy@example.com', 'long passphrase');
    await latchkey.verifyEmail('tok2');
    assert.deepEqual(fake.calls.slice(5).map((c) => [c.path, c.method, c.body]), [
      ['/password/forgot', 'POST', { email: 'ada@example.com' }],
      ['/password/reset', 'POST', { token: 'tok', newPassword: 'new passphrase' }],
      ['/signup', 'POST', { email: 'cy@example.com', password: 'long passphrase' }],
      ['/email/verify', 'POST', { token: 'tok2' }],
    ]);
  } finally {
    globalThis.fetch = original;
  }
});

test('a login with a second factor keeps the mfaToken inside and sends it with the code', async () => {
  const { createLatchkey } = await importInstalled();
  const jwt = (amr) => `h.${Buffer.from(JSON.stringify({ sub: 'u', amr })).toString('base64url')}.s`;
  const fake = fakeFetch({
    '/login': [[200, { mfaRequired: true, mfaToken: 'opaque-mfa-token', mfaEnrollmentRequired: false, expiresIn: 300 }]],
    '/login/mfa': [
      [401, { error: 'invalid_code', message: 'The code is incorrect or was already used.' }],
      [200, { accessToken: jwt(['pwd', 'otp']), expiresIn: 900, tokenType: 'Bearer' }],
    ],
  });
  const original = globalThis.fetch;
  globalThis.fetch = fake.fetch;
  try {
    const latchkey = createLatchkey({ api: 'https://auth.example.com' });
    const step = await latchkey.login('ada@example.com', 'a long passphrase');
    assert.deepEqual(step, { mfaRequired: true, enrollmentRequired: false }, 'the token is not handed to the page');
    assert.equal(latchkey.accessTokenExpiresAt(), null, 'no session before the code');
    assert.equal(latchkey.amr(), null);
    const wrong = await latchkey.completeLogin({ code: '000000' }).then(() => 'ok', (error) => error.code);
    assert.equal(wrong, 'invalid_code');
    await latchkey.completeLogin({ code: '123456' });
    assert.deepEqual(fake.calls.slice(1).map((c) => c.body), [
      { mfaToken: 'opaque-mfa-token', code: '000000' },
      { mfaToken: 'opaque-mfa-token', code: '123456' },
    ], 'a wrong code leaves the login pending');
    assert.deepEqual(latchkey.amr(), ['pwd', 'otp']);
    assert.equal(latchkey.hasSecondFactor(), true);
    const again = await latchkey.completeLogin({ code: '123456' }).then(() => 'ok', (error) => error.code);
    assert.equal(again, 'no_pending_login', 'a finished login has no token left to send');
  } finally {
    globalThis.fetch = original;
  }
});
