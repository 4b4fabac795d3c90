import { useApolloClient } from "@apollo/client/react";
import { useState, type FormEvent } from "react";
import { ErrorLine, FieldErrors, Labelled } from "../../components";
import { graphql } from "../../gql";
import { fieldErrors, hasReason, type FieldError } from "../../lib/errors";
import { useReauthentication } from "./Reauth";

const StartTotpEnrollmentDocument = graphql(`
  mutation StartTotpEnrollment {
    startTotpEnrollment {
      secret
      otpauthUri
      qrCodeSvg
    }
  }
`);

const ConfirmTotpEnrollmentDocument = graphql(`
  mutation ConfirmTotpEnrollment($code: String!) {
    confirmTotpEnrollment(code: $code)
  }
`);

const DisableTotpDocument = graphql(`
  mutation DisableTotp {
    disableTotp
  }
`);

const RegenerateRecoveryCodesDocument = graphql(`
  mutation RegenerateRecoveryCodes {
    regenerateRecoveryCodes
  }
`);

interface Enrollment {
  secret: string;
  otpauthUri: string;
  qrCodeSvg: string;
}

/** The QR code is an SVG document without script (README): shown as an image. */
function svgDataUrl(svg: string): string {
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
}

function RecoveryCodes({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  function download(): void {
    const url = URL.createObjectURL(new Blob([codes.join("\n") + "\n"], { type: "text/plain" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = "gql-app-recovery-codes.txt";
    a.click();
    URL.revokeObjectURL(url);
  }
  return (
    <div className="notice">
      <p>
        <strong>Save these recovery codes now</strong>: they are shown this once. Each signs you in once if you lose the
        app.
      </p>
      <ol className="codes" data-testid="recovery-codes">
        {codes.map((c) => (
          <li key={c}>
            <code>{c}</code>
          </li>
        ))}
      </ol>
      <p className="row">
        <button type="button" className="secondary" onClick={download}>
          Download
        </button>
        <button type="button" onClick={onDone} data-testid="recovery-codes-saved">
          I saved them
        </button>
      </p>
    </div>
  );
}

export function MfaSection({ mfaEnabled, recoveryCodesRemaining }: { mfaEnabled: boolean; recoveryCodesRemaining: number }) {
  const client = useApolloClient();
  const reauth = useReauthentication(mfaEnabled);
  const [enrollment, setEnrollment] = useState<Enrollment | null>(null);
  const [code, setCode] = useState("");
  const [codeErrors, setCodeErrors] = useState<FieldError[] | undefined>(undefined);
  const [recoveryCodes, setRecoveryCodes] = useState<string[] | null>(null);

  const start = () =>
    reauth.run(async () => {
      const { data } = await client.mutate({ mutation: StartTotpEnrollmentDocument });
      if (data) setEnrollment(data.startTotpEnrollment);
      setCode("");
      setCodeErrors(undefined);
    });

  function confirm(event: FormEvent): void {
    event.preventDefault();
    setCodeErrors(undefined);
    void reauth.run(async () => {
      try {
        const { data } = await client.mutate({
          mutation: ConfirmTotpEnrollmentDocument,
          variables: { code: code.trim() },
          refetchQueries: ["Me"],
        });
        if (data) setRecoveryCodes(data.confirmTotpEnrollment);
        setEnrollment(null);
      } catch (caught) {
        const fields = fieldErrors(caught).get("code");
        if (fields === undefined || hasReason(caught, "REAUTHENTICATION_REQUIRED")) throw caught;
        setCodeErrors(fields); // WRONG_CODE: wait for the next code and confirm again
      }
    });
  }

  const disable = () =>
    reauth.run(async () => {
      await client.mutate({ mutation: DisableTotpDocument, refetchQueries: ["Me"] });
    });

  const regenerate = () =>
    reauth.run(async () => {
      const { data } = await client.mutate({ mutation: RegenerateRecoveryCodesDocument, refetchQueries: ["Me"] });
      if (data) setRecoveryCodes(data.regenerateRecoveryCodes);
    });

  return (
    <section>
      <h2>Authenticator app</h2>
      {recoveryCodes !== null && <RecoveryCodes codes={recoveryCodes} onDone={() => setRecoveryCodes(null)} />}
      {mfaEnabled ? (
        <>
          <p>
            On. Signing in asks for a code from the app. Recovery codes left: {recoveryCodesRemaining}.
          </p>
          <p className="row">
            <button type="button" className="secondary" onClick={() => void regenerate()} data-testid="mfa-regenerate">
              New recovery codes
            </button>
            <button type="button" className="secondary" onClick={() => void disable()} data-testid="mfa-disable">
              Turn off
            </button>
          </p>
        </>
      ) : enrollment === null ? (
        <>
          <p>Off. Add an authenticator app for a second step at sign-in.</p>
          <button type="button" onClick={() => void start()} data-testid="mfa-start">
            Set up an authenticator app
          </button>
        </>
      ) : (
        <form onSubmit={confirm} noValidate>
          <p>Scan this with the app, or type the secret in by hand, then enter the code it shows.</p>
          <img className="qr" src={svgDataUrl(enrollment.qrCodeSvg)} alt="QR code of the authenticator app's setup link" data-testid="mfa-qr" />
          <p>
            Secret: <code data-testid="mfa-secret">{enrollment.secret}</code> ·{" "}
            <a href={enrollment.otpauthUri}>open in an app on this device</a>
          </p>
          <Labelled label="Code from the app">
            <input type="text" inputMode="numeric" autoComplete="one-time-code" value={code} onChange={(e) => setCode(e.target.value)} data-testid="mfa-confirm-code" />
          </Labelled>
          <FieldErrors errors={codeErrors} />
          <p className="row">
            <button type="submit" disabled={code.trim() === ""} data-testid="mfa-confirm">
              Turn on
            </button>
            <button type="button" className="secondary" onClick={() => setEnrollment(null)}>
              Cancel
            </button>
          </p>
        </form>
      )}
      <ErrorLine>{reauth.error}</ErrorLine>
      {reauth.panel}
    </section>
  );
}
