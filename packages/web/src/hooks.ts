import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { type ApiError, isAbort, toApiError } from "./api";

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  reload(): void;
  /** Replace the data locally (after a mutation answered with the new row). */
  set(update: (old: T | undefined) => T | undefined): void;
}

/**
 * Runs `load` when `deps` change (aborting the previous run, so a slow answer
 * never overwrites a newer one); `reload()` runs it again.
 */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[], onError?: (e: ApiError) => void): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const onErrorRef = useRef(onError);
  onErrorRef.current = onError;
  useEffect(() => {
    const ac = new AbortController();
    setLoading(true);
    load(ac.signal).then(
      (d) => {
        if (ac.signal.aborted) return;
        setData(d);
        setError(undefined);
        setLoading(false);
      },
      (e: unknown) => {
        if (ac.signal.aborted || isAbort(e)) return;
        const err = toApiError(e);
        setError(err);
        setLoading(false);
        onErrorRef.current?.(err);
      },
    );
    return () => ac.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const set = useCallback((update: (old: T | undefined) => T | undefined) => setData((old) => update(old)), []);
  return { data, error, loading, reload, set };
}

/** Sets document.title for a page. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · Tessera console`;
  }, [title]);
}
