import { useApolloClient } from "@apollo/client/react";
import { useState, type FormEvent } from "react";
import { acceptAccess, useSession, type IssuedAccess } from "../auth";
import { ErrorLine, FieldErrors, Labelled } from "../components";
import { graphql } from "../gql";
import { describeError, fieldErrors, firstApiError, type ApiError, type FieldError } from "../lib/errors";
import { describeCeremonyError, getPasskey, passkeysSupported } from "../lib/webauthn";
import { Link, localPath, navigate, useLocation } from "../router";

const LoginDocument = graphql(`
  mutation Login($input: LoginInput!) {
    login(input: $input) {
      accessToken
      user {
        id
        email
        isSuperuser
      }
    }
  }
`);

const CompleteLoginDocument = graphql(`
  mutation CompleteLogin($input: CompleteLoginInput!) {
    completeLogin(input: $input) {
      accessToken
      user {
        id
        email
        isSuperuser
      }
    }
  }
`);

const StartPasskeySignInDocument = graphql(`
  mutation StartPasskeySignIn {
    startPasskeySignIn {
      challengeId
      options
    }
  }
`);

const FinishPasskeySignInDocument = graphql(`
  mutation FinishPasskeySignIn($input: FinishPasskeySignInInput!) {
    finishPasskeySignIn(input: $input) {
      accessToken
      user {
        id
        email
        isSuperuser
      }
    }
  }
`);

/** MFA_REQUIRED's extensions (README, "Second factors"), kept in memory only. */
interface MfaStep {
  challenge: string;
  methods: string[];
  passkeyOptions: { challengeId: string; options: unknown } | null;
}

function mfaStepOf(error: ApiError | undefined): MfaStep | null {
  if (error?.code !== "MFA_REQUIRED") return null;
  const { challenge, methods, passkeyOptions } = error.extensions;
  if (typeof challenge !== "string") return null;
  const options =
    typeof passkeyOptions === "object" && passkeyOptions !== null && typeof (passkeyOptions as Record<string, unknown>)["challengeId"] === "string"
      ? { challengeId: (passkeyOptions as Record<string, unknown>)["challengeId"] as string, options: (passkeyOptions as Record<string, unknown>)["options"] }
      : null;
  return {
    challenge,
    methods: Array.isArray(methods) ? methods.filter((m): m is string => typeof m === "string") : ["TOTP"],
    passkeyOptions: options,
  };
}

