/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** The GraphQL endpoint, unless index.html names one (src/config.ts); default /graphql on the page's origin. */
  readonly VITE_GRAPHQL_URL?: string;
  /** "true" to link to the API's /dev/mail page in a build (always on under `npm run dev`). */
  readonly VITE_DEV_MAIL_LINK?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}
