import { useMutation } from "@apollo/client/react";
import { useState, type FormEvent } from "react";
import { endSession } from "../auth";
import { DevMailHint, ErrorLine, FieldErrors, Labelled } from "../components";
import { graphql } from "../gql";
import { describeError, fieldErrors } from "../lib/errors";
import { Link, useLocation } from "../router";

const RequestPasswordResetDocument = graphql(`
  mutation RequestPasswordReset($email: String!) {
    requestPasswordReset(email: $email)
  }
`);

const ResetPasswordDocument = graphql(`
  mutation ResetPassword($input: ResetPasswordInput!) {
    resetPassword(input: $input)
  }
`);

/** Without ?token=: ask for a link. With it (the emailed link): choose the new password. */
export function ResetPasswordPage() {
  const token = useLocation().params.get("token");
  return (
    <main data-testid="page-reset-password">
      <h1>Reset your password</h1>
      {token === null || token === "" ? <RequestLink /> : <ChooseNewPassword token={token} />}
    </main>
  );
}

function RequestLink() {
  const [email, setEmail] = useState("");
  const [request, { data, error, loading }] = useMutation(RequestPasswordResetDocument);
  const fields = fieldErrors(error);

  function submit(event: FormEvent): void {
    event.preventDefault();
    void request({ variables: { email } }).catch(() => undefined);
  }

  if (data?.requestPasswordReset) {
    return (
      <div className="notice" data-testid="reset-request-done">
        <p>If an account uses {email}, a link to reset its password is on its way (valid for an hour).</p>
        <DevMailHint />
      </div>
    );
  }
  return (
    <form onSubmit={submit} noValidate>
      <Labelled label="Email">
        <input type="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} data-testid="reset-email" />
      </Labelled>
      <FieldErrors errors={fields.get("email")} />
      <ErrorLine testId="reset-error">{error && fields.size === 0 ? describeError(error) : null}</ErrorLine>
      <button type="submit" disabled={loading} data-testid="reset-request-submit">
        Mail me a link
      </button>
    </form>
  );
}

function ChooseNewPassword({ token }: { token: string }) {
  const [password, setPassword] = useState("");
  const [reset, { data, error, loading }] = useMutation(ResetPasswordDocument);
  const fields = fieldErrors(error);

  async function submit(event: FormEvent): Promise<void> {
    event.preventDefault();
    const result = await reset({ variables: { input: { token, newPassword: password } } }).catch(() => null);
    // Every session of the account ended and the server cleared this browser's cookie.
    if (result?.data?.resetPassword) endSession({ broadcast: true, redirect: false });
  }

  if (data?.resetPassword) {
    return (
      <p className="notice" data-testid="reset-done">
        Your password is changed, and every session of the account ended. <Link to="/sign-in">Sign in</Link> with the new
        password.
      </p>
    );
  }
  return (
    <form onSubmit={submit} noValidate>
      <Labelled label="New password (12 to 128 characters)">
        <input type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} data-testid="reset-new-password" />
      </Labelled>
      <FieldErrors errors={fields.get("newPassword")} />
      <FieldErrors errors={fields.get("token")} />
      <ErrorLine testId="reset-error">{error && fields.size === 0 ? describeError(error) : null}</ErrorLine>
      <button type="submit" disabled={loading} data-testid="reset-submit">
        Set the new password
      </button>
    </form>
  );
}
