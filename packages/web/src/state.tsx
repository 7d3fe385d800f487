/**
 * App-wide state: the signed-in session and the message regions (errors in
 * an assertive live region with the API's code, confirmations in a polite one).
 */
import { createContext, type ComponentChildren } from "preact";
import { useContext } from "preact/hooks";
import type { ApiError, Role, Session } from "./api";

export interface Notice {
  id: number;
  kind: "error" | "success";
  code?: string;
  text: string;
}

export interface AppContext {
  session: Session;
  role: Role;
  notifyError(e: ApiError): void;
  notifySuccess(text: string): void;
  signOut(): void;
}

export const App = createContext<AppContext | null>(null);

export function useApp(): AppContext {
  const c = useContext(App);
  if (!c) throw new Error("useApp outside the app");
  return c;
}

export function AppProvider(props: { value: AppContext; children: ComponentChildren }) {
  return <App.Provider value={props.value}>{props.children}</App.Provider>;
}
