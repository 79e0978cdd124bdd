/** The node's configuration as a command line tool needs it. */
import { type Config, ConfigError, loadConfig } from '../config.js';

/** Loads the configuration; a configuration error is printed (what to set) and the command exits 2. */
export function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
}
