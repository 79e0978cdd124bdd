/**
 * `npm run token -- <role> <sub> [ttl-seconds]`: prints an HS256 token signed with the
 * node's secret (TRACKER_JWT_SECRET, or the public development secret with
 * TRACKER_INSECURE_DEV=1), for trying the server with curl or a WebSocket client.
 * Real deployments mint tokens in their own identity service.
 */
import { SignJWT } from 'jose';
import { isValidId } from '../protocol/checks.js';
import { Role } from '../protocol.js';
import { configOrExit } from './config-or-exit.js';

async function main(): Promise<void> {
  const [role, sub, ttl = '3600'] = process.argv.slice(2);
  const roles = Object.values(Role) as string[];
  if (role === undefined || sub === undefined || !roles.includes(role) || !isValidId(sub) || !/^\d+$/.test(ttl)) {
    process.stderr.write(`usage: npm run token -- <${roles.join('|')}> <sub> [ttl-seconds]\n`);
    process.exit(2);
  }
  const config = configOrExit();
  if (Number(ttl) > config.TOKEN_MAX_LIFETIME_SEC) {
    // The node would answer 401 to it: say so now rather than hand out a useless token.
    process.stderr.write(`ttl ${ttl} s is longer than TOKEN_MAX_LIFETIME_SEC (${config.TOKEN_MAX_LIFETIME_SEC} s)\n`);
    process.exit(2);
  }
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ role })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt(now)
    .setExpirationTime(now + Number(ttl))
    .sign(new TextEncoder().encode(config.jwtSecret));
  process.stdout.write(`${token}\n`);
}

void main();
