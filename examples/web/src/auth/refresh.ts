// Trading the refresh cookie for a new access token: one refresh at a time in this tab (one
// shared promise) and across tabs (a Web Lock, which signing out takes too), and none at all
// when another tab already did it.
import { firstApiError } from "../lib/errors";
import { acceptAccess, accessTokenChange, endSession, getAccessToken, getGeneration, getSession, type IssuedAccess } from "./session";

/** Performs `mutation RefreshToken { refreshToken { ... } }`; rejects with Apollo's error. */
export type RefreshRequest = () => Promise<IssuedAccess>;

const LOCK_NAME = "gql-app-refresh";
/** How long a tab waits for another tab's broadcast token (after queueing for the lock, or a SUPERSEDED answer). */
const BROADCAST_WAIT_MS = 250;
/**
 * How long the lock stays held after its task is done. A tab whose token expired just then,
 * before the holder's broadcast reached it, finds the lock taken, queues, and so waits for the
 * message instead of refreshing again.
 */
const LINGER_MS = 100;

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
 * `lockHeld`: the caller runs inside withSessionLock (signing out), so queueing for the lock
 * would wait for itself; the refresh runs in place.
 */
export function refreshAccessToken(stale: string | null, cause: RefreshCause, options: { lockHeld?: boolean } = {}): Promise<string | null> {
  const current = getAccessToken();
  if (current !== null && current !== stale) return Promise.resolve(current);
  const generation = getGeneration();
  if (options.lockHeld === true) return refreshUnderLock(stale, cause, false, generation);
  inFlight ??= withSessionLock((contended) => refreshUnderLock(stale, cause, contended, generation)).finally(() => {
    inFlight = null;
  });
  return inFlight;
}

/**
 * Runs `task` holding the cross-tab lock: refreshes, and sign-outs (so that none overlaps a
 * refresh in any tab). `contended` says another holder had it when this one asked: that tab
 * was refreshing, and its broadcast token is about to arrive. The answer comes as soon as
 * `task` settles; the lock is let go LINGER_MS later.
 */
export function withSessionLock<T>(task: (contended: boolean) => Promise<T>): Promise<T> {
  // Web Locks exist in secure contexts (https, or http://localhost); elsewhere this tab's
  // shared promise is the only guard.
  if (typeof navigator === "undefined" || navigator.locks === undefined) return task(false);
  const locks = navigator.locks;
  return new Promise<T>((resolve, reject) => {
    const run = async (contended: boolean): Promise<void> => {
      const outcome = task(contended);
      outcome.then(resolve, reject);
      await outcome.catch(() => undefined);
      await new Promise((done) => window.setTimeout(done, LINGER_MS));
    };
    locks
      .request(LOCK_NAME, { ifAvailable: true }, (lock) => (lock !== null ? run(false) : locks.request(LOCK_NAME, () => run(true))))
      .catch(reject);
  });
}

/**
 * Whether a refresh's error says "no" (the session is over) rather than "not now":
 * UNAUTHENTICATED (no cookie, SESSION_ENDED, REFRESH_TOKEN_INVALID / _REUSED, a second
 * _SUPERSEDED) and FORBIDDEN (ACCOUNT_DISABLED, CSRF_HEADER_MISSING). Anything else (no
 * network, a timeout, SERVICE_UNAVAILABLE, RATE_LIMITED, INTERNAL_SERVER_ERROR, a validation
 * error) may pass: the session may well be alive.
 */
function isRefusal(error: unknown): boolean {
  const code = firstApiError(error)?.code;
  return code === "UNAUTHENTICATED" || code === "FORBIDDEN";
}

async function refreshUnderLock(stale: string | null, cause: RefreshCause, contended: boolean, generation: number): Promise<string | null> {
  // While this tab waited for the lock, the tab that held it refreshed and broadcast its
  // token (session.ts adopts it): reuse it rather than rotate again. The lock can be granted
  // here a moment before that message is delivered, so wait a little for it.
  if (contended && getAccessToken() === stale) await accessTokenChange(BROADCAST_WAIT_MS);
  if (request === null) throw new Error("setRefreshRequest() was not called");
  for (let attempt = 1; ; attempt += 1) {
    // Signed out, or in anew, since this refresh was asked for (here or in another tab): it
    // belongs to a session that is gone.
    if (getGeneration() !== generation) return null;
    const before = getAccessToken();
    if (before !== null && before !== stale) return before;
    try {
      const issued = await request();
      // "Sign out" while this was on the wire: adopting (and broadcasting) the answer would
      // sign the tabs back in.
      if (getGeneration() !== generation) return null;
      acceptAccess(issued, "refresh");
      return issued.accessToken;
    } catch (error) {
      if (getGeneration() !== generation) return null;
      // Another tab's token that arrived meanwhile wins over this failure.
      const now = getAccessToken();
      if (now !== null && now !== stale) return now;
      if (attempt === 1 && firstApiError(error)?.reason === "REFRESH_TOKEN_SUPERSEDED") {
        // Not the end of the session: another tab rotated the cookie on while this request
        // carried an older one. Its token may be on its way; if not, the cookie jar holds the
        // newer cookie now, so ask once more. A second refusal is final.
        await accessTokenChange(BROADCAST_WAIT_MS);
        continue;
      }
      if (isRefusal(error)) {
        endSession({ broadcast: cause === "expired", redirect: cause === "expired" });
      } else if (cause === "restore") {
        // The API could not be reached, or is busy: no session to show, but nothing to tell
        // the other tabs. (After TOKEN_EXPIRED the request answers its error and the tab stays.)
        endSession({ broadcast: false, redirect: false });
      }
      return null;
    }
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
