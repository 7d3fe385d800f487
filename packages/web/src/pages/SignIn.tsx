import { useId, useState } from "preact/hooks";
import { type ApiError, api, type Session, toApiError } from "../api";
import { useTitle } from "../hooks";

/** Sign in with an operator token (POST /session); the server sets the HttpOnly cookie. */
export function SignIn(props: { onSignedIn(s: Session): void; onError(e: ApiError): void }) {
  useTitle("Sign in");
  const id = useId();
  const [token, setToken] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!token.trim()) return;
    setBusy(true);
    try {
      const s = await api.signIn(token.trim());
      setToken("");
      props.onSignedIn(s);
    } catch (err) {
      props.onError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="signin card" aria-labelledby={`${id}-h`}>
      <h1 id={`${id}-h`} tabIndex={-1}>
        Sign in
      </h1>
      <p>
        Use an operator token made on the server with <code>tessera token create NAME --role viewer|editor|admin</code>.
      </p>
      <form onSubmit={submit}>
        <div class="field">
          <label for={id}>Access token</label>
          <input
            id={id}
            type="password"
            autoComplete="off"
            spellcheck={false}
            required
            value={token}
            onInput={(e) => setToken((e.currentTarget as HTMLInputElement).value)}
          />
        </div>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </section>
  );
}
