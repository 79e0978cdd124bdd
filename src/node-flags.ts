/**
 * Flags for the Node.js runtime that runs a node: `npm start` passes them (package.json;
 * a unit test keeps the two in step) and so do the benchmarks (load/launch.ts), so that
 * what is measured is what runs.
 *
 * `--max-semi-space-size=64` (MiB; V8's own default is 16 here): a ping's objects (the
 * decoded frame, the actor message, the durable-write promise, the archive row) live until
 * its fsync round is done, a few milliseconds, so with a 16 MiB young generation most of
 * them were still alive at each scavenge and were copied, then promoted, then collected
 * again by a major GC. With 64 MiB most die before the next scavenge. `npm run
 * bench:young` measures it (closed loop, 2,000 devices, sizes alternating; README,
 * "Runtime flags": 16, 32 and 64 alternating; a single run of 128 was no better than 64).
 * The cost is resident memory: the young generation's garbage, up to about 90 MiB more
 * right after 15,000 devices connected (README, "Memory per connected device").
 */
export const NODE_RUNTIME_FLAGS: readonly string[] = ['--max-semi-space-size=64'];

/**
 * The young generation of the node's worker threads (the archive's batch reader, the webhook
 * sender), in MiB: V8's default (16 MiB semi-spaces, 48 in all). V8 flags are the process's,
 * so without this limit every worker would also grow to the main thread's 64 MiB semi-spaces,
 * memory their modest allocation does not need.
 */
export const WORKER_YOUNG_GENERATION_MB = 48;
