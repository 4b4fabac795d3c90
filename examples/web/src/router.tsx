// A small router over the History API: the current path, navigate(), and <Link>.
import { useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent } from "react";

const listeners = new Set<() => void>();

function notify(): void {
  for (const listener of listeners) listener();
}

window.addEventListener("popstate", notify);

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** What navigate() may carry along without putting it in the URL. */
export interface NavigationState {
  /** Where to go after signing in. */
  next?: string;
}

export function navigate(to: string, options: { replace?: boolean; state?: NavigationState } = {}): void {
  const state = options.state ?? null;
  if (options.replace) window.history.replaceState(state, "", to);
  else window.history.pushState(state, "", to);
  notify();
}

/** `path + search`, as a string so that React can compare snapshots. */
function snapshot(): string {
  return window.location.pathname + window.location.search;
}

export interface Location {
  pathname: string;
  params: URLSearchParams;
  state: NavigationState | null;
}

export function useLocation(): Location {
  const current = useSyncExternalStore(subscribe, snapshot);
  const url = new URL(current, window.location.origin);
  return {
    pathname: url.pathname,
    params: url.searchParams,
    state: (window.history.state as NavigationState | null) ?? null,
  };
}

/** Where a path is safe to go to after signing in: only this app's own paths. */
export function localPath(value: string | undefined): string | null {
  return value !== undefined && value.startsWith("/") && !value.startsWith("//") ? value : null;
}

type LinkProps = AnchorHTMLAttributes<HTMLAnchorElement> & { to: string };

export function Link({ to, onClick, ...rest }: LinkProps) {
  function handleClick(event: MouseEvent<HTMLAnchorElement>): void {
    onClick?.(event);
    const plain = event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey && !event.altKey;
    if (event.defaultPrevented || !plain) return;
    event.preventDefault();
    navigate(to);
  }
  return <a href={to} onClick={handleClick} {...rest} />;
}
