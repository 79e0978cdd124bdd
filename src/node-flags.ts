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
 * "Runtime flags"); single runs tried 32 (little gain) and 128 (no better than 64). The
 * cost is resident memory: about 30 MiB more once the young generation has grown.
 */
export const NODE_RUNTIME_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
