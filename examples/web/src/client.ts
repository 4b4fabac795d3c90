// The Apollo Client: the auth link (src/auth/) in front of one HttpLink (one HTTP request per
// operation, no batching), and the RefreshToken call the auth module refreshes with.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, type DefaultContext } from "@apollo/client";
import { authLink, endSession, onSessionChange, setRefreshRequest, withSessionLock } from "./auth";
import { GRAPHQL_URL } from "./config";
import { LogoutAllDocument, LogoutDocument, RefreshTokenDocument } from "./operations";
import { navigate } from "./router";

/**
 * How long a refresh or a sign-out may take. They hold the cross-tab lock (and every request
 * waiting for a refresh waits on them): one that hangs must not hold it for ever. A timeout
 * is a failure like a lost network, not a refusal: the session stays (refresh.ts).
 */
const LOCKED_REQUEST_TIMEOUT_MS = 15_000;

/** Apollo's HttpLink passes the context's fetchOptions to fetch(), and aborts with their signal. */
function timeLimited(): DefaultContext {
  return { fetchOptions: { signal: AbortSignal.timeout(LOCKED_REQUEST_TIMEOUT_MS) } };
}

export const client = new ApolloClient({
  link: ApolloLink.from([
    authLink,
    // credentials: "include" sends the refresh cookie (Path=/graphql) with every request,
    // also when GRAPHQL_URL (src/config.ts) names another origin of the same site.
    new HttpLink({ uri: GRAPHQL_URL, credentials: "include" }),
  ]),
  cache: new InMemoryCache(),
  // The devtools extension would keep every operation's variables: passwords and codes.
  devtools: { enabled: false },
});

setRefreshRequest(async () => {
  const { data } = await client.mutate({
    mutation: RefreshTokenDocument,
    fetchPolicy: "no-cache",
    context: { ...timeLimited(), gqlAppRefresh: true },
  });
  if (!data) throw new Error("refreshToken answered no data");
  return data.refreshToken;
});

// Another account (or none): nothing cached for the last one may show.
onSessionChange((previous, next) => {
  if (previous.user?.id !== next.user?.id) void client.clearStore().catch(() => undefined);
});

// Signing out holds the refresh lock: a refresh in flight in any tab answers first, and none
// starts until the session is over here, so none can hand the tabs a token afterwards.
// gqlAppLockHeld: should the mutation need a refresh itself, it runs in place.

/** "Sign out": end this browser's session (the server clears the cookie), then /sign-in. */
export async function signOut(): Promise<void> {
  await withSessionLock(async () => {
    try {
      await client.mutate({ mutation: LogoutDocument, context: { ...timeLimited(), gqlAppLockHeld: true } });
    } catch {
      // No cookie any more, or the API is unreachable: this tab forgets the session anyway.
    }
    endSession({ broadcast: true, redirect: false });
  });
  navigate("/sign-in");
}

/** "Sign out everywhere": end every session of the account, this one included. */
export async function signOutEverywhere(): Promise<void> {
  await withSessionLock(async () => {
    await client.mutate({ mutation: LogoutAllDocument, context: { ...timeLimited(), gqlAppLockHeld: true } });
    endSession({ broadcast: true, redirect: false });
  });
  navigate("/sign-in");
}