export function SignInPage() {
  const client = useApolloClient();
  const session = useSession();
  const { state } = useLocation();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [useRecovery, setUseRecovery] = useState(false);
  const [mfa, setMfa] = useState<MfaStep | null>(null);
  const [error, setError] = useState<string | null>(null);
  // BAD_USER_INPUT: shown beside the inputs (and then no error line).
  const [fields, setFields] = useState<Map<string, FieldError[]>>(new Map());
  const [busy, setBusy] = useState(false);
  const passkeys = passkeysSupported();

  function signedIn(issued: IssuedAccess): void {
    acceptAccess(issued, "sign-in");
    navigate(localPath(state?.next) ?? "/account", { replace: true });
  }

  /** Runs one step; MFA_REQUIRED moves to the second step, other errors are shown. */
  async function attempt(step: () => Promise<IssuedAccess>): Promise<void> {
    setBusy(true);
    setError(null);
    setFields(new Map());
    try {
      signedIn(await step());
    } catch (caught) {
      const ceremony = describeCeremonyError(caught);
      const first = firstApiError(caught);
      const next = mfaStepOf(first);
      if (next !== null) {
        setMfa(next);
        setCode("");
        setUseRecovery(false);
      } else {
        if (first?.reason === "MFA_CHALLENGE_INVALID") setMfa(null); // start over with the password
        const byField = fieldErrors(caught);
        setFields(byField);
        setError(byField.size > 0 ? null : (ceremony ?? describeError(caught)));
      }
    } finally {
      setBusy(false);
    }
  }

  function submitPassword(event: FormEvent): void {
    event.preventDefault();
    void attempt(async () => {
      const { data } = await client.mutate({ mutation: LoginDocument, variables: { input: { email, password } } });
      if (!data) throw new Error("login answered no data");
      return data.login;
    });
  }

  function submitCode(event: FormEvent): void {
    event.preventDefault();
    if (mfa === null) return;
    const factor = useRecovery ? { recoveryCode: code.trim() } : { totpCode: code.trim() };
    void attempt(async () => {
      const { data } = await client.mutate({
        mutation: CompleteLoginDocument,
        variables: { input: { challenge: mfa.challenge, factor } },
      });
      if (!data) throw new Error("completeLogin answered no data");
      return data.completeLogin;
    });
  }

  function secondStepWithPasskey(): void {
    if (mfa?.passkeyOptions == null) return;
    const { challengeId, options } = mfa.passkeyOptions;
    void attempt(async () => {
      const credential = await getPasskey(options);
      try {
        const { data } = await client.mutate({
          mutation: CompleteLoginDocument,
          variables: { input: { challenge: mfa.challenge, factor: { passkey: { challengeId, credential } } } },
        });
        if (!data) throw new Error("completeLogin answered no data");
        return data.completeLogin;
      } catch (caught) {
        // The server judged this passkey: its challenge is used, right or wrong, so a second
        // click could only fail. Hide the button (the code, or "Start over", remain).
        if (firstApiError(caught) !== undefined) setMfa((step) => (step === null ? null : { ...step, passkeyOptions: null }));
        throw caught;
      }
    });
  }

  function signInWithPasskey(): void {
    void attempt(async () => {
      const start = await client.mutate({ mutation: StartPasskeySignInDocument });
      if (!start.data) throw new Error("startPasskeySignIn answered no data");
      const { challengeId, options } = start.data.startPasskeySignIn;
      const credential = await getPasskey(options);
      const { data } = await client.mutate({
        mutation: FinishPasskeySignInDocument,
        variables: { input: { challengeId, credential } },
      });
      if (!data) throw new Error("finishPasskeySignIn answered no data");
      return data.finishPasskeySignIn;
    });
  }

  return (
    <main data-testid="page-sign-in">
      <h1>Sign in</h1>
      {session.status === "signedIn" && (
        <p className="hint">
          You are signed in as {session.user.email}. <Link to="/account">Your account</Link>
        </p>
      )}
      {mfa === null ? (
        <>
          <form onSubmit={submitPassword} noValidate>
            <Labelled label="Email">
              <input type="email" autoComplete="username" value={email} onChange={(e) => setEmail(e.target.value)} data-testid="signin-email" required />
            </Labelled>
            <FieldErrors errors={fields.get("email")} />
            <Labelled label="Password">
              <input type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} data-testid="signin-password" required />
            </Labelled>
            <FieldErrors errors={fields.get("password")} />
            {/* A field error on something the form has no input for. */}
            <FieldErrors errors={[...fields].filter(([f]) => f !== "email" && f !== "password").flatMap(([, e]) => e)} />
            <ErrorLine testId="signin-error">{error}</ErrorLine>
            <button type="submit" disabled={busy} data-testid="signin-submit">
              Sign in
            </button>
          </form>
          {passkeys && (
            <p>
              <button type="button" className="secondary" onClick={signInWithPasskey} disabled={busy} data-testid="passkey-signin">
                Sign in with a passkey
              </button>
            </p>
          )}
          <p>
            <Link to="/reset-password">Forgot your password?</Link> · No account? <Link to="/sign-up">Create one</Link>.
          </p>
        </>
      ) : (
        <form onSubmit={submitCode} noValidate>
          <h2>Second step</h2>
          <p>
            {useRecovery
              ? "Enter one of your recovery codes (each works once)."
              : "Enter the 6-digit code your authenticator app shows."}
          </p>
          <Labelled label={useRecovery ? "Recovery code" : "Code"}>
            <input
              type="text"
              inputMode={useRecovery ? "text" : "numeric"}
              autoComplete="one-time-code"
              value={code}
              onChange={(e) => setCode(e.target.value)}
              data-testid="mfa-code"
              autoFocus
            />
          </Labelled>
          {/* The step has one input: every field error (the code's, the challenge's) goes beside it. */}
          <FieldErrors errors={[...fields.values()].flat()} />
          <ErrorLine testId="signin-error">{error}</ErrorLine>
          <button type="submit" disabled={busy || code.trim() === ""} data-testid="mfa-submit">
            Continue
          </button>
          <p className="row">
            {mfa.methods.includes("RECOVERY_CODE") && (
              <button type="button" className="link" onClick={() => setUseRecovery(!useRecovery)} data-testid="mfa-toggle-recovery">
                {useRecovery ? "Use the app's code" : "Use a recovery code"}
              </button>
            )}
            {passkeys && mfa.methods.includes("PASSKEY") && mfa.passkeyOptions !== null && (
              <button type="button" className="link" onClick={secondStepWithPasskey} disabled={busy} data-testid="mfa-passkey">
                Use a passkey
              </button>
            )}
            <button type="button" className="link" onClick={() => { setMfa(null); setError(null); setFields(new Map()); }}>
              Start over
            </button>
          </p>
        </form>
      )}
    </main>
  );
}
