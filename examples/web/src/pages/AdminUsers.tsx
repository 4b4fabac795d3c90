import { useQuery } from "@apollo/client/react";
import { useEffect, useState } from "react";
import { ErrorLine, formatDate } from "../components";
import { graphql } from "../gql";
import { describeError } from "../lib/errors";

const PAGE_SIZE = 20;

const UsersDocument = graphql(`
  query Users($first: Int, $after: String, $filter: UserFilter) {
    users(first: $first, after: $after, filter: $filter) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        cursor
        node {
          id
          email
          fullName
          isActive
          isSuperuser
          isVerified
          mfaEnabled
          createdAt
        }
      }
    }
  }
`);

export function AdminUsersPage() {
  const [typed, setTyped] = useState("");
  const [search, setSearch] = useState("");
  // The cursors of the pages before this one ("after" of each), for Previous.
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const after = cursors[cursors.length - 1] ?? null;

  // Search as the user types, a moment after the last key; a new search starts at page one.
  useEffect(() => {
    if (typed.trim() === search) return;
    const timer = window.setTimeout(() => {
      setSearch(typed.trim());
      setCursors([null]);
    }, 250);
    return () => window.clearTimeout(timer);
  }, [typed, search]);

  const { data, previousData, error, loading } = useQuery(UsersDocument, {
    variables: { first: PAGE_SIZE, after, filter: search === "" ? null : { search } },
  });
  const users = (data ?? previousData)?.users;

  return (
    <main data-testid="page-admin-users">
      <h1>Users</h1>
      <form className="inline" onSubmit={(e) => { e.preventDefault(); setSearch(typed.trim()); setCursors([null]); }}>
        <label className="field">
          <span>Search email or name</span>
          <input type="search" value={typed} onChange={(e) => setTyped(e.target.value)} data-testid="admin-search" />
        </label>
      </form>
      {error && <ErrorLine>{describeError(error)}</ErrorLine>}
      {users && (
        <>
          <p className="hint">
            {users.totalCount} matching · page {cursors.length}
            {loading ? " · loading…" : ""}
          </p>
          <table>
            <thead>
              <tr>
                <th>Email</th>
                <th>Name</th>
                <th>Flags</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {users.edges.map(({ node }) => (
                <tr key={node.id} data-testid="admin-user-row">
                  <td>{node.email}</td>
                  <td>{node.fullName ?? ""}</td>
                  <td>
                    {[
                      node.isSuperuser && "superuser",
                      !node.isActive && "deactivated",
                      node.isVerified ? "confirmed" : "unconfirmed",
                      node.mfaEnabled && "2FA",
                    ]
                      .filter(Boolean)
                      .join(", ")}
                  </td>
                  <td>{formatDate(node.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="row">
            <button type="button" className="secondary" disabled={cursors.length === 1 || loading} onClick={() => setCursors(cursors.slice(0, -1))} data-testid="admin-previous">
              Previous
            </button>
            <button
              type="button"
              className="secondary"
              disabled={!users.pageInfo.hasNextPage || loading}
              onClick={() => setCursors([...cursors, users.pageInfo.endCursor ?? null])}
              data-testid="admin-next"
            >
              Next
            </button>
          </p>
        </>
      )}
    </main>
  );
}
