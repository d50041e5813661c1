import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { UsageError } from '../core/errors.js';
import { type LoadedProfile, Profile } from './profile.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const PROFILES_DIR = path.join(REPO_ROOT, 'profiles');

/** `lab` -> profiles/lab/profile.json; anything with a slash or .json is a path. */
export function resolveProfilePath(ref: string): string {
  if (ref.includes('/') || ref.endsWith('.json')) return path.resolve(ref);
  return path.join(PROFILES_DIR, ref, 'profile.json');
}

export function formatZodIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const at = i.path.reduce<string>(
        (acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)),
        '',
      );
      return `  ${at || '(root)'}: ${i.message}`;
    })
    .join('\n');
}

export function loadProfile(ref: string): LoadedProfile {
  const file = resolveProfilePath(ref);
  if (!existsSync(file)) {
    const known = existsSync(PROFILES_DIR) ? ' (known: see profiles/*/profile.json)' : '';
    throw new UsageError(`profile "${ref}" not found at ${file}${known}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`profile ${file} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = Profile.safeParse(raw);
  if (!parsed.success) throw new UsageError(`profile ${file} is invalid:\n${formatZodIssues(parsed.error)}`);
  return { ...parsed.data, file, dir: path.dirname(file) };
}
