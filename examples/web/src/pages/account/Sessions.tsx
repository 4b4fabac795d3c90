import { useMutation, useQuery } from "@apollo/client/react";
import { useState } from "react";
import { endSession } from "../../auth";
import { ErrorLine, formatDate } from "../../components";
import { graphql } from "../../gql";
import { describeError } from "../../lib/errors";

const MySessionsDocument = graphql(`
  query MySessions {
    mySessions {
      id
      createdAt
      lastUsedAt
      expiresAt
      userAgent
      ipAddress
      current
      authMethods
    }
  }
`);

const RevokeSessionDocument = graphql(`
  mutation RevokeSession($id: ID!) {
    revokeSession(id: $id)
  }
`);

export function SessionsSection() {
  const { data, error } = useQuery(MySessionsDocument);
  const [revoke] = useMutation(RevokeSessionDocument);
  const [revokeError, setRevokeError] = useState<string | null>(null);

  async function revokeOne(id: string, current: boolean): Promise<void> {
    setRevokeError(null);
    try {
      await revoke({ variables: { id }, refetchQueries: current ? [] : ["MySessions"] });
      // Revoking this browser's own session is signing out: the server cleared the cookie.
      if (current) endSession({ broadcast: true, redirect: true });
    } catch (caught) {
      setRevokeError(describeError(caught));
    }
  }

  return (
    <section>
      <h2>Sessions</h2>
      {error && !data && <ErrorLine>{describeError(error)}</ErrorLine>}
      <ErrorLine>{revokeError}</ErrorLine>
      {data && (
        <table>
          <thead>
            <tr>
              <th>Device</th>
              <th>Address</th>
              <th>Signed in</th>
              <th>Last used</th>
              <th>How</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {data.mySessions.map((s) => (
              <tr key={s.id} data-testid="session-row" data-current={s.current ? "true" : "false"}>
                <td>
                  {s.userAgent ?? "unknown"} {s.current && <span className="badge">this browser</span>}
                </td>
                <td>{s.ipAddress ?? "unknown"}</td>
                <td>{formatDate(s.createdAt)}</td>
                <td>{formatDate(s.lastUsedAt)}</td>
                <td>{s.authMethods.join(", ")}</td>
                <td>
                  <button type="button" className="secondary" onClick={() => void revokeOne(s.id, s.current)} data-testid="session-revoke">
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
