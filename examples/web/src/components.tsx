// Small pieces the pages share.
import type { ReactNode } from "react";
import { DEV_MAIL_URL, SHOW_DEV_MAIL } from "./config";
import type { FieldError } from "./lib/errors";

/** BAD_USER_INPUT's field errors for one input, shown beside it. */
export function FieldErrors({ errors }: { errors: FieldError[] | undefined }) {
  if (errors === undefined || errors.length === 0) return null;
  return (
    <>
      {errors.map((e) => (
        <p key={`${e.field}-${e.code}`} className="field-error" data-testid="field-error" data-field={e.field} data-code={e.code}>
          {e.message || e.code}
        </p>
      ))}
    </>
  );
}

/** An error line; nothing when there is no error. */
export function ErrorLine({ children, testId }: { children: ReactNode; testId?: string }) {
  if (children === null || children === undefined || children === "") return null;
  return (
    <p className="error" role="alert" data-testid={testId}>
      {children}
    </p>
  );
}

/** In development, where the API lists what it mailed. */
export function DevMailHint() {
  if (!SHOW_DEV_MAIL) return null;
  return (
    <p className="hint">
      In development nothing is sent: the API lists its mail at{" "}
      <a href={DEV_MAIL_URL} target="_blank" rel="noreferrer">
        {DEV_MAIL_URL}
      </a>
      .
    </p>
  );
}

export function Labelled({ label, children }: { label: string; children: ReactNode }) {
  return (
    <label className="field">
      <span>{label}</span>
      {children}
    </label>
  );
}

export function formatDate(value: string | null | undefined): string {
  if (value === null || value === undefined) return "never";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toLocaleString();
}
