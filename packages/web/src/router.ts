/**
 * Hash routing (`#/devices/ID?x=y`), so the server needs no SPA fallback.
 * List pages keep their filters, sort and page in the hash query so that the
 * back button and shared links work.
 */
import { useEffect, useState } from "preact/hooks";

export interface Route {
  /** Path segments, decoded: "#/devices/a%2Fb" → ["devices", "a/b"]. */
  segments: string[];
  params: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, "");
  const q = raw.indexOf("?");
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const query = q >= 0 ? raw.slice(q + 1) : "";
  const segments = path
    .split("/")
    .filter((s) => s !== "")
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  return { segments, params: new URLSearchParams(query) };
}

/** `#/a/b?k=v` from segments and the non-empty params. */
export function href(segments: string[], params?: Record<string, string | number | boolean | null | undefined>): string {
  const path = segments.map((s) => encodeURIComponent(s)).join("/");
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v === undefined || v === null || v === "" || v === false) continue;
    p.set(k, String(v));
  }
  const qs = p.toString();
  return `#/${path}${qs ? `?${qs}` : ""}`;
}

export function navigate(to: string, replace = false): void {
  if (replace) {
    history.replaceState(null, "", to);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    location.hash = to;
  }
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}

/** The current params as a plain object (for href()). */
export function paramsObject(p: URLSearchParams): Record<string, string> {
  const o: Record<string, string> = {};
  p.forEach((v, k) => {
    o[k] = v;
  });
  return o;
}

/** Same route with some params changed (null/"" removes one). */
export function withParams(route: Route, changes: Record<string, string | number | boolean | null | undefined>): string {
  return href(route.segments, { ...paramsObject(route.params), ...changes });
}
