/**
 * Flags for the Node.js runtime that runs a node: `npm start` passes them (package.json;
 * a unit test keeps the two in step) and so do the benchmarks (load/launch.ts), so that
 * what is measured is what runs.
 *
 * `--max-semi-space-size=64` (MiB; V8's own default is 16 here): a ping's objects (the
 * decoded frame, the actor message, the durable-write promise, the archive row) live until
 * its fsync round is done, a few milliseconds, so with a 16 MiB young generation most of
 * them were still alive at each scavenge and were copied, then promoted, then collected
 * again by a major GC. With 64 MiB most die before the next scavenge. Measured with
 * `npm run sim -- --devices 2000 --hz 0 --window 1 --seconds 10 --env
 * NODE_OPTIONS=--max-semi-space-size=N` on the 2-core machine: 16 gave 9,600-11,000
 * acks/s at 61-75 us of server CPU per ping and 15% of the time in GC pauses; 64 gave
 * 17,100-17,600 acks/s, 57-59 us, 5-6% (32: 11,700; 128: 17,200, no better). The cost is
 * resident memory: about 27 MiB more once the young generation has grown under load.
 */
export const NODE_RUNTIME_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
