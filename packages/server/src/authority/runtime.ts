/**
 * Time and randomness enter the authority through these small ports so tests
 * can fix them (ARCHITECTURE.md, style rule 7).
 */
import { randomBytes } from "node:crypto";

/** A source of the current time. */
export interface Clock {
  now(): Date;
}

/** A source of random bytes (a CSPRNG in production). */
export type RandomSource = (n: number) => Buffer;

/** The system clock. */
export const systemClock: Clock = { now: () => new Date() };

/** node:crypto's CSPRNG. */
export const systemRandom: RandomSource = (n) => randomBytes(n);
