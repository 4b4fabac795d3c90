// The auth link: every request carries the CSRF header and the in-memory access token; an
// answer of TOKEN_EXPIRED refreshes once and retries once (in the same session only); an
// answer saying the session is over signs this tab (and the others) out and goes to /sign-in.
//
//   sessionEndLink -> refreshRetryLink -> headersLink -> (HttpLink)
//
// The RefreshToken operation itself (context.gqlAppRefresh) passes both error links untouched:
// its refusals are handled by refresh.ts, and it can never start another refresh.
import { ApolloLink } from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { ErrorLink } from "@apollo/client/link/error";
import { from, mergeMap, of } from "rxjs";
import { apiErrors } from "../lib/errors";
import { refreshAccessToken } from "./refresh";
import { endSession, getAccessToken, getGeneration } from "./session";

declare module "@apollo/client" {
  interface DefaultContext {
    /** Set on the RefreshToken mutation: no bearer token, no refresh-and-retry. */
    gqlAppRefresh?: boolean;
    /** The access token this request was sent with (null: none). */
    accessToken?: string | null;
    /** The session generation (session.ts) this request was sent in. */
    sessionGeneration?: number;
    /** Sent from inside withSessionLock (signing out): a refresh it needs must not queue for the lock. */
    gqlAppLockHeld?: boolean;
  }
}

/** The header the API's CSRF guard asks for on cookie-authorised operations; sent always. */
const CSRF_HEADER = { "X-Requested-With": "gql-app" } as const;

/**
 * UNAUTHENTICATED reasons that judge what the user just typed or presented (a password, a
 * code, a passkey), not the session: a wrong password given to reauthenticate must not sign
 * anyone out. Every other UNAUTHENTICATED reason (SESSION_ENDED, TOKEN_INVALID,
 * TOKEN_MISSING, logout's REFRESH_TOKEN_MISSING / _INVALID, and any reason added later) means
 * the session is over. (RefreshToken's own answers are judged in refresh.ts.)
 */
const CREDENTIAL_REASONS: ReadonlySet<string> = new Set([
  "INVALID_CREDENTIALS",
  "INVALID_MFA_CODE",
  "MFA_CHALLENGE_INVALID",
  "PASSKEY_CHALLENGE_INVALID",
  "PASSKEY_NOT_RECOGNISED",
  "PASSKEY_VERIFICATION_FAILED",
]);

function isRefresh(operation: ApolloLink.Operation): boolean {
  return operation.getContext().gqlAppRefresh === true;
}

/** Adds the headers. Runs again for a retried operation, so the retry carries the new token. */
const headersLink = new SetContextLink((previous) => {
  const token = previous.gqlAppRefresh === true ? null : getAccessToken();
  return {
    accessToken: token,
    sessionGeneration: getGeneration(),
    headers: {
      ...(previous["headers"] as Record<string, string> | undefined),
      ...CSRF_HEADER,
      ...(token === null ? {} : { Authorization: `Bearer ${token}` }),
    },
  };
});

/** TOKEN_EXPIRED: refresh (shared, locked; see refresh.ts), then send the operation once more. */
const refreshRetryLink = new ErrorLink(({ error, result, operation, forward }) => {
  if (isRefresh(operation) || result === undefined) return;
  if (!apiErrors(error).some((e) => e.code === "UNAUTHENTICATED" && e.reason === "TOKEN_EXPIRED")) return;
  const { accessToken, sessionGeneration, gqlAppLockHeld } = operation.getContext();
  // ErrorLink hands the retried request's answer straight up, unexamined by this handler:
  // one retry at most.
  return from(refreshAccessToken(accessToken ?? null, "expired", { lockHeld: gqlAppLockHeld === true })).pipe(
    // No new token: answer the original error. A refused refresh has already ended the
    // session (refresh.ts); a failed one (network, busy server) leaves it to the caller.
    // Signed out or in anew meanwhile (perhaps as another account): a retry would run as
    // whoever is signed in now, so answer the original error too.
    mergeMap((token) => (token === null || getGeneration() !== sessionGeneration ? of(result) : forward(operation))),
  );
});

/**
 * The final answer (retried or not) says the session is over: forget it, tell the tabs, sign
 * in. Not when it speaks of a session this tab has already left (signed out, or in anew, since
 * the request was sent): that would end the new one.
 */
const sessionEndLink = new ErrorLink(({ error, operation }) => {
  if (isRefresh(operation) || operation.getContext().sessionGeneration !== getGeneration()) return;
  const over = apiErrors(error).some(
    (e) => e.code === "UNAUTHENTICATED" && e.reason !== "TOKEN_EXPIRED" && !CREDENTIAL_REASONS.has(e.reason),
  );
  if (over) endSession({ broadcast: true, redirect: true });
});

/** Put in front of the HttpLink. */
export const authLink: ApolloLink = ApolloLink.from([sessionEndLink, refreshRetryLink, headersLink]);
