// Types for latchkey.js, the Latchkey browser client (refresh-cookie delivery).

export interface LatchkeyOptions {
  /** The API's origin (or base URL), e.g. "https://auth.example.com". */
  api: string;
  /** The CSRF header the API expects (LATCHKEY_CSRF_HEADER). Default "X-Latchkey-CSRF". */
  csrfHeader?: string;
  /** BroadcastChannel name shared by this app's tabs; the Web Lock is `${channel}-refresh`. Default "latchkey". */
  channel?: string;
}

export interface TokenEventDetail {
  /** When the new access token expires, ms since the epoch. */
  expiresAt: number;
  /** Where it came from: this tab's login or refresh, or another tab. */
  from: 'login' | 'refresh' | 'password' | 'tab';
}

export interface SessionEndEventDetail {
  /** logout: this tab logged out; expired: the API refused the refresh (invalid_grant); remote: another tab said so. */
  reason: 'logout' | 'expired' | 'remote';
}

export interface LatchkeyEventMap {
  token: CustomEvent<TokenEventDetail>;
  sessionend: CustomEvent<SessionEndEventDetail>;
}

export declare class LatchkeyError extends Error {
  /** The API's error code (invalid_credentials, invalid_grant, invalid_request, ...), 'session_ended' or 'network'. */
  readonly code: string;
  /** The HTTP status; 0 when no answer arrived. */
  readonly status: number;
}

export interface Latchkey extends EventTarget {
  /**
   * POST /login; the refresh token arrives as an HttpOnly cookie. For a user with a second
   * factor (or one who must enrol one) it resolves to `{ mfaRequired: true, enrollmentRequired }`
   * and no session yet: finish with `completeLogin` (after `setupLogin` when enrolling).
   * Rejects with LatchkeyError.
   */
  login(email: string, password: string): Promise<{ expiresAt: number } | LatchkeyMfaRequired>;
  /**
   * POST /login/mfa: the second step of the pending login, with a code from the app or a
   * recovery code. Rejects with `invalid_code` (wrong or already used; the login stays
   * pending), `invalid_mfa_token` (expired after 5 minutes: call `login` again) or
   * `too_many_attempts`. After an enrolment during the login it also returns the recovery codes.
   */
  completeLogin(proof: { code: string } | { recoveryCode: string }): Promise<{ expiresAt: number; recoveryCodes?: string[] }>;
  /** POST /login/mfa/setup: enrolment material for a pending login with `enrollmentRequired`. */
  setupLogin(): Promise<LatchkeyTotpEnrolment>;
  /** POST /mfa/totp (signed in): a new secret, not active until `confirmTotp`. Rejects with `mfa_enabled`. */
  enrollTotp(): Promise<LatchkeyTotpEnrolment>;
  /** POST /mfa/totp/confirm with the password and the app's first code: enables the second factor; resolves to the ten recovery codes (shown once). */
  confirmTotp(password: string, code: string): Promise<string[]>;
  /** DELETE /mfa/totp: removes the second factor, with the password and a code or a recovery code. */
  removeTotp(password: string, proof: { code: string } | { recoveryCode: string }): Promise<void>;
  /** The `amr` of the access token in memory (`['pwd']`, `['pwd', 'otp']`, `['pwd', 'mfa']`), or null. */
  amr(): string[] | null;
  /** Whether the access token in memory carries a second factor (`otp` or `mfa` in `amr`): what routes in LATCHKEY_ROUTE_MFA require. */
  hasSecondFactor(): boolean;
  /**
   * POST /password with the access token: the current password proves the user. Resolves
   * once the new password is set: this session continues with fresh tokens (a `token`
   * event, `from: 'password'`) and every other session of the user has ended. A wrong
   * current password rejects with `invalid_credentials` (counted as a failed login).
   */
  changePassword(currentPassword: string, newPassword: string): Promise<{ expiresAt: number }>;
  /** POST /password/forgot. Resolves alike whether or not the address has an account. */
  forgotPassword(email: string): Promise<void>;
  /** POST /password/reset with a link's token (reset or invite); every session of the user ends. Rejects with `invalid_link` or `weak_password`. */
  resetPassword(token: string, newPassword: string): Promise<void>;
  /** POST /signup (when the deployment allows it). Resolves alike whether or not the address was taken; the person then uses the mailed link. */
  signUp(email: string, password: string): Promise<void>;
  /** POST /email/verify with a sign-up link's token. Rejects with `invalid_link`. */
  verifyEmail(token: string): Promise<void>;
  /**
   * fetch with `Authorization: Bearer`. Paths starting with "/" are resolved against `api`.
   * Without a token it refreshes first; on a 401 it refreshes once and retries once. With no
   * session left it sends the request without a token, so the API's 401 comes back.
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** Single-flight across tabs; resolves to the new access token. Rejects with LatchkeyError. */
  refresh(): Promise<string>;
  /** GET /sessions: where the user is signed in, newest first; `current` marks this session. */
  sessions(): Promise<LatchkeySession[]>;
  /** DELETE /sessions/{id}: ends that session (its next refresh fails). Rejects with `not_found` for an id that is not a live session of this user. */
  endSession(id: string): Promise<void>;
  /**
   * POST /logout with the access token: this session, every session of the user with
   * `everywhere` (all tabs end), or every session but this one with `others` (this one stays).
   */
  logout(options?: { everywhere?: boolean; others?: boolean }): Promise<void>;
  /** Expiry of the access token in memory, ms since the epoch, or null. */
  accessTokenExpiresAt(): number | null;

