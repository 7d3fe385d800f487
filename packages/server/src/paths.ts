/**
 * The repository's root directory, found from this file: packages/server/src/
 * is two levels below it. The server's bundle (scripts/build-server.mjs)
 * sits at the same depth, packages/server/dist/, so the same relative path
 * holds whether the sources or the bundle are running; files that need a
 * path inside the repository start from here rather than from their own
 * location.
 */
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
