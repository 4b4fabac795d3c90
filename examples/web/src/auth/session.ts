// Who is signed in, and the access token: kept in this module's memory only (never in
// localStorage, sessionStorage or a cookie). The refresh token is the server's HttpOnly
// cookie; this code never sees it. Tabs tell each other of new tokens and of sign-outs over
// a BroadcastChannel.
import { useSyncExternalStore } from "react";
import { navigate } from "../router";

export interface SessionUser {
  id: string;
  email: string;
  isSuperuser: boolean;
}

export type SessionState =
  | { status: "restoring"; user: null } // the first refreshToken has not answered yet
  | { status: "signedIn"; user: SessionUser }
  | { status: "signedOut"; user: null };

/** What login, completeLogin, finishPasskeySignIn and refreshToken answer (the fields we ask for). */
export interface IssuedAccess {
  accessToken: string;
  user: SessionUser;
}

/** "sign-in": a new session (login, completeLogin, finishPasskeySignIn); "refresh": the same one, rotated. */
export type AccessKind = "sign-in" | "refresh";

type Message = { type: "token"; kind: AccessKind; accessToken: string; user: SessionUser } | { type: "signed-out" };

let accessToken: string | null = null;
/**
 * Bumped whenever the session is replaced: a sign-out (here or in another tab) or a sign-in.
 * A refresh, or a retry, that started under another generation belongs to a session that is
 * gone: its answer must not sign this tab back in, nor run as whoever is signed in now.
 */
let generation = 0;
let state: SessionState = { status: "restoring", user: null };
const listeners = new Set<(previous: SessionState, next: SessionState) => void>();
const tokenListeners = new Set<() => void>();

const channel: BroadcastChannel | null =
  typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel("gql-app-session");

function setState(next: SessionState): void {
  const previous = state;
  state = next;
  for (const listener of listeners) listener(previous, next);
}

export function getAccessToken(): string | null {
  return accessToken;
}

export function getSession(): SessionState {
  return state;
}

export function getGeneration(): number {
  return generation;
}

/** Called on every change; returns the unsubscribe function. */
export function onSessionChange(listener: (previous: SessionState, next: SessionState) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * Resolves when the access token changes (a token or a sign-out from another tab, a sign-in
 * here) or after `ms`, whichever comes first.
 */
export function accessTokenChange(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      window.clearTimeout(timer);
      tokenListeners.delete(done);
      resolve();
    };
    const timer = window.setTimeout(done, ms);
    tokenListeners.add(done);
  });
}

function tokenChanged(): void {
  for (const listener of [...tokenListeners]) listener();
}

// At module level: a new function each render would make React unsubscribe and subscribe again.
const subscribe = (notify: () => void): (() => void) => onSessionChange(notify);
const snapshot = (): SessionState => state;

export function useSession(): SessionState {
  return useSyncExternalStore(subscribe, snapshot);
}

function sameUser(a: SessionUser | null, b: SessionUser): boolean {
  return a !== null && a.id === b.id && a.email === b.email && a.isSuperuser === b.isSuperuser;
}

/** Keep an access token (this tab's, or another tab's), and who it is for. */
function adopt(issued: IssuedAccess, kind: AccessKind): SessionUser {
  if (kind === "sign-in") generation += 1;
  accessToken = issued.accessToken;
  tokenChanged();
  const user = { id: issued.user.id, email: issued.user.email, isSuperuser: issued.user.isSuperuser };
  if (state.status !== "signedIn" || !sameUser(state.user, user)) setState({ status: "signedIn", user });
  return user;
}

/** A sign-in or refresh answered: keep its access token, and tell the other tabs. */
export function acceptAccess(issued: IssuedAccess, kind: AccessKind): void {
  const user = adopt(issued, kind);
  channel?.postMessage({ type: "token", kind, accessToken: issued.accessToken, user } satisfies Message);
}

/**
 * Forget the access token. `broadcast` tells the other tabs (they share the cookie, so the
 * session is over for them too); `redirect` goes to /sign-in.
 */
export function endSession(options: { broadcast: boolean; redirect: boolean }): void {
  const wasSignedIn = accessToken !== null || state.status === "signedIn";
  generation += 1;
  accessToken = null;
  tokenChanged();
  if (state.status !== "signedOut") setState({ status: "signedOut", user: null });
  if (options.broadcast && wasSignedIn) channel?.postMessage({ type: "signed-out" } satisfies Message);
  if (options.redirect && window.location.pathname !== "/sign-in") {
    navigate("/sign-in", { replace: true, state: { next: window.location.pathname + window.location.search } });
  }
}

channel?.addEventListener("message", (event: MessageEvent<Message>) => {
  const message = event.data;
  if (message.type === "token") {
    adopt(message, message.kind);
  } else if (message.type === "signed-out") {
    const wasSignedIn = state.status === "signedIn";
    endSession({ broadcast: false, redirect: wasSignedIn });
  }
});
