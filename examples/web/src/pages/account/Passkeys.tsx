import { useApolloClient, useQuery } from "@apollo/client/react";
import { useState } from "react";
import { ErrorLine, formatDate, Labelled } from "../../components";
import { graphql } from "../../gql";
import { describeError } from "../../lib/errors";
import { createPasskey, describeCeremonyError, passkeysSupported } from "../../lib/webauthn";
import { useReauthentication } from "./Reauth";

const MyPasskeysDocument = graphql(`
  query MyPasskeys {
    myPasskeys {
      id
      name
      createdAt
      lastUsedAt
      backedUp
      transports
    }
  }
`);

const StartPasskeyRegistrationDocument = graphql(`
  mutation StartPasskeyRegistration {
    startPasskeyRegistration {
      challengeId
      options
    }
  }
`);

const FinishPasskeyRegistrationDocument = graphql(`
  mutation FinishPasskeyRegistration($input: FinishPasskeyRegistrationInput!) {
    finishPasskeyRegistration(input: $input) {
      id
      name
    }
  }
`);

const DeletePasskeyDocument = graphql(`
  mutation DeletePasskey($id: ID!) {
    deletePasskey(id: $id)
  }
`);

export function PasskeysSection({ mfaEnabled }: { mfaEnabled: boolean }) {
  const client = useApolloClient();
  const { data, error } = useQuery(MyPasskeysDocument);
  const reauth = useReauthentication(mfaEnabled);
  const [name, setName] = useState("");
  const [ceremonyError, setCeremonyError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const add = () =>
    reauth.run(async () => {
      setCeremonyError(null);
      setBusy(true);
      try {
        const start = await client.mutate({ mutation: StartPasskeyRegistrationDocument });
        if (!start.data) return;
        const { challengeId, options } = start.data.startPasskeyRegistration;
        let credential: unknown;
        try {
          credential = await createPasskey(options);
        } catch (caught) {
          setCeremonyError(describeCeremonyError(caught) ?? describeError(caught));
          return;
        }
        await client.mutate({
          mutation: FinishPasskeyRegistrationDocument,
          variables: { input: { challengeId, credential, name: name.trim() || null } },
          refetchQueries: ["MyPasskeys"],
        });
        setName("");
      } finally {
        setBusy(false);
      }
    });

  const remove = (id: string) =>
    reauth.run(async () => {
      await client.mutate({ mutation: DeletePasskeyDocument, variables: { id }, refetchQueries: ["MyPasskeys"] });
    });

  return (
    <section>
      <h2>Passkeys</h2>
      {error && !data && <ErrorLine>{describeError(error)}</ErrorLine>}
      {data && data.myPasskeys.length === 0 && <p>None yet. A passkey signs you in without a password.</p>}
      {data && data.myPasskeys.length > 0 && (
        <ul className="plain">
          {data.myPasskeys.map((p) => (
            <li key={p.id} data-testid="passkey-row">
              <strong>{p.name}</strong> · added {formatDate(p.createdAt)} · last used {formatDate(p.lastUsedAt)}
              {p.backedUp ? " · synced" : " · on this device only"}{" "}
              <button type="button" className="link" onClick={() => void remove(p.id)} data-testid="passkey-remove">
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
      {/* No ceremony can finish here: offer none (removing a passkey needs no WebAuthn). */}
      {passkeysSupported() ? (
        <div className="inline">
          <Labelled label="Name (optional)">
            <input type="text" value={name} maxLength={64} onChange={(e) => setName(e.target.value)} data-testid="passkey-name" />
          </Labelled>
          <button type="button" onClick={() => void add()} disabled={busy} data-testid="passkey-add">
            Add a passkey
          </button>
        </div>
      ) : (
        <p className="hint">This browser cannot add passkeys here (it needs WebAuthn's JSON methods and a secure context).</p>
      )}
      <ErrorLine>{ceremonyError ?? reauth.error}</ErrorLine>
      {reauth.panel}
    </section>
  );
}
