// The Apollo Client: the auth link (src/auth/) in front of one HttpLink (one HTTP request per
// operation, no batching), and the RefreshToken call the auth module refreshes with.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from "@apollo/client";
import { authLink, endSession, onSessionChange, setRefreshRequest } from "./auth";
import { GRAPHQL_URL } from "./config";
import { LogoutAllDocument, LogoutDocument, RefreshTokenDocument } from "./operations";
import { navigate } from "./router";

export const client = new ApolloClient({
  link: ApolloLink.from([
    authLink,
    // credentials: "include" sends the refresh cookie (Path=/graphql) with every request,
    // also when VITE_GRAPHQL_URL names another origin of the same site.
    new HttpLink({ uri: GRAPHQL_URL, credentials: "include" }),
  ]),
  cache: new InMemoryCache(),
});

setRefreshRequest(async () => {
  const { data } = await client.mutate({
    mutation: RefreshTokenDocument,
    fetchPolicy: "no-cache",
    context: { gqlAppRefresh: true },
  });
  if (!data) throw new Error("refreshToken answered no data");
  return data.refreshToken;
});

// Another account (or none): nothing cached for the last one may show.
onSessionChange((previous, next) => {
  if (previous.user?.id !== next.user?.id) void client.clearStore().catch(() => undefined);
});

/** "Sign out": end this browser's session (the server clears the cookie), then /sign-in. */
export async function signOut(): Promise<void> {
  try {
    await client.mutate({ mutation: LogoutDocument });
  } catch {
    // No cookie any more, or the API is unreachable: this tab forgets the session anyway.
  }
  endSession({ broadcast: true, redirect: false });
  navigate("/sign-in");
}

/** "Sign out everywhere": end every session of the account, this one included. */
export async function signOutEverywhere(): Promise<void> {
  await client.mutate({ mutation: LogoutAllDocument });
  endSession({ broadcast: true, redirect: false });
  navigate("/sign-in");
}
