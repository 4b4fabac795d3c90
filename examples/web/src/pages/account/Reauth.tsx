import { useApolloClient } from "@apollo/client/react";
import { useState, type FormEvent, type ReactNode } from "react";
import { ErrorLine, Labelled } from "../../components";
import { graphql } from "../../gql";
import { describeError, hasReason } from "../../lib/errors";

const ReauthenticateDocument = graphql(`
  mutation Reauthenticate($input: ReauthenticateInput!) {
    reauthenticate(input: $input)
  }
`);

/**
 * Changes that need a recent sign-in answer FORBIDDEN / REAUTHENTICATION_REQUIRED: `run`
 * then shows a form that proves it again (the password, and the app's code on an account
 * with a second factor), and runs the action once more when it succeeds.
 */
export function useReauthentication(mfaEnabled: boolean): {
  run: (action: () => Promise<void>) => Promise<void>;
  panel: ReactNode;
  error: string | null;
} {
  const [pending, setPending] = useState<(() => Promise<void>) | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function run(action: () => Promise<void>): Promise<void> {
    setError(null);
    try {
      await action();
    } catch (caught) {
      if (hasReason(caught, "REAUTHENTICATION_REQUIRED")) setPending(() => action);
      else setError(describeError(caught));
    }
  }

  const panel =
    pending === null ? null : (
      <ReauthForm
        mfaEnabled={mfaEnabled}
        onDone={() => {
          const action = pending;
          setPending(null);
          void run(action);
        }}
        onCancel={() => setPending(null)}
      />
    );
  return { run, panel, error };
}

function ReauthForm({ mfaEnabled, onDone, onCancel }: { mfaEnabled: boolean; onDone: () => void; onCancel: () => void }) {
  const client = useApolloClient();
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent): Promise<void> {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await client.mutate({
        mutation: ReauthenticateDocument,
        variables: {
          input: {
            password: password === "" ? null : password,
            factor: code.trim() === "" ? null : { totpCode: code.trim() },
          },
        },
      });
      onDone();
    } catch (caught) {
      setError(describeError(caught));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="reauth" onSubmit={submit} noValidate>
      <p>This change needs a recent sign-in: confirm it is you.</p>
      <Labelled label="Password">
        <input type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} data-testid="reauth-password" />
      </Labelled>
      {mfaEnabled && (
        <Labelled label="Code from your authenticator app">
          <input type="text" inputMode="numeric" autoComplete="one-time-code" value={code} onChange={(e) => setCode(e.target.value)} data-testid="reauth-code" />
        </Labelled>
      )}
      <ErrorLine testId="reauth-error">{error}</ErrorLine>
      <div className="row">
        <button type="submit" disabled={busy} data-testid="reauth-submit">
          Confirm
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
