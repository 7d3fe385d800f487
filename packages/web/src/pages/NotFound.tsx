import { useTitle } from "../hooks";
import { href } from "../router";

export function NotFoundPage() {
  useTitle("Not found");
  return (
    <>
      <h1 tabIndex={-1}>Page not found</h1>
      <p>
        There is no such page in the console. Go to the <a href={href(["overview"])}>overview</a>.
      </p>
    </>
  );
}
