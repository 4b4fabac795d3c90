// Passkey ceremonies with the browser's own WebAuthn JSON parsers: the server's `options` are
// WebAuthn Level 3's JSON form, and credential.toJSON() is what it takes back.

export class PasskeyUnavailableError extends Error {
  constructor() {
    super("This browser cannot use passkeys here (it needs WebAuthn's JSON methods and a secure context).");
    this.name = "PasskeyUnavailableError";
  }
}

/**
 * Whether this browser, here, can run the ceremonies below: WebAuthn in a secure context, with
 * the JSON parsers and credential.toJSON(). Pages hide their passkey buttons otherwise, rather
 * than start a ceremony (and spend a server challenge) that cannot finish.
 */
export function passkeysSupported(): boolean {
  return (
    window.isSecureContext &&
    typeof window.PublicKeyCredential === "function" &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function" &&
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
    typeof PublicKeyCredential.prototype.toJSON === "function"
  );
}

function toJSON(credential: Credential | null): unknown {
  if (!(credential instanceof PublicKeyCredential)) throw new Error("The browser answered no passkey.");
  return credential.toJSON();
}

/** Sign in (or prove a second factor) with a passkey: navigator.credentials.get(). */
export async function getPasskey(options: unknown): Promise<unknown> {
  if (!passkeysSupported()) throw new PasskeyUnavailableError();
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options as PublicKeyCredentialRequestOptionsJSON);
  return toJSON(await navigator.credentials.get({ publicKey }));
}

/** Make a passkey: navigator.credentials.create(). */
export async function createPasskey(options: unknown): Promise<unknown> {
  if (!passkeysSupported()) throw new PasskeyUnavailableError();
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options as PublicKeyCredentialCreationOptionsJSON);
  return toJSON(await navigator.credentials.create({ publicKey }));
}

/** A line for a person about a failed ceremony that never reached the server. */
export function describeCeremonyError(error: unknown): string | null {
  if (error instanceof PasskeyUnavailableError) return error.message;
  if (error instanceof DOMException) {
    if (error.name === "NotAllowedError") return "The passkey request was cancelled or timed out.";
    if (error.name === "InvalidStateError") return "This authenticator has a passkey for this account already.";
    return `The browser refused: ${error.name}.`;
  }
  return null;
}
