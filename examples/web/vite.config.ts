import react from "@vitejs/plugin-react";
import { defineConfig, loadEnv } from "vite";

export default defineConfig(({ mode }) => {
  // The API that `npm run dev` (and `npm run preview`) forward /graphql and /dev/mail to, so
  // the page and the API share one origin and the SameSite=Strict refresh cookie is
  // first-party. A local `gql-app serve` / `make run` by default; API_PROXY_TARGET (in the
  // environment or a .env file) names another.
  const api = loadEnv(mode, ".", "API_PROXY_")["API_PROXY_TARGET"] || "http://127.0.0.1:8000";
  const proxy = { "/graphql": api, "/dev/mail": api };
  return {
    plugins: [react()],
    server: { port: 3000, strictPort: true, proxy },
    preview: { port: 3000, strictPort: true, proxy },
    // "hidden": source maps are written (for a crash report's stack) but not referenced from
    // the bundles, so browsers do not fetch them; serve dist/ without the .map files.
    build: { outDir: "dist", sourcemap: "hidden" },
  };
});
