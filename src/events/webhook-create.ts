/**
 * What creating a webhook is, whichever store keeps it (one node's files or Redis): the
 * checks every node makes, and the record with its id and secret.
 */
import { randomBytes } from 'node:crypto';
import type { Outcome } from '../outcome.js';
import { WEBHOOKS_MAX } from '../protocol.js';
import { checkWebhookTarget } from './address-guard.js';
import { newSecret } from './signature.js';
import type { CreatedWebhook, WebhookInput } from './webhook-api.js';
import type { StoredWebhook } from './webhook-store.js';

/** Where the new webhook stands: how many exist, the policy for private targets, the time. */
export interface CreationContext {
  held: number;
  allowPrivate: boolean;
  now: number;
  /** The newest event id so far (asked only once the checks pass): the webhook gets every later event. */
  newestId(): Promise<string | null> | string | null;
}

/** A new webhook record, or why it may not be made (too many, a URL that points where webhooks may not go). */
export async function newWebhook(input: WebhookInput, at: CreationContext): Promise<Outcome<StoredWebhook>> {
  if (at.held >= WEBHOOKS_MAX) {
    return { ok: false, code: 'conflict', msg: `at most ${WEBHOOKS_MAX} webhooks; delete one first` };
  }
  const refused = await checkWebhookTarget(new URL(input.url), at.allowPrivate);
  if (refused !== null) return { ok: false, code: 'bad_request', msg: refused };
  return {
    ok: true,
    value: {
      id: `wh_${randomBytes(9).toString('base64url')}`,
      url: input.url,
      events: input.events,
      secret: input.secret ?? newSecret(),
      createdAt: at.now,
      after: await at.newestId(),
    },
  };
}

/** The answer to a creation: the only time the secret is shown. */
export function createdAnswer(hook: StoredWebhook): CreatedWebhook {
  return { id: hook.id, url: hook.url, events: hook.events, secret: hook.secret, createdAt: hook.createdAt };
}
