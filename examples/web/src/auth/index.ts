export { authLink } from "./links";
export { restoreSession, setRefreshRequest, withSessionLock } from "./refresh";
export { acceptAccess, endSession, onSessionChange, useSession, type IssuedAccess } from "./session";
