import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ConfigError, INSECURE_DEV_SECRET, loadConfig, VARIABLES } from '../../src/config.js';
import { NODE_RUNTIME_FLAGS } from '../../src/node-flags.js';

const SECRET = 'a-secret-that-is-at-least-32-characters-long';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('configuration', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({ TRACKER_JWT_SECRET: SECRET });
    assert.equal(c.PORT, 8080);
    assert.equal(c.HOST, '127.0.0.1');
    assert.equal(c.DATA_DIR, './data');
    assert.equal(c.REDIS_URL, undefined);
    assert.equal(c.CLICKHOUSE_URL, undefined);
    assert.equal(c.LATE_DEPARTURE_MS, 15 * 60_000);
    assert.equal(c.OFFLINE_MS, 5 * 60_000);
    assert.equal(c.IMPLAUSIBLE_SPEED_MPS, 70);
    assert.equal(c.SOS_LEVEL2_MS, 60_000);
    assert.equal(c.SOS_LEVEL3_MS, 300_000);
    assert.equal(c.SOS_SLA_MS, 900_000);
    assert.equal(c.GEOFENCE_RADIUS_M, 50);
    assert.equal(c.MAX_ACCURACY_M, 200);
    assert.equal(c.jwtSecret, SECRET);
  });

  it('refuses to start without a secret unless the development flag is set', () => {
    assert.deepEqual(problems({}), [
      'TRACKER_JWT_SECRET is required (or set TRACKER_INSECURE_DEV=1 for local development only)',
    ]);
    const dev = loadConfig({ TRACKER_INSECURE_DEV: '1' });
    assert.equal(dev.jwtSecret, INSECURE_DEV_SECRET);
    assert.equal(loadConfig({ TRACKER_INSECURE_DEV: '1', TRACKER_JWT_SECRET: SECRET }).jwtSecret, SECRET);
  });

  it('rejects a short secret', () => {
    assert.match(problems({ TRACKER_JWT_SECRET: 'short' })[0] ?? '', /at least 32 characters/);
  });

  it('names every bad variable at once', () => {
    const found = problems({
      TRACKER_JWT_SECRET: SECRET,
      PORT: 'eighty',
      REDIS_URL: 'http://x',
      CLICKHOUSE_URL: 'not a url',
      LOG_LEVEL: 'loud',
      TRAVEL_SPEED_MPS: '-3',
      TRACKER_INSECURE_DEV: 'maybe',
    });
    assert.equal(found.length, 6);
    for (const name of [
      'PORT',
      'REDIS_URL',
      'CLICKHOUSE_URL',
      'LOG_LEVEL',
      'TRAVEL_SPEED_MPS',
      'TRACKER_INSECURE_DEV',
    ]) {
      assert.ok(
        found.some((p) => p.startsWith(`${name} `)),
        `${name} should be named in ${JSON.stringify(found)}`,
      );
    }
  });

  it('checks that the SOS ladder is in order', () => {
    assert.match(
      problems({ TRACKER_JWT_SECRET: SECRET, SOS_LEVEL2_MS: '5000', SOS_LEVEL3_MS: '1000' })[0] ?? '',
      /SOS_LEVEL3_MS/,
    );
  });

  it('reads Redis Sentinel addresses and refuses them half-set or beside REDIS_URL', () => {
    const c = loadConfig({
      TRACKER_JWT_SECRET: SECRET,
      REDIS_SENTINELS: '127.0.0.1:26379, sentinel-2:26380',
      REDIS_SENTINEL_NAME: 'fieldtrack',
    });
    assert.deepEqual(c.REDIS_SENTINELS, [
      { host: '127.0.0.1', port: 26379 },
      { host: 'sentinel-2', port: 26380 },
    ]);
    assert.match(problems({ TRACKER_JWT_SECRET: SECRET, REDIS_SENTINELS: '127.0.0.1:26379' })[0] ?? '', /go together/);
    assert.match(
      problems({
        TRACKER_JWT_SECRET: SECRET,
        REDIS_SENTINELS: 'h:1',
        REDIS_SENTINEL_NAME: 'n',
        REDIS_URL: 'redis://h',
      })[0] ?? '',
      /either REDIS_URL or REDIS_SENTINELS/,
    );
    assert.match(
      problems({ TRACKER_JWT_SECRET: SECRET, REDIS_SENTINELS: 'h:99999', REDIS_SENTINEL_NAME: 'n' })[0] ?? '',
      /REDIS_SENTINELS must be a comma-separated list of host:port/,
    );
  });

  it('is documented: the README names every variable with its default', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    for (const [name, variable] of Object.entries(VARIABLES)) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\``));
      assert.ok(row, `README has no table row for ${name}`);
      if (variable.def !== undefined)
        assert.ok(row.includes(String(variable.def)), `README row of ${name} lacks its default`);
    }
  });
});

describe('runtime flags', () => {
  it('npm start passes every flag the benchmarks run the node with', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const start = pkg.scripts.start ?? '';
    assert.ok(NODE_RUNTIME_FLAGS.length > 0);
    for (const flag of NODE_RUNTIME_FLAGS) assert.ok(start.includes(` ${flag} `), `npm start lacks ${flag}: ${start}`);
    assert.ok(start.endsWith('dist/src/main.js'), 'the flags come before the script');
  });
});
