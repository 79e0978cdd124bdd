/** Polling waits for conditions that settle asynchronously in another process or actor. */

/**
 * Resolves once `check` returns a value other than `undefined`/`false` (it may be async),
 * checking every `everyMs`; rejects naming `what` (and the last error thrown by `check`)
 * after `timeoutMs`. The timeout is generous on purpose: it bounds a hang, it is not a
 * performance claim.
 */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 60_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
