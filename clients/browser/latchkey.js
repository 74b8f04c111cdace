// Latchkey browser client, for refresh-cookie delivery (docs/browser.md).
// The access token lives only in this closure: not in storage, where any script of the
// origin could read it after the page is gone. The refresh token is an HttpOnly cookie
// scoped to /refresh-token; script never sees it, so this file never reads cookies.

export class LatchkeyError extends Error {
  constructor(code, status, message = code) {
    super(message);
    this.name = 'LatchkeyError';
    this.code = code; // the API's error code, or 'network'
    this.status = status; // the HTTP status, 0 when there was no answer
  }
}

// The action and token of a link Latchkey mailed (`<page>#action=reset&token=...`), or
// null. The token is in the fragment, which browsers never send to a server; this also
// removes it from the address bar and the history entry, so it is not left on screen or
// in a bookmark.
export function readLink(where = globalThis.location, history = globalThis.history) {
  const fragment = new URLSearchParams(String(where?.hash ?? '').replace(/^#/, ''));
  const action = fragment.get('action');
  const token = fragment.get('token');
  if (!['reset', 'invite', 'verify'].includes(action) || !token) return null;
  history?.replaceState?.(history.state, '', `${where.pathname}${where.search}`);
  return { action, token };
}

export function createLatchkey({ api, csrfHeader = 'X-Latchkey-CSRF', channel = 'latchkey' } = {}) {
  if (!api) throw new TypeError('createLatchkey needs { api }: the API origin, e.g. https://auth.example.com');
  const base = String(api).replace(/\/+$/, '');
  const events = new EventTarget();
  const lockName = `${channel}-refresh`;
  const bc = typeof BroadcastChannel === 'function' ? new BroadcastChannel(channel) : null;
  // Node (server rendering, tests) keeps a process alive while a channel is open; browsers have no unref.
  bc?.unref?.();
  let accessToken = null;
  let expiresAt = null;
  // Bumped whenever a token arrives or the session ends, here or in another tab: a
  // refresh that finds it moved since it was asked for has its answer already.
  let epoch = 0;
  let inflight = null; // one refresh per tab; concurrent callers share it
  let waiters = []; // resolved by the next outcome broadcast (fallback and lock hand-over)
  let claim = null; // the fallback lock's state while this tab competes or refreshes
  let rivals = []; // fallback: claims heard since the last outcome, as [id, time]
  let mfaToken = null; // a login's second step: kept here, never handed to the page

  function adopt(token, expiry, from) {
    accessToken = token;
    expiresAt = expiry;
    epoch += 1;
    events.dispatchEvent(new CustomEvent('token', { detail: { expiresAt: expiry, from } }));
  }

  function end(reason, tell) {
    accessToken = null;
    expiresAt = null;
    epoch += 1;
    if (tell) post({ type: 'ended' });
    events.dispatchEvent(new CustomEvent('sessionend', { detail: { reason } }));
  }

  function post(message) {
    try { bc?.postMessage(message); } catch { /* channel closed: the other tabs are gone too */ }
  }

  // Resolves at the next outcome another tab broadcasts, or after ms, whichever first.
  function news(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      waiters.push(() => { clearTimeout(timer); resolve(); });
    });
  }

  if (bc) {
    bc.onmessage = ({ data }) => {
      if (!data || typeof data !== 'object') return;
      if (data.type === 'claim') {
        // Fallback lock: while we refresh, we answer every claim with -1, which beats all
        // ids. Otherwise we remember it, since a rival may have claimed a moment before us.
        if (claim?.holding) post({ type: 'claim', id: -1 });
        else rivals.push([data.id, Date.now()]);
        if (claim && !claim.holding) claim.lowest = Math.min(claim.lowest, data.id);
        return;
      }
      if (data.type === 'token' && typeof data.accessToken === 'string') adopt(data.accessToken, data.expiresAt, 'tab');
      else if (data.type === 'ended') end('remote', false);
      else if (data.type !== 'failed') return;
      rivals = []; // an outcome: whoever claimed has finished
      const ready = waiters;
      waiters = [];
      ready.forEach((resolve) => resolve());
    };
  }

  async function call(path, init) {
    try {
      return await fetch(`${base}${path}`, { credentials: 'include', cache: 'no-store', ...init });
    } catch (error) {
      throw new LatchkeyError('network', 0, `${path}: ${error.message}`);
    }
  }

  async function errorOf(response) {
    const body = await response.json().catch(() => ({}));
    return new LatchkeyError(body.error || `http_${response.status}`, response.status, body.message);
  }

  // The one place that spends the cookie. Runs under the cross-tab lock.
  async function rotate(asked, waitMs) {
    // The lock's previous holder posts its outcome before releasing, but the message and
    // the lock grant travel separately: give a contended hand-over a moment to land.
    if (waitMs && epoch === asked) await news(waitMs);
    if (epoch !== asked) {
      if (accessToken) return accessToken;
      throw new LatchkeyError('session_ended', 401, 'the session ended in another tab');
    }
    let response;
    try {
      response = await call('/refresh-token', { method: 'POST', headers: { [csrfHeader]: '1' } });
    } catch (error) {
      post({ type: 'failed' });
      throw error;
    }
    if (response.ok) {
      const body = await response.json();
      const expiry = Date.now() + body.expiresIn * 1000;
      adopt(body.accessToken, expiry, 'refresh');
      post({ type: 'token', accessToken: body.accessToken, expiresAt: expiry });
      return body.accessToken;
    }
    const error = await errorOf(response);
    // 401 says the session is over (refused token, or no cookie at all: tabs share one
    // cookie jar, so no tab can refresh either); anything else is a passing failure.
    if (response.status === 401) end('expired', true);
    else post({ type: 'failed' });
    throw error;
  }

  async function withWebLock(asked) {
    const busy = {};
    const first = await navigator.locks.request(lockName, { ifAvailable: true }, (lock) => (lock ? rotate(asked, 0) : busy));
    if (first !== busy) return first;
    return navigator.locks.request(lockName, () => rotate(asked, 1000));
  }

  // Without Web Locks: claim by broadcast, wait for rival claims, the lowest id refreshes
  // and the others wait for its outcome. Timing-based, so not airtight; the server's
  // grace window answers two near-simultaneous refreshes with the same successor.
  async function withBroadcastLock(asked) {
    if (!bc) return rotate(asked, 0);
    const id = Math.random();
    const recent = rivals.filter(([, at]) => Date.now() - at < 100).map(([rival]) => rival);
    claim = { lowest: Math.min(Infinity, ...recent), holding: false };
    post({ type: 'claim', id });
    await new Promise((resolve) => setTimeout(resolve, 60));
    const lost = claim.lowest < id;
    claim.holding = !lost;
    try {
      return await (lost ? rotate(asked, 10000) : rotate(asked, 0));
    } finally {
      claim = null;
    }
  }

  function refresh() {
    if (!inflight) {
      const asked = epoch;
      const locked = globalThis.navigator?.locks?.request ? withWebLock(asked) : withBroadcastLock(asked);
      inflight = locked.finally(() => { inflight = null; });
    }
    return inflight;
  }

  // A JSON POST without a token; rejects with the API's error unless the status is ok.
  async function send(path, body, headers = {}) {
    const response = await call(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  // Takes the tokens of a login or password change: the access token into memory (and
  // the other tabs); the refresh token came as the HttpOnly cookie.
  async function signedIn(response, from) {
    const body = await response.json();
    if ('refreshToken' in body) {
      // `both` delivery: the token is in script's reach. Drop it; use `cookie` for browsers.
      console.warn('latchkey: the API returned refreshToken in the body; set LATCHKEY_REFRESH_TOKEN_DELIVERY=cookie');
    }
    const expiry = Date.now() + body.expiresIn * 1000;
    adopt(body.accessToken, expiry, from);
    post({ type: 'token', accessToken: body.accessToken, expiresAt: expiry });
    return { expiresAt: expiry };
  }

  // Resolves to { expiresAt } when signed in, or to { mfaRequired: true,
  // enrollmentRequired } when the user has (or must enrol) a second factor: then
  // completeLogin() with a code finishes it (after setupLogin() when enrolling).
  async function login(email, password) {
    mfaToken = null;
    const response = await send('/login', { email, password });
    const body = await response.clone().json();
    if (body.mfaRequired) {
      mfaToken = body.mfaToken;
      return { mfaRequired: true, enrollmentRequired: Boolean(body.mfaEnrollmentRequired) };
    }
    return signedIn(response, 'login');
  }

  function pendingLogin() {
    if (!mfaToken) throw new LatchkeyError('no_pending_login', 0, 'call login() first: no sign-in awaits a code');
    return mfaToken;
  }

  // The second step: { code } from the authenticator app or { recoveryCode }. The
  // answer of a login that also confirmed an enrolment carries the recovery codes.
  async function completeLogin({ code, recoveryCode } = {}) {
    const body = recoveryCode === undefined ? { mfaToken: pendingLogin(), code } : { mfaToken: pendingLogin(), recoveryCode };
    const response = await send('/login/mfa', body);
    mfaToken = null;
    const { recoveryCodes } = await response.clone().json();
    const signed = await signedIn(response, 'login');
    return recoveryCodes ? { ...signed, recoveryCodes } : signed;
  }

  // A user who must enrol before signing in: the secret, otpauth URI and QR code.
  async function setupLogin() {
    return (await send('/login/mfa/setup', { mfaToken: pendingLogin() })).json();
  }

  // The current password proves it is the user; the answer carries fresh tokens for this
  // session while every other session of the user ends. Not through authFetch: its retry
  // would send a wrong password twice (each counted by the login throttle). It refreshes
  // only when the API says the access token itself was refused.
  async function changePassword(currentPassword, newPassword) {
    return signedIn(await once('/password', 'POST', { currentPassword, newPassword }), 'password');
  }

  // These four answer the same whatever the address: no account state is revealed.
  const forgotPassword = async (email) => { await send('/password/forgot', { email }); };
  const resetPassword = async (token, newPassword) => { await send('/password/reset', { token, newPassword }); };
  const signUp = async (email, password) => { await send('/signup', { email, password }); };
  const verifyEmail = async (token) => { await send('/email/verify', { token }); };

  // Resolves relative paths against the API. The token goes wherever you point this, so
  // point it only at APIs that trust Latchkey's tokens.
  async function authFetch(input, init = {}) {
    const url = typeof input === 'string' && input.startsWith('/') ? `${base}${input}` : input;
    const template = new Request(url, init);
    const send = (token) => {
      const request = template.clone();
      const headers = new Headers(request.headers);
      if (token) headers.set('Authorization', `Bearer ${token}`);
      return fetch(new Request(request, { headers }));
    };
    // No session left: send it bare and let the API answer 401, like any anonymous call.
    const fresh = () => refresh().catch((error) => {
      if (error.code === 'network') throw error;
      return null;
    });
    const token = accessToken ?? await fresh();
    const response = await send(token);
    if (response.status !== 401 || !token) return response;
    const retried = accessToken && accessToken !== token ? accessToken : await fresh();
    return retried ? send(retried) : response;
  }

  // A signed-in call whose body must not be sent twice blindly (a password or a code
  // counted by a limit): it refreshes and retries only when the access token itself
  // was refused.
  async function once(path, method, body) {
    const attempt = async (token) => call(path, {
      method,
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    let response = await attempt(accessToken ?? await refresh());
    if (response.status === 401) {
      const error = await errorOf(response.clone());
      if (error.code === 'invalid_token') response = await attempt(await refresh());
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  // Second factor, signed in: start enrolling (secret, otpauth URI, QR code as SVG),
  // confirm with the password and a code (resolves to the ten recovery codes, shown
  // once), remove with the password and a code or a recovery code.
  const enrollTotp = async () => (await once('/mfa/totp', 'POST')).json();
  const confirmTotp = async (password, code) => (await (await once('/mfa/totp/confirm', 'POST', { password, code })).json()).recoveryCodes;
  async function removeTotp(password, { code, recoveryCode } = {}) {
    await once('/mfa/totp', 'DELETE', recoveryCode === undefined ? { password, code } : { password, recoveryCode });
  }

  // How the session in memory was signed in (the access token's `amr`): ['pwd'],
  // ['pwd', 'otp'] or ['pwd', 'mfa'] (a recovery code); null without a token. Routes
  // that require a second factor (LATCHKEY_ROUTE_MFA) answer 403 unless it has otp or mfa.
  function amr() {
    if (!accessToken) return null;
    try {
      const payload = accessToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(payload)).amr ?? ['pwd'];
    } catch {
      return null;
    }
  }
  const hasSecondFactor = () => (amr() ?? []).some((method) => method === 'otp' || method === 'mfa');

  // Where the user is signed in: GET /sessions, newest first, `current` marking this one.
  async function sessions() {
    const response = await authFetch('/sessions');
    if (!response.ok) throw await errorOf(response);
    return (await response.json()).sessions;
  }

  // Ends one of the user's sessions (its next refresh fails). Ending this one is a logout.
  async function endSession(id) {
    const response = await authFetch(`/sessions/${encodeURIComponent(id)}`, { method: 'DELETE' });
    if (!response.ok) throw await errorOf(response);
  }

  // The cookie is scoped to /refresh-token, so logout proves the session with the access
  // token; the response still clears the cookie. `others` ends every session but this one,
  // which stays signed in.
  async function logout({ everywhere = false, others = false } = {}) {
    const init = { method: 'POST', credentials: 'include' };
    if (everywhere || others) {
      init.headers = { 'Content-Type': 'application/json' };
      init.body = JSON.stringify(others ? { others: true } : { allSessions: true });
    }
    const response = await authFetch('/logout', init);
    if (others) {
      if (!response.ok) throw await errorOf(response);
      return;
    }
    // 401: no token of any kind, or the session is already over: nothing to end.
    if (!response.ok && response.status !== 401) throw await errorOf(response);
    end('logout', true);
  }

  return Object.assign(events, {
    login,
    completeLogin,
    setupLogin,
    enrollTotp,
    confirmTotp,
    removeTotp,
    amr,
    hasSecondFactor,
    changePassword,
    forgotPassword,
    resetPassword,
    signUp,
    verifyEmail,
    sessions,
    endSession,
    fetch: authFetch,
    refresh,
    logout,
    accessTokenExpiresAt: () => expiresAt,
  });
}
