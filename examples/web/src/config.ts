// Where the API is: named by the page at run time, or fixed by the build.

/** `<meta name="gql-app-graphql-url" content="...">` in index.html, if it has a non-empty content. */
function graphqlUrlFromPage(): string | undefined {
  const content = document.querySelector<HTMLMetaElement>('meta[name="gql-app-graphql-url"]')?.content.trim();
  return content === undefined || content === "" ? undefined : content;
}

/**
 * The GraphQL endpoint: the page's meta tag (so one build serves any API: edit dist/index.html,
 * no rebuild), else VITE_GRAPHQL_URL at build time, else /graphql on the page's own origin.
 */
export const GRAPHQL_URL: string = graphqlUrlFromPage() ?? (import.meta.env.VITE_GRAPHQL_URL || "/graphql");

/**
 * The development mail page (/dev/mail) on the API's origin: the origin of GRAPHQL_URL, or the
 * page's own when the URL is relative (the dev server forwards /dev/mail to the API).
 */
export const DEV_MAIL_URL: string = new URL("/dev/mail", new URL(GRAPHQL_URL, window.location.href)).href;

/**
 * Whether to point at /dev/mail after something was mailed: always under `npm run dev`, and in
 * a build made with VITE_DEV_MAIL_LINK=true (a production API has no such page).
 */
export const SHOW_DEV_MAIL: boolean = import.meta.env.DEV || import.meta.env.VITE_DEV_MAIL_LINK === "true";
