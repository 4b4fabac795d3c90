// Operations the whole app shares. Each page keeps its own next to it.
import { graphql } from "./gql";

/** Browser session mode: no argument, the HttpOnly cookie carries the refresh token. */
export const RefreshTokenDocument = graphql(`
  mutation RefreshToken {
    refreshToken {
      accessToken
      user {
        id
        email
        isSuperuser
      }
    }
  }
`);

/** Ends this browser's session; the server clears the cookie. */
export const LogoutDocument = graphql(`
  mutation Logout {
    logout
  }
`);

export const LogoutAllDocument = graphql(`
  mutation LogoutAll {
    logoutAll
  }
`);
