// Where the API is, from the build's environment.

/** The GraphQL endpoint: VITE_GRAPHQL_URL, or /graphql on the page's own origin. */
export const GRAPHQL_URL: string = import.meta.env.VITE_GRAPHQL_URL || "/graphql";

/**
 * The development mail page (/dev/mail) on the API's origin: the origin of VITE_GRAPHQL_URL,
 * or the page's own when the URL is relative (the dev server forwards /dev/mail to the API).
 */
export const DEV_MAIL_URL: string = new URL("/dev/mail", new URL(GRAPHQL_URL, window.location.href)).href;

/**
 * Whether to point at /dev/mail after something was mailed: always under `npm run dev`, and in
 * a build made with VITE_DEV_MAIL_LINK=true (a production API has no such page).
 */
export const SHOW_DEV_MAIL: boolean = import.meta.env.DEV || import.meta.env.VITE_DEV_MAIL_LINK === "true";
