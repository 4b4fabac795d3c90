// Trading the refresh cookie for a new access token: one refresh at a time in this tab (one
// shared promise) and across tabs (a Web Lock), and none at all when another tab already did it.
import { firstApiError } from "../lib/errors";
import { acceptAccess, accessTokenChange, endSession, getAccessToken, getSession, type IssuedAccess } from "./session";

/** Performs `mutation RefreshToken { refreshToken { ... } }`; rejects with Apollo's error. */
export type RefreshRequest = () => Promise<IssuedAccess>;

const LOCK_NAME = "gql-app-refresh";
/** How long a tab that queued for the lock waits for the holder's broadcast token. */
const BROADCAST_WAIT_MS = 250;

/** Answers that say "not now" rather than "no": the session may well be alive. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set(["SERVICE_UNAVAILABLE", "RATE_LIMITED", "INTERNAL_SERVER_ERROR"]);

let request: RefreshRequest | null = null;
let inFlight: Promise<string | null> | null = null;

/** Set once at start-up, with the client's RefreshToken call (see client.ts). */
export function setRefreshRequest(fn: RefreshRequest): void {
  request = fn;
}

/**
 * Why: "restore" is the silent refresh on page load (a refusal leaves the tab signed out
 * where it is); "expired" is a request that answered TOKEN_EXPIRED (a refusal ends the
 * session everywhere and goes to /sign-in).
 */
export type RefreshCause = "restore" | "expired";

/**
 * A fresh access token, or null if the session could not be refreshed. `stale` is the token
 * the failed request carried (null on page load): if the tab's token is another one by now,
 * someone refreshed already and that one is answered without asking the server.
 */
export function refreshAccessToken(stale: string | null, cause: RefreshCause): Promise<string | null> {
  const current = getAccessToken();
  if (current !== null && current !== stale) return Promise.resolve(current);
  inFlight ??= withLock((contended) => refreshUnderLock(stale, cause, contended)).finally(() => {
    inFlight = null;
  });
  return inFlight;
}

/**
 * Runs `task` holding the cross-tab lock. `contended` says another tab held it when this one
 * asked: that tab was refreshing, and its broadcast token is about to arrive.
 */
function withLock<T>(task: (contended: boolean) => Promise<T>): Promise<T> {
  // Web Locks exist in secure contexts (https, or http://localhost); elsewhere this tab's
  // shared promise is the only guard.
  if (typeof navigator === "undefined" || navigator.locks === undefined) return task(false);
  const locks = navigator.locks;
  return locks.request(LOCK_NAME, { ifAvailable: true }, (lock) =>
    lock !== null ? task(false) : locks.request(LOCK_NAME, () => task(true)),
  );
}

async function refreshUnderLock(stale: string | null, cause: RefreshCause, contended: boolean): Promise<string | null> {
  // While this tab waited for the lock, the tab that held it refreshed and broadcast its
  // token (session.ts adopts it): reuse it rather than rotate again. The lock can be granted
  // here a moment before that message is delivered, so wait a little for it.
  if (contended && getAccessToken() === stale) await accessTokenChange(BROADCAST_WAIT_MS);
  const before = getAccessToken();
  if (before !== null && before !== stale) return before;
  if (contended && cause === "expired" && getSession().status === "signedOut") return null; // the holder's refresh was refused
  if (request === null) throw new Error("setRefreshRequest() was not called");
  try {
    const issued = await request();
    acceptAccess(issued);
    return issued.accessToken;
  } catch (error) {
    // A sign-in (or another tab's token) that arrived meanwhile wins over this refusal.
    const now = getAccessToken();
    if (now !== null && now !== stale) return now;
    const code = firstApiError(error)?.code;
    const refused = code !== undefined && !TRANSIENT_CODES.has(code);
    if (refused) {
      // UNAUTHENTICATED: REFRESH_TOKEN_MISSING (no cookie: never signed in, or signed out),
      // SESSION_ENDED, REFRESH_TOKEN_INVALID / _REUSED / _SUPERSEDED. The session is over.
      endSession({ broadcast: cause === "expired", redirect: cause === "expired" });
    } else if (cause === "restore") {
      // The API could not be reached, or is busy: no session to show, but nothing to tell
      // the other tabs. (After TOKEN_EXPIRED the request answers its error and the tab stays.)
      endSession({ broadcast: false, redirect: false });
    }
    return null;
  }
}

/** Page load: the one silent refresh. Whatever happens, the tab is no longer "restoring" after it. */
export async function restoreSession(): Promise<void> {
  try {
    await refreshAccessToken(null, "restore");
  } finally {
    if (getSession().status === "restoring") endSession({ broadcast: false, redirect: false });
  }
}
