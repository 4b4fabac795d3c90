// Reading the API's errors: every error carries extensions.code and extensions.reason
// (README, "Errors"). The app branches on those only, never on a message.
import { CombinedGraphQLErrors } from "@apollo/client/errors";
import type { GraphQLFormattedError } from "graphql";

export interface FieldError {
  field: string;
  code: string;
  message: string;
}

export interface ApiError {
  code: string;
  reason: string;
  message: string;
  extensions: Readonly<Record<string, unknown>>;
  fields: FieldError[];
}

function asString(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function toApiError(error: GraphQLFormattedError): ApiError {
  const extensions = error.extensions ?? {};
  const code = asString(extensions["code"]) ?? "UNKNOWN";
  const rawFields = Array.isArray(extensions["fields"]) ? (extensions["fields"] as unknown[]) : [];
  const fields = rawFields.flatMap((entry): FieldError[] => {
    if (typeof entry !== "object" || entry === null) return [];
    const record = entry as Record<string, unknown>;
    const field = asString(record["field"]);
    return field === undefined
      ? []
      : [{ field, code: asString(record["code"]) ?? "", message: asString(record["message"]) ?? "" }];
  });
  return { code, reason: asString(extensions["reason"]) ?? code, message: error.message, extensions, fields };
}

/** The GraphQL errors of anything Apollo threw or reported; [] for a network failure. */
export function apiErrors(error: unknown): ApiError[] {
  return CombinedGraphQLErrors.is(error) ? error.errors.map(toApiError) : [];
}

/** The first GraphQL error, or undefined (a network failure, or no error). */
export function firstApiError(error: unknown): ApiError | undefined {
  return apiErrors(error)[0];
}

export function hasReason(error: unknown, reason: string): boolean {
  return apiErrors(error).some((e) => e.reason === reason);
}

/** BAD_USER_INPUT's field errors, by field name. */
export function fieldErrors(error: unknown): Map<string, FieldError[]> {
  const byField = new Map<string, FieldError[]>();
  for (const e of apiErrors(error)) {
    if (e.code !== "BAD_USER_INPUT") continue;
    for (const field of e.fields) byField.set(field.field, [...(byField.get(field.field) ?? []), field]);
  }
  return byField;
}

const SENTENCES: Readonly<Record<string, string>> = {
  INVALID_CREDENTIALS: "Wrong email or password.",
  INVALID_MFA_CODE: "That code is not right (or was used already). Try the next one.",
  MFA_CHALLENGE_INVALID: "The sign-in took too long or failed too often. Start again with your password.",
  PASSKEY_CHALLENGE_INVALID: "The passkey request expired. Try again.",
  PASSKEY_NOT_RECOGNISED: "This passkey is not known here. Sign in with your password.",
  PASSKEY_VERIFICATION_FAILED: "The passkey could not be verified.",
  ACCOUNT_DISABLED: "This account is deactivated.",
  EMAIL_NOT_VERIFIED: "Confirm your email address first (see the link we mailed).",
  EMAIL_TAKEN: "An account uses this address already.",
  REAUTHENTICATION_REQUIRED: "Confirm it is you first.",
  RATE_LIMITED: "Too many attempts. Wait a little and try again.",
  LOGIN_LOCKED: "Too many failed sign-ins to this address. Wait, or reset the password.",
  TOO_MANY_PASSKEYS: "You have 10 passkeys already; remove one first.",
  PASSKEY_ALREADY_REGISTERED: "This passkey is registered already.",
  MFA_ALREADY_ENABLED: "The authenticator app is on already.",
  SUPERUSER_REQUIRED: "Only superusers can see this.",
  MFA_REQUIRED_FOR_ROLE: "Sign in with your second factor to administer accounts.",
  SESSION_ENDED: "Your session has ended. Sign in again.",
};

/** A line for a person: a sentence for the reasons the app knows, and always the reason. */
export function describeError(error: unknown): string {
  const first = firstApiError(error);
  if (first === undefined) {
    return error instanceof Error ? `Could not reach the server (${error.message}).` : "Something went wrong.";
  }
  const codes = first.fields.map((f) => `${f.field}: ${f.code}`);
  const detail = codes.length > 0 ? `${first.reason}; ${codes.join(", ")}` : first.reason;
  const wait = typeof first.extensions["retryAfter"] === "number" ? ` Retry in ${first.extensions["retryAfter"]} s.` : "";
  return `${SENTENCES[first.reason] ?? first.message}${wait} (${detail})`;
}
