import { useApolloClient, useMutation, useQuery } from "@apollo/client/react";
import { useState, type FormEvent } from "react";
import { ErrorLine, FieldErrors, Labelled } from "../../components";
import { signOutEverywhere } from "../../client";
import { graphql } from "../../gql";
import { describeError, fieldErrors } from "../../lib/errors";
import { MfaSection } from "./Mfa";
import { PasskeysSection } from "./Passkeys";
import { useReauthentication } from "./Reauth";
import { SessionsSection } from "./Sessions";

// Three queries of their own (Me, MySessions in Sessions.tsx, MyPasskeys in Passkeys.tsx):
// "Reload" refetches them all at once, three requests side by side.
const MeDocument = graphql(`
  query Me {
    me {
      id
      email
      fullName
      isVerified
      mfaEnabled
    }
    myMfa {
      recoveryCodesRemaining
    }
  }
`);

const UpdateNameDocument = graphql(`
  mutation UpdateName($input: UpdateMeInput!) {
    updateMe(input: $input) {
      id
      fullName
    }
  }
`);

const RequestEmailVerificationDocument = graphql(`
  mutation RequestEmailVerification {
    requestEmailVerification
  }
`);

const ChangePasswordDocument = graphql(`
  mutation ChangePassword($input: ChangePasswordInput!) {
    changePassword(input: $input)
  }
`);

export function AccountPage() {
  const client = useApolloClient();
  const { data, error } = useQuery(MeDocument);
  const [reloading, setReloading] = useState(false);
  const [everywhereError, setEverywhereError] = useState<string | null>(null);

  async function reload(): Promise<void> {
    setReloading(true);
    try {
      await client.refetchQueries({ include: "active" });
    } catch {
      // Each section shows its own error.
    } finally {
      setReloading(false);
    }
  }

  function everywhere(): void {
    setEverywhereError(null);
    signOutEverywhere().catch((caught: unknown) => setEverywhereError(describeError(caught)));
  }

  const me = data?.me;
  return (
    <main data-testid="page-account">
      <h1>Your account</h1>
      <p className="row">
        <button type="button" className="secondary" onClick={() => void reload()} disabled={reloading} data-testid="account-reload">
          Reload
        </button>
        <button type="button" className="secondary" onClick={everywhere} data-testid="sign-out-everywhere">
          Sign out everywhere
        </button>
      </p>
      <ErrorLine>{everywhereError}</ErrorLine>
      {error && !me && <ErrorLine>{describeError(error)}</ErrorLine>}
      {me && (
        <>
          <Profile email={me.email} fullName={me.fullName ?? null} isVerified={me.isVerified} />
          <ChangePassword mfaEnabled={me.mfaEnabled} />
        </>
      )}
      <SessionsSection />
      {me && data && <MfaSection mfaEnabled={me.mfaEnabled} recoveryCodesRemaining={data.myMfa.recoveryCodesRemaining} />}
      <PasskeysSection mfaEnabled={me?.mfaEnabled ?? false} />
    </main>
  );
}

function Profile({ email, fullName, isVerified }: { email: string; fullName: string | null; isVerified: boolean }) {
  const [name, setName] = useState(fullName ?? "");
  const [updateName, update] = useMutation(UpdateNameDocument);
  const [resend, resent] = useMutation(RequestEmailVerificationDocument);
  const fields = fieldErrors(update.error);

  function saveName(event: FormEvent): void {
    event.preventDefault();
    // The answer's User (same id) updates Me in the cache.
    void updateName({ variables: { input: { fullName: name } } }).catch(() => undefined);
  }

  return (
    <section>
      <h2>Profile</h2>
      <p>
        Email: <strong data-testid="account-email">{email}</strong>{" "}
        {isVerified ? (
          <span className="badge">confirmed</span>
        ) : (
          <>
            <span className="badge warn">not confirmed</span>{" "}
            <button type="button" className="link" onClick={() => void resend().catch(() => undefined)} disabled={resent.loading} data-testid="resend-verification">
              Mail a new confirmation link
            </button>
            {resent.data?.requestEmailVerification && <span> Sent.</span>}
          </>
        )}
      </p>
      <ErrorLine>{resent.error ? describeError(resent.error) : null}</ErrorLine>
      <form onSubmit={saveName} className="inline" noValidate>
        <Labelled label="Name">
          <input type="text" autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} data-testid="profile-name" />
        </Labelled>
        <button type="submit" disabled={update.loading || name === (fullName ?? "")} data-testid="profile-save">
          Save
        </button>
        {update.data && !update.loading && name === (update.data.updateMe.fullName ?? "") && <span data-testid="profile-saved"> Saved.</span>}
      </form>
      <FieldErrors errors={fields.get("fullName")} />
      <ErrorLine>{update.error && fields.size === 0 ? describeError(update.error) : null}</ErrorLine>
    </section>
  );
}

function ChangePassword({ mfaEnabled }: { mfaEnabled: boolean }) {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [done, setDone] = useState(false);
  const [changePassword, { error, loading }] = useMutation(ChangePasswordDocument, {
    // Every other session ended.
    refetchQueries: ["MySessions"],
  });
  // On an account with a second factor this needs a recent sign-in with it.
  const reauth = useReauthentication(mfaEnabled);
  const fields = fieldErrors(error);

  function submit(event: FormEvent): void {
    event.preventDefault();
    setDone(false);
    void reauth.run(async () => {
      await changePassword({ variables: { input: { currentPassword: current, newPassword: next } } });
      setDone(true);
      setCurrent("");
      setNext("");
    });
  }

  return (
    <section>
      <h2>Password</h2>
      <form onSubmit={submit} noValidate>
        <Labelled label="Current password">
          <input type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} data-testid="password-current" />
        </Labelled>
        <FieldErrors errors={fields.get("currentPassword")} />
        <Labelled label="New password (12 to 128 characters)">
          <input type="password" autoComplete="new-password" value={next} onChange={(e) => setNext(e.target.value)} data-testid="password-new" />
        </Labelled>
        <FieldErrors errors={fields.get("newPassword")} />
        <ErrorLine>{fields.size === 0 ? reauth.error : null}</ErrorLine>
        <button type="submit" disabled={loading} data-testid="password-submit">
          Change password
        </button>
        {done && (
          <p className="notice" data-testid="password-done">
            Password changed. Your other sessions have ended.
          </p>
        )}
      </form>
      {reauth.panel}
    </section>
  );
}
