import { useEffect, useState, type ReactNode } from "react";
import { useSession } from "./auth";
import { signOut } from "./client";
import { AccountPage } from "./pages/account/Account";
import { AdminUsersPage } from "./pages/AdminUsers";
import { ResetPasswordPage } from "./pages/ResetPassword";
import { SignInPage } from "./pages/SignIn";
import { SignUpPage } from "./pages/SignUp";
import { VerifyEmailPage } from "./pages/VerifyEmail";
import { Link, navigate, useLocation } from "./router";

function Nav() {
  const session = useSession();
  const [signingOut, setSigningOut] = useState(false);

  function handleSignOut(): void {
    setSigningOut(true);
    void signOut().finally(() => setSigningOut(false));
  }

  return (
    <header>
      <nav>
        <Link to="/" className="brand">
          gql-app
        </Link>
        {session.status === "signedIn" && (
          <>
            <Link to="/account" data-testid="nav-account">
              Account
            </Link>
            {session.user.isSuperuser && (
              <Link to="/admin/users" data-testid="nav-admin">
                Users
              </Link>
            )}
            <span className="spacer" />
            <span className="who">{session.user.email}</span>
            <button type="button" className="secondary" onClick={handleSignOut} disabled={signingOut} data-testid="sign-out">
              Sign out
            </button>
          </>
        )}
        {session.status === "signedOut" && (
          <>
            <span className="spacer" />
            <Link to="/sign-in" data-testid="nav-sign-in">
              Sign in
            </Link>
            <Link to="/sign-up" data-testid="nav-sign-up">
              Sign up
            </Link>
          </>
        )}
      </nav>
    </header>
  );
}

/** Pages that need a session: wait for the first refresh, then /sign-in without one. */
function RequireSession({ superuser = false, children }: { superuser?: boolean; children: ReactNode }) {
  const session = useSession();
  const { pathname } = useLocation();
  useEffect(() => {
    if (session.status === "signedOut") navigate("/sign-in", { replace: true, state: { next: pathname } });
  }, [session.status, pathname]);

  if (session.status !== "signedIn") return <main className="loading">Loading…</main>;
  if (superuser && !session.user.isSuperuser) {
    return (
      <main>
        <h1>Superusers only</h1>
        <p>This account does not administer others.</p>
      </main>
    );
  }
  return <>{children}</>;
}

function Home() {
  const session = useSession();
  useEffect(() => {
    if (session.status !== "restoring") navigate(session.status === "signedIn" ? "/account" : "/sign-in", { replace: true });
  }, [session.status]);
  return <main className="loading">Loading…</main>;
}

function Route({ pathname }: { pathname: string }) {
  switch (pathname.length > 1 ? pathname.replace(/\/+$/, "") : pathname) {
    case "/":
      return <Home />;
    case "/sign-up":
      return <SignUpPage />;
    case "/verify-email":
      return <VerifyEmailPage />;
    case "/sign-in":
      return <SignInPage />;
    case "/reset-password":
      return <ResetPasswordPage />;
    case "/account":
      return (
        <RequireSession>
          <AccountPage />
        </RequireSession>
      );
    case "/admin/users":
      return (
        <RequireSession superuser>
          <AdminUsersPage />
        </RequireSession>
      );
    default:
      return (
        <main data-testid="page-not-found">
          <h1>Not found</h1>
          <p>
            Nothing here. <Link to="/">Home</Link>
          </p>
        </main>
      );
  }
}

export function App() {
  const { pathname } = useLocation();
  return (
    <>
      <Nav />
      {/* A new page starts with fresh state. */}
      <Route key={pathname} pathname={pathname} />
    </>
  );
}
