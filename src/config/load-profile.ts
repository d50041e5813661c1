import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { UsageError } from '../core/errors.js';
import { type LoadedProfile, Profile, type ProfileIssue, ProfileShape, profileProblems, type ServiceParamCheck } from './profile.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const PROFILES_DIR = path.join(REPO_ROOT, 'profiles');

/** `lab` -> profiles/lab/profile.json; anything with a slash or .json is a path. */
export function resolveProfilePath(ref: string): string {
  if (ref.includes('/') || ref.endsWith('.json')) return path.resolve(ref);
  return path.join(PROFILES_DIR, ref, 'profile.json');
}

const formatPath = (path: readonly PropertyKey[]) =>
  path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)), '');

export function formatIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues.map((i) => `  ${formatPath(i.path) || '(root)'}: ${i.message}`).join('\n');
}

export function formatZodIssues(error: z.ZodError): string {
  return formatIssues(error.issues);
}

/**
 * Every problem of a profile at once: its structure, the checks across fields (run on the raw
 * input, so a type error elsewhere hides nothing), and each service's params against its
 * module's schema (`services.<name>.params...`).
 */
export function profileIssues(raw: unknown, serviceParams?: Record<string, ServiceParamCheck>): ProfileIssue[] {
  const shape = ProfileShape.safeParse(raw);
  const issues: ProfileIssue[] = [
    ...(shape.success ? [] : shape.error.issues.map((i) => ({ path: i.path as (string | number)[], message: i.message }))),
    ...profileProblems(raw),
  ];
  const services = typeof raw === 'object' && raw !== null && 'services' in raw ? (raw as { services: unknown }).services : undefined;
  if (serviceParams && typeof services === 'object' && services !== null) {
    for (const [name, c] of Object.entries(services as Record<string, unknown>)) {
      const schema = serviceParams[name];
      if (!schema) {
        issues.push({
          path: ['services', name],
          message: `no service module "${name}" in this harness (known: ${Object.keys(serviceParams).join(', ')})`,
        });
        continue;
      }
      const params = typeof c === 'object' && c !== null && 'params' in c ? (c as { params: unknown }).params : {};
      const r = schema.safeParse(params);
      if (!r.success)
        issues.push(
          ...r.error.issues.map((i) => ({ path: ['services', name, 'params', ...(i.path as (string | number)[])], message: i.message })),
        );
    }
  }
  return issues;
}

export function loadProfile(ref: string, serviceParams?: Record<string, ServiceParamCheck>): LoadedProfile {
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
  const issues = profileIssues(raw, serviceParams);
  if (issues.length) throw new UsageError(`profile ${file} is invalid:\n${formatIssues(issues)}`);
  return { ...Profile.parse(raw), file, dir: path.dirname(file) };
}
