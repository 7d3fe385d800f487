#!/usr/bin/env node
// Runs the device agent's TypeScript through tsx's loader (no build step; see docs/decisions/0001-run-typescript-with-tsx.md).
import { register } from "tsx/esm/api";

register();
const { main } = await import("../packages/client/src/agent/main.ts");
process.exitCode = await main(process.argv.slice(2));
