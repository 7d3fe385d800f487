// Shared by bin/tessera.js and bin/tessera-agent.js: whether a bundle made by scripts/lib/bundle.mjs may run.
// It may when it exists, its NAME.inputs.json lists its inputs and a build id, and no input is newer than
// the bundle (a missing input counts as newer). Otherwise the launcher runs the TypeScript through tsx, so
// an edited source never runs as stale build output.
import { readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The bundle `dist`/`file` as { file, built, buildId }, or undefined when it is missing or stale, or when
 * the environment variable `disable` is "0".
 */
export function freshBundle(root, dist, file, inputsFile, disable) {
  if (process.env[disable] === "0") return undefined;
  try {
    const path = fileURLToPath(new URL(file, dist));
    const built = statSync(path).mtimeMs;
    const { inputs, buildId } = JSON.parse(readFileSync(new URL(inputsFile, dist), "utf8"));
    if (!Array.isArray(inputs) || inputs.length === 0 || !/^[0-9a-f]+$/.test(buildId)) return undefined;
    for (const p of inputs) if (statSync(new URL(p, root)).mtimeMs > built) return undefined;
    return { file: path, built, buildId };
  } catch {
    return undefined;
  }
}