  addEventListener<K extends keyof LatchkeyEventMap>(
    type: K,
    listener: (this: Latchkey, event: LatchkeyEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof LatchkeyEventMap>(
    type: K,
    listener: (this: Latchkey, event: LatchkeyEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}

export declare function createLatchkey(options: LatchkeyOptions): Latchkey;

/** What `login` resolves to when a second step is needed. */
export interface LatchkeyMfaRequired {
  mfaRequired: true;
  /** The user must enrol first: `setupLogin`, then `completeLogin` with the app's first code. */
  enrollmentRequired: boolean;
}

/** A TOTP enrolment: add it to an authenticator app by the QR code or the secret. */
export interface LatchkeyTotpEnrolment {
  /** The secret, base32 without padding (160 bits). */
  secret: string;
  /** otpauth://totp/... (SHA-1, 6 digits, 30 s). */
  otpauthUri: string;
  /** The URI as a QR code, an SVG document (show it as an image: `data:image/svg+xml`). */
  qrSvg: string;
}

/** One of the user's live sessions, as GET /sessions lists it. */
export interface LatchkeySession {
  /** Opaque handle for endSession (not a token). */
  id: string;
  /** Sign-in time, Unix seconds. */
  createdAt: number;
  /** Last refresh (sign-in time before any), Unix seconds. */
  lastUsedAt: number;
  /** User-Agent of the last sign-in or refresh, cut to 256 characters; null if none was sent. */
  userAgent: string | null;
  /** Source IP API Gateway saw at the last sign-in or refresh; null if unknown. */
  ip: string | null;
  /** Whether this is the session making the call. */
  current: boolean;
}

export interface LatchkeyLink {
  /** reset: a forgot-password link; invite: an invitation (set a first password); verify: a sign-up's email check. */
  action: 'reset' | 'invite' | 'verify';
  /** The one-time token to pass to resetPassword (reset, invite) or verifyEmail (verify). */
  token: string;
}

/**
 * Reads a link Latchkey mailed (`<page>#action=...&token=...`) from `location` (default
 * the page's) and removes the fragment from the address bar with `history.replaceState`.
 * Null when the fragment is not such a link.
 */
export declare function readLink(
  location?: Pick<Location, 'hash' | 'pathname' | 'search'>,
  history?: Pick<History, 'replaceState' | 'state'>,
): LatchkeyLink | null;
