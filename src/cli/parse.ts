// The number parser of every command's flags (commander argument parsers). Commander names the flag
// and the value given in the message ("option '--epochs <n>' argument 'x' is invalid. Expected an
// integer >= 0."), so each flag is spelled once, in its .option(). A bad value is a usage error
// (exit status 2, with the command's help). Range checks that belong to the experiment itself (and
// hold for library callers too) stay in the experiment.
import { InvalidArgumentError } from 'commander';

export interface NumberRule {
  /** whole numbers only */
  integer?: boolean;
  /** the value must be > 0 */
  positive?: boolean;
  /** smallest value allowed */
  min?: number;
  /** largest value allowed */
  max?: number;
}

function expected(r: NumberRule): string {
  const kind = r.integer ? 'an integer' : 'a number';
  if (r.positive) return r.max !== undefined ? `${kind} in (0, ${r.max}]` : `a positive ${r.integer ? 'integer' : 'number'}`;
  if (r.min !== undefined && r.max !== undefined) return `${kind} in [${r.min}, ${r.max}]`;
  if (r.min !== undefined) return `${kind} >= ${r.min}`;
  if (r.max !== undefined) return `${kind} <= ${r.max}`;
  return kind;
}

/** A flag's number parser: finite numbers only (not '', 'x', 'Infinity'), within the rule. */
export function number(rule: NumberRule = {}): (value: string) => number {
  const what = expected(rule);
  return (value: string): number => {
    const n = Number(value);
    const ok = value.trim() !== '' && Number.isFinite(n) && (!rule.integer || Number.isInteger(n)) && (!rule.positive || n > 0)
      && (rule.min === undefined || n >= rule.min) && (rule.max === undefined || n <= rule.max);
    if (!ok) throw new InvalidArgumentError(`Expected ${what}.`);
    return n;
  };
}

/** An integer flag (at least `min` when given). */
export function int(min?: number): (value: string) => number {
  return number(min === undefined ? { integer: true } : { integer: true, min });
}

/** A number flag. */
export function num(): (value: string) => number {
  return number();
}

/** `--encoder-nice`: 'idle' (the idle scheduling class) or a whole niceness 0..19. */
export function encoderPriority(value: string): number | 'idle' {
  if (value === 'idle') return 'idle';
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > 19) throw new InvalidArgumentError("Expected 'idle' or an integer in [0, 19].");
  return n;
}

/** A flag that may be repeated (or given several values): each parsed by `parse`, collected in order. */
export function list(parse: (value: string) => number): (value: string, previous: number[] | undefined) => number[] {
  return (value, previous) => [...(previous ?? []), parse(value)];
}
