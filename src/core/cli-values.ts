import { InvalidArgumentError } from 'commander';

/** Option parser for counts and seconds: commander reports the error and the CLI exits 2. */
export const positiveNumber = (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
};

export const ACCEL_CHOICES = ['auto', 'kvm', 'tcg'] as const;
