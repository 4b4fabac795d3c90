import { useMutation } from "@apollo/client/react";
import { useState, type FormEvent } from "react";
import { DevMailHint, ErrorLine, FieldErrors, Labelled } from "../components";
import { graphql } from "../gql";
import { describeError, fieldErrors } from "../lib/errors";
import { Link } from "../router";

const RegisterDocument = graphql(`
  mutation Register($input: RegisterInput!) {
    register(input: $input) {
      id
      email
    }
  }
`);

export function SignUpPage() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [fullName, setFullName] = useState("");
  const [register, { data, error, loading }] = useMutation(RegisterDocument);

  async function submit(event: FormEvent): Promise<void> {
    event.preventDefault();
    await register({ variables: { input: { email, password, fullName: fullName || null } } }).catch(() => undefined);
  }

  const fields = fieldErrors(error);
  // Errors on no input of this form (EMAIL_TAKEN, RATE_LIMITED, a network failure).
  const general = error !== undefined && fields.size === 0 ? describeError(error) : null;

  return (
    <main data-testid="page-sign-up">
      <h1>Create an account</h1>
      {data ? (
        <div className="notice" data-testid="signup-done">
          <p>
            Welcome! We mailed a confirmation link to <strong>{data.register.email}</strong>: open it to confirm the
            address. Then <Link to="/sign-in">sign in</Link>.
          </p>
          <DevMailHint />
        </div>
      ) : (
        <form onSubmit={submit} noValidate>
          <Labelled label="Email">
            <input type="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} data-testid="signup-email" required />
          </Labelled>
          <FieldErrors errors={fields.get("email")} />
          <Labelled label="Password (12 to 128 characters)">
            <input type="password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} data-testid="signup-password" required />
          </Labelled>
          <FieldErrors errors={fields.get("password")} />
          <Labelled label="Full name (optional)">
            <input type="text" autoComplete="name" value={fullName} onChange={(e) => setFullName(e.target.value)} data-testid="signup-name" />
          </Labelled>
          <FieldErrors errors={fields.get("fullName")} />
          {/* A field error on something the form has no input for. */}
          <FieldErrors errors={[...fields].filter(([f]) => !["email", "password", "fullName"].includes(f)).flatMap(([, e]) => e)} />
          <ErrorLine testId="signup-error">{general}</ErrorLine>
          <button type="submit" disabled={loading} data-testid="signup-submit">
            Create account
          </button>
          <p>
            Have an account? <Link to="/sign-in">Sign in</Link>.
          </p>
        </form>
      )}
    </main>
  );
}
