import { useApolloClient } from "@apollo/client/react";
import { useEffect, useState } from "react";
import { useSession } from "../auth";
import { graphql } from "../gql";
import { describeError } from "../lib/errors";
import { Link, useLocation } from "../router";

const VerifyEmailDocument = graphql(`
  mutation VerifyEmail($token: String!) {
    verifyEmail(token: $token) {
      id
      email
      isVerified
    }
  }
`);

type Outcome = { ok: true; email: string } | { ok: false; message: string };

// One call per token however often the page mounts (React's development double mount, a
// re-render): a link works once, so a second call would answer INVALID_TOKEN.
const calls = new Map<string, Promise<Outcome>>();

export function VerifyEmailPage() {
  const client = useApolloClient();
  const session = useSession();
  const token = useLocation().params.get("token") ?? "";
  const [outcome, setOutcome] = useState<Outcome | null>(null);

  useEffect(() => {
    if (token === "") {
      setOutcome({ ok: false, message: "This link has no token: open the whole link from the email." });
      return;
    }
    let current = true;
    let call = calls.get(token);
    if (call === undefined) {
      call = client
        .mutate({ mutation: VerifyEmailDocument, variables: { token } })
        .then(({ data }): Outcome => (data ? { ok: true, email: data.verifyEmail.email } : { ok: false, message: "No answer." }))
        .catch((error: unknown): Outcome => ({ ok: false, message: describeError(error) }));
      calls.set(token, call);
    }
    void call.then((result) => {
      if (current) setOutcome(result);
    });
    return () => {
      current = false;
    };
  }, [client, token]);

  return (
    <main data-testid="page-verify-email">
      <h1>Confirm your email address</h1>
      {outcome === null && <p>Confirming…</p>}
      {outcome?.ok === true && (
        <p className="notice" data-testid="verify-ok">
          {outcome.email} is confirmed.{" "}
          {session.status === "signedIn" ? <Link to="/account">Back to your account</Link> : <Link to="/sign-in">Sign in</Link>}
        </p>
      )}
      {outcome?.ok === false && (
        <p className="error" role="alert" data-testid="verify-error">
          {outcome.message}
        </p>
      )}
    </main>
  );
}
