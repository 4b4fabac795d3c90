import { ApolloProvider } from "@apollo/client/react";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { restoreSession } from "./auth";
import { client } from "./client";
import "./styles.css";

// Every page load starts without an access token: one silent refresh restores the session
// from the HttpOnly cookie, or leaves the tab signed out (protected pages then go to /sign-in).
void restoreSession();

const root = document.getElementById("root");
if (root === null) throw new Error("index.html has no #root");
createRoot(root).render(
  <StrictMode>
    <ApolloProvider client={client}>
      <App />
    </ApolloProvider>
  </StrictMode>,
);
