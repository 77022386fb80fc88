// Memory scopes (like TF.js's tidy and TorchSharp's dispose scopes): every tensor created while a
// scope is open belongs to it and is freed when the scope ends, unless it is returned or kept.

interface Disposable {
  dispose(): void;
}

const stack: Set<Disposable>[] = [];
const owner = new WeakMap<Disposable, Set<Disposable>>();

/** @internal Called for each new tensor: it joins the innermost open scope. */
export function track(t: Disposable): void {
  const top = stack[stack.length - 1];
  if (top) {
    top.add(t);
    owner.set(t, top);
  }
}

/** @internal Takes a tensor out of the scope that owns it. */
export function untrack(t: Disposable): void {
  const s = owner.get(t);
  if (s) {
    s.delete(t);
    owner.delete(t);
  }
}

/** Tensors reachable from a returned value: the value itself, array items, object and Map values. */
function reachable(value: unknown, scope: Set<Disposable>, out: Set<Disposable>, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (scope.has(value as Disposable)) {
    out.add(value as Disposable);
    return;
  }
  if (Array.isArray(value)) for (const v of value) reachable(v, scope, out, seen);
  else if (value instanceof Map) for (const v of value.values()) reachable(v, scope, out, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) reachable(v, scope, out, seen);
}

/**
 * Runs `fn` in a new scope. Tensors created inside are freed when it returns, except those reachable
 * from its result (a tensor, or arrays / plain objects / Maps holding tensors), which move to the
 * enclosing scope. `fn` must be synchronous. On an exception every tensor of the scope is freed.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Disposable>();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    for (const t of [...scope]) t.dispose();
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) {
    for (const t of [...scope]) t.dispose();
    throw new Error('tidy: the function returned a Promise; scopes only cover synchronous code (await outside, tidy inside)');
  }
  const keep = new Set<Disposable>();
  reachable(result, scope, keep);
  for (const t of [...scope]) if (!keep.has(t)) t.dispose();
  const parent = stack[stack.length - 1];
  for (const t of keep) {
    owner.delete(t);
    if (parent) {
      parent.add(t);
      owner.set(t, parent);
    }
  }
  return result;
}

/** Number of scopes open now (0 outside any `tidy`). */
export function scopeDepth(): number {
  return stack.length;
}
