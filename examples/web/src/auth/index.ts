export { authLink, CSRF_HEADER } from "./links";
export { refreshAccessToken, restoreSession, setRefreshRequest } from "./refresh";
export {
  acceptAccess,
  endSession,
  getAccessToken,
  getSession,
  onSessionChange,
  useSession,
  type IssuedAccess,
  type SessionState,
  type SessionUser,
} from "./session";
